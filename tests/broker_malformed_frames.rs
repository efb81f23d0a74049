//! Bad input on one connection while a good producer keeps going on
//! another: random bytes, negative and huge lengths (refused before the body
//! is read), a truncated header, an unknown API key, known keys with garbage
//! bodies (including an array count of millions in a few bytes), and a batch
//! with a bad CRC. The bad connections get an error response or are closed;
//! the broker keeps serving, and every acknowledged record is stored intact.
#![cfg(feature = "broker")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::broker::{batch, test_config, TestBroker};
use common::kafka::produce;
use kafka_protocol::messages::ApiVersionsRequest;
use moldau::{Offset, Record};

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Whether the broker closed `s` (EOF or reset) rather than answering.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // Bytes of a response: read until the close, if any, or a timeout.
            Ok(_) => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                )
            }
        }
    }
}

/// A frame with a valid length prefix around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn header(key: i16, version: i16) -> Vec<u8> {
    let mut h = key.to_be_bytes().to_vec();
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&7i32.to_be_bytes());
    // client_id: null (nullable string, length -1).
    h.extend_from_slice(&(-1i16).to_be_bytes());
    h
}

fn record(i: u64) -> Record {
    Record::new(format!("good-{i}")).with_key(format!("k-{i}"))
}

#[test]
fn bad_frames_close_their_connection_and_harm_nothing() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("safe", 1, None).unwrap();
    let addr = broker.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut c = common::broker::Client::connect(addr);
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 50 {
                let (code, base) = produce(&mut c, "safe", 0, batch(&[record(i)]));
                assert_eq!(code, 0, "the good producer was refused");
                acked.push((base, i));
                i += 1;
            }
            acked
        })
    };

    // Lengths refused before any body is read: nothing follows them, so a
    // broker waiting for the body would not close.
    for len in [-5i32, -1, i32::MAX, 100 << 20 | 1, 0, 4] {
        let mut s = connect(addr);
        s.write_all(&len.to_be_bytes()).unwrap();
        if len == 4 {
            // A truncated header: four bytes where eight are the minimum.
            s.write_all(&[0, 18, 0, 0]).unwrap();
        }
        assert!(closed(&mut s), "length {len}");
    }
    // An unknown API key, and a known one at a version never advertised.
    for (key, version) in [(999i16, 0i16), (1, 99), (0, 1)] {
        let mut s = connect(addr);
        s.write_all(&frame(&header(key, version))).unwrap();
        assert!(closed(&mut s), "key {key} v{version}");
    }
    // Metadata v0 whose topic array claims 54 million entries in 5 bytes:
    // refused without the allocation.
    let mut s = connect(addr);
    let mut body = header(3, 0);
    body.extend_from_slice(&[0x03, 0x3c, 0x0c, 0x00, 0xb6]);
    s.write_all(&frame(&body)).unwrap();
    assert!(closed(&mut s));
    // Metadata v12 (flexible) whose compact topic array claims 4 billion
    // entries: unpatched, the up-front allocation (hundreds of GiB) aborts
    // the whole process.
    let mut s = connect(addr);
    let mut body = header(3, 12);
    body.push(0); // the header's tagged fields
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    s.write_all(&frame(&body)).unwrap();
    assert!(closed(&mut s));

    // Known keys with garbage bodies, and plain random bytes.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let keys: [(i16, i16); 18] = [
        (0, 9),
        (1, 12),
        (2, 7),
        (3, 12),
        (8, 8),
        (9, 7),
        (10, 3),
        (11, 7),
        (12, 4),
        (13, 5),
        (14, 5),
        (15, 5),
        (16, 4),
        (18, 3),
        (19, 7),
        (20, 4),
        (22, 4),
        (32, 4),
    ];
    for round in 0..150 {
        let mut s = connect(addr);
        let (key, version) = keys[round % keys.len()];
        let n = (rng.next() % 200) as usize;
        let bytes = match round % 3 {
            0 => {
                let mut raw = rng.bytes(n);
                raw.truncate(n);
                frame(&raw)
            }
            _ => {
                let mut body = header(key, version);
                body.extend(rng.bytes(n));
                frame(&body)
            }
        };
        s.write_all(&bytes).unwrap();
        // A garbage body that happens to decode may be answered; either way
        // the broker must not hang or fall over. Closing our side ends it.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }

    // A batch with a bad CRC gets CORRUPT_MESSAGE and the connection stays.
    let mut c = broker.client();
    let mut bad = batch(&[record(0)]).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    assert_eq!(produce(&mut c, "safe", 0, Bytes::from(bad)).0, 2);
    assert_eq!(c.call(&ApiVersionsRequest::default(), 3).error_code, 0);

    stop.store(true, Ordering::Relaxed);
    let acked = good.join().unwrap();
    assert!(acked.len() >= 50);
    // Every acknowledged record is stored, in order, with its content.
    let d = broker.log.describe_topic("safe").unwrap();
    assert_eq!(d.partitions[0].end_offset, Offset(acked.len() as u64));
    let stored = read_all(&broker, acked.len());
    for (base, i) in acked {
        let r = &stored[base as usize];
        assert_eq!(r.offset, Offset(base as u64));
        assert_eq!(r.value.as_deref(), Some(format!("good-{i}").as_bytes()));
    }
}

/// Reads `n` records of `safe` through a fetch on a fresh connection.
fn read_all(broker: &TestBroker, n: usize) -> Vec<moldau::StoredRecord> {
    let mut c = broker.client();
    let mut out = Vec::new();
    while out.len() < n {
        let req =
            common::kafka::fetch_request(&[("safe", 0, out.len() as i64)], 0, 1, 1 << 20, 1 << 20);
        let resp = c.call(&req, common::kafka::FETCH_V);
        let bytes = resp.responses[0].partitions[0].records.clone().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log =
            moldau::PartitionLog::open(dir.path(), moldau::PartitionConfig::default()).unwrap();
        // Re-append the fetched bytes to a scratch log to decode them with
        // moldau's own reader (offsets are reassigned from 0, so shift).
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize + 12;
            log.append_batch(&rest[..len]).unwrap();
            rest = &rest[len..];
        }
        let from = out.len() as u64;
        for r in log.read(Offset(0), usize::MAX).unwrap().records() {
            let mut r = r.unwrap();
            r.offset = Offset(r.offset.0 + from);
            out.push(r);
        }
    }
    out
}
