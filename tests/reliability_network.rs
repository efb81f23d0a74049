//! Suite 7, hostile network input: slow clients (one byte per second), many
//! idle connections, connection floods, partial frames and oversize frame
//! headers. Each must hold bounded memory and file descriptors, be cut off
//! by a documented limit of `BrokerConfig` (`request_timeout`,
//! `connection_idle_timeout`, `max_connections`, `max_request_bytes`,
//! `max_buffered_request_bytes`), and never delay a well-behaved client
//! producing beside it. Limits are short in these tests so that they pass in
//! seconds; `MOLDAU_NETWORK_SCALE=N` multiplies the hostile connections.
//!
//! The broker runs in this process, so `/proc/self/fd` counts both ends of
//! every connection and `/proc/self/status` the broker's memory; the tests
//! take a lock so that no two of them measure at once.
#![cfg(feature = "broker")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker::{batch, broker_has_read, test_config, wait_until, Client, TestBroker};
use common::kafka::{fetch_request, produce, FETCH_V};
use kafka_protocol::messages::ApiVersionsRequest;
use moldau::broker::BrokerConfig;
use moldau::record::Batch;
use moldau::{Offset, Record};

/// One test at a time: they count the process's descriptors and memory.
static MEASURING: Mutex<()> = Mutex::new(());

fn measuring() -> MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many hostile connections: `base` times `MOLDAU_NETWORK_SCALE`.
fn scaled(base: usize) -> usize {
    let scale = std::env::var("MOLDAU_NETWORK_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    base * scale
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// What a well-behaved producer saw while hostile clients ran.
struct Served {
    latencies: Vec<Duration>,
    acked: Vec<(i64, u64)>,
}

impl Served {
    fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
    fn median(&self) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(l.len() / 2).copied().unwrap_or_default()
    }
}

fn good_record(i: u64) -> Record {
    Record::new(format!("good-{i}")).with_key(format!("k-{i}"))
}

/// Produces one record at a time to `safe` until `stop`, timing each round
/// trip (and at least 20 of them).
fn good_producer(addr: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<Served> {
    std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        let mut served = Served {
            latencies: Vec::new(),
            acked: Vec::new(),
        };
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) || i < 20 {
            let started = Instant::now();
            let (code, base) = produce(&mut c, "safe", 0, batch(&[good_record(i)]));
            served.latencies.push(started.elapsed());
            assert_eq!(code, 0, "the good producer was refused");
            served.acked.push((base, i));
            i += 1;
        }
        served
    })
}

/// Every acknowledged record of the good producer reads back intact,
/// fetched through the broker (a MiB at a time) and CRC-checked.
fn check_stored(broker: &TestBroker, served: &Served) {
    let mut c = broker.client();
    let mut values = Vec::new();
    let end = served.acked.iter().map(|a| a.0 + 1).max().unwrap_or(0);
    while (values.len() as i64) < end {
        let resp = c.call(
            &fetch_request(&[("safe", 0, values.len() as i64)], 0, 1, 1 << 20, 1 << 20),
            FETCH_V,
        );
        let mut bytes = resp.responses[0].partitions[0].records.clone().unwrap();
        assert!(!bytes.is_empty(), "nothing at offset {}", values.len());
        while !bytes.is_empty() {
            let batch = Batch::parse(bytes.clone()).unwrap();
            bytes = bytes.split_off(batch.bytes().len());
            for r in batch.records().unwrap() {
                let r = r.unwrap();
                assert_eq!(r.offset, Offset(values.len() as u64));
                values.push(r.value);
            }
        }
    }
    for (base, i) in &served.acked {
        let value = values[*base as usize].as_deref();
        assert_eq!(value, Some(format!("good-{i}").as_bytes()));
    }
}

/// An ApiVersions v3 request frame, length prefix included.
fn api_versions_frame() -> Vec<u8> {
    let mut c = Vec::new();
    let mut body = Vec::new();
    // Header v2: key 18, version 3, correlation id, client id, no tags.
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(4i16).to_be_bytes());
    body.extend_from_slice(b"slow");
    body.push(0);
    // Body v3: compact client software name and version, no tags.
    body.extend_from_slice(&[5, b's', b'l', b'o', b'w', 2, b'1', 0]);
    c.extend_from_slice(&(body.len() as i32).to_be_bytes());
    c.extend_from_slice(&body);
    c
}

/// Whether the broker has closed `s`: reads EOF or a reset within `wait`;
/// `false` when the wait passes with the connection open.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn config(f: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let mut c = test_config();
    f(&mut c);
    c
}

#[test]
fn slow_clients_are_cut_off_at_the_request_timeout_while_others_are_served() {
    let _g = measuring();
    let timeout = Duration::from_secs(2);
    let broker = TestBroker::start(config(|c| c.request_timeout = timeout));
    broker.log.create_topic("safe", 1, None).unwrap();
    let fds_before = open_fds();
    let stop = Arc::new(AtomicBool::new(false));
    let good = good_producer(broker.addr, Arc::clone(&stop));

    // Slow-loris clients: a valid frame, one byte per second.
    let frame = api_versions_frame();
    let slow: Vec<_> = (0..scaled(20))
        .map(|_| {
            let frame = frame.clone();
            let addr = broker.addr;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let started = Instant::now();
                for (sent, byte) in frame.iter().enumerate() {
                    if s.write_all(&[*byte]).is_err() {
                        return (sent, started.elapsed());
                    }
                    // The one-second pause between bytes is the attack's
                    // pace; it ends early when the broker closes.
                    if closed_within(&mut s, Duration::from_secs(1)) {
                        return (sent + 1, started.elapsed());
                    }
                }
                panic!("the broker waited for a whole {}-byte frame", frame.len());
            })
        })
        .collect();
    let cut: Vec<(usize, Duration)> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let served = good.join().unwrap();

    for (sent, after) in &cut {
        assert!(*sent < frame.len(), "sent the whole frame");
        assert!(
            *after >= timeout - Duration::from_millis(100) && *after < timeout * 3,
            "cut after {after:?}, the request timeout being {timeout:?}"
        );
    }
    // Served throughout, and never waiting anywhere near the slow clients'
    // deadline (round trips are milliseconds; the bound allows a busy machine).
    assert!(served.latencies.len() >= 20);
    assert!(
        served.max() < timeout / 2,
        "a round trip took {:?} beside the slow clients",
        served.max()
    );
    check_stored(&broker, &served);
    // Every slow connection's descriptors are returned.
    assert!(
        wait_until(Duration::from_secs(10), || open_fds() <= fds_before),
        "{} descriptors open, {fds_before} before",
        open_fds()
    );
    eprintln!(
        "slow clients: {} cut after {:?} to {:?} having sent {} to {} of {} bytes; \
         good producer: {} round trips, median {:?}, max {:?}",
        cut.len(),
        cut.iter().map(|c| c.1).min().unwrap(),
        cut.iter().map(|c| c.1).max().unwrap(),
        cut.iter().map(|c| c.0).min().unwrap(),
        cut.iter().map(|c| c.0).max().unwrap(),
        frame.len(),
        served.latencies.len(),
        served.median(),
        served.max()
    );
}

#[test]
fn idle_connections_are_closed_and_their_descriptors_return() {
    let _g = measuring();
    let idle = Duration::from_millis(500);
    let broker = TestBroker::start(config(|c| c.connection_idle_timeout = idle));
    broker.log.create_topic("safe", 1, None).unwrap();
    let fds_before = open_fds();
    let n = scaled(300);

    // An active client, one request per fifth of the idle timeout, stays
    // connected throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let active = {
        let (addr, stop) = (broker.addr, Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(c.call(&ApiVersionsRequest::default(), 3).error_code, 0);
                calls += 1;
                // The client's pace, not a wait for state.
                std::thread::sleep(idle / 5);
            }
            calls
        })
    };
    let started = Instant::now();
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(broker.addr).unwrap())
        .collect();
    let peak_fds = open_fds();
    // A close is an EOF, which only a connection the broker accepted gets.
    let mut closed = 0;
    let mut first_close = None;
    for s in &mut conns {
        if closed_within(s, Duration::from_secs(30)) {
            closed += 1;
            first_close.get_or_insert_with(|| started.elapsed());
        }
    }
    assert_eq!(closed, n);
    // The broker's ends are gone while the clients still hold theirs.
    assert!(
        wait_until(Duration::from_secs(10), || open_fds() <= fds_before + n + 2),
        "{} descriptors open with {n} client ends held, {fds_before} before",
        open_fds()
    );
    let elapsed = started.elapsed();
    let first_close = first_close.unwrap();
    assert!(
        first_close >= idle,
        "closed after {first_close:?}, before the idle timeout"
    );
    // The active client outlived the idle connections.
    stop.store(true, Ordering::Relaxed);
    let calls = active.join().unwrap();
    drop(conns);
    assert!(wait_until(Duration::from_secs(10), || open_fds() <= fds_before));
    eprintln!(
        "idle: {n} connections closed from {first_close:?} to {elapsed:?} (timeout {idle:?}); \
         descriptors {fds_before} -> {peak_fds} -> {}; active client made {calls} calls",
        open_fds()
    );
}

#[test]
fn a_connection_flood_beyond_the_limit_is_closed_and_existing_clients_keep_working() {
    let _g = measuring();
    let max = 16;
    let broker = TestBroker::start(config(|c| c.max_connections = max));
    broker.log.create_topic("safe", 1, None).unwrap();
    let fds_before = open_fds();
    let stop = Arc::new(AtomicBool::new(false));
    // Holds one slot from before the flood to after it.
    let good = good_producer(broker.addr, Arc::clone(&stop));
    assert!(wait_until(Duration::from_secs(10), || {
        open_fds() >= fds_before + 2
    }));

    let n = scaled(400);
    let started = Instant::now();
    let mut flood: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(broker.addr).unwrap())
        .collect();
    let mut open = 0;
    for s in &mut flood {
        if !closed_within(s, Duration::from_millis(20)) {
            open += 1;
        }
    }
    let flood_time = started.elapsed();
    assert!(
        open < max,
        "{open} flood connections served, the limit being {max} with one taken"
    );
    // The broker holds at most `max` connections' descriptors, though the
    // client side still holds all of its ends.
    let during = open_fds();
    assert!(
        during <= fds_before + n + max + 2,
        "{during} descriptors with {n} client ends, {fds_before} before"
    );
    stop.store(true, Ordering::Relaxed);
    let served = good.join().unwrap();
    assert!(
        served.max() < Duration::from_secs(1),
        "a round trip took {:?} during the flood",
        served.max()
    );
    check_stored(&broker, &served);

    // Once the flood ends, new clients are served again.
    drop(flood);
    assert!(wait_until(Duration::from_secs(10), || open_fds() <= fds_before + 2));
    let mut c = broker.client();
    let _ = c.call(&ApiVersionsRequest::default(), 3);
    eprintln!(
        "flood: {n} connections in {flood_time:?}, {open} served and {} closed (limit {max}); \
         descriptors {fds_before} -> {during}; good producer: {} round trips, median {:?}, max {:?}",
        n - open,
        served.latencies.len(),
        served.median(),
        served.max()
    );
}

#[test]
fn partial_and_oversize_frames_hold_bounded_memory_and_starve_no_one() {
    let _g = measuring();
    let max_request = 64 << 20;
    let broker = TestBroker::start(config(|c| {
        c.max_request_bytes = max_request;
        // Four full declared frames would take all of it.
        c.max_buffered_request_bytes = 4 * max_request;
        c.max_connections = 4096;
        // Long enough that the partial frames stay for the whole test.
        c.request_timeout = Duration::from_secs(60);
    }));
    broker.log.create_topic("safe", 1, None).unwrap();
    let fds_before = open_fds();

    // Oversize or nonsense lengths: closed before anything else is read.
    for len in [max_request as i32 + 1, i32::MAX, -1, i32::MIN, 3] {
        let mut s = TcpStream::connect(broker.addr).unwrap();
        s.write_all(&len.to_be_bytes()).unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(10)),
            "length {len}"
        );
    }

    // Partial frames, each declaring the largest size and sending 1000 bytes
    // (a valid Produce header, then nothing): together they declare far more
    // than the whole budget.
    let rss_before = rss_bytes();
    let n = scaled(100);
    let mut prefix = (max_request as i32).to_be_bytes().to_vec();
    prefix.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1, 0, 0]);
    prefix.resize(1004, 0x55);
    let mut partial = Vec::new();
    for _ in 0..n {
        let mut c = Client::connect(broker.addr);
        c.stream.write_all(&prefix).unwrap();
        partial.push(c);
    }
    assert!(
        wait_until(Duration::from_secs(30), || partial
            .iter()
            .all(|c| broker_has_read(&broker, c))),
        "the broker did not read the partial frames"
    );
    let rss_partial = rss_bytes();
    let declared = n as u64 * max_request as u64;
    let grown = rss_partial.saturating_sub(rss_before);
    assert!(
        grown < 64 << 20,
        "memory grew by {grown} bytes for {n} partial frames declaring {declared} bytes"
    );

    // Beside them, a producer is served, including a frame of 1 MB that
    // arrives in many reads.
    let stop = Arc::new(AtomicBool::new(true));
    let served = good_producer(broker.addr, stop).join().unwrap();
    assert!(
        served.max() < Duration::from_secs(1),
        "a round trip took {:?} beside the partial frames",
        served.max()
    );
    check_stored(&broker, &served);
    let big: Vec<Record> = (0..10u8)
        .map(|i| Record::new(vec![b'a' + i; 100_000]).with_key(vec![i]))
        .collect();
    let mut c = broker.client();
    let (code, base) = produce(&mut c, "safe", 0, batch(&big));
    assert_eq!(code, 0);
    let fetched = c.call(
        &fetch_request(&[("safe", 0, base)], 0, 1, 4 << 20, 4 << 20),
        FETCH_V,
    );
    let records: Bytes = fetched.responses[0].partitions[0].records.clone().unwrap();
    assert!(
        records.len() >= 1_000_000,
        "fetched {} bytes",
        records.len()
    );

    // Partial frames end with their connections; descriptors come back.
    drop(partial);
    drop(c);
    assert!(wait_until(Duration::from_secs(10), || open_fds() <= fds_before));
    eprintln!(
        "partial frames: {n} declaring {} MiB in all held {} MiB of memory \
         (RSS {} -> {} MiB); good producer: {} round trips, median {:?}, max {:?}",
        declared >> 20,
        grown >> 20,
        rss_before >> 20,
        rss_partial >> 20,
        served.latencies.len(),
        served.median(),
        served.max()
    );
}
