//! Broker throughput with a real librdkafka client, beside the in-process
//! producer, in one run: N messages of 100 bytes (default 1,000,000;
//! `MOLDAU_BENCH_MESSAGES`) produced by one `kcat -P` (librdkafka, acks=all,
//! no compression) to a 1-partition topic of a broker running in this
//! process, then fetched back by one `kcat -C`; and the same N records sent
//! with the in-process `Producer` (one thread, keyless) to another topic of
//! the same log. A plain `main` (no criterion): `--test` (as `cargo bench
//! -- --test` passes) runs 20,000 messages as a smoke test. Needs `kcat`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moldau::broker::{BrokerConfig, Server};
use moldau::{Log, LogConfig, Offset, ProducerConfig, Record};

const VALUE_BYTES: usize = 100;

fn rate(n: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    format!(
        "{:>12.0} msgs/s {:>8.1} MB/s ({:.3} s)",
        n as f64 / secs,
        n as f64 * VALUE_BYTES as f64 / secs / 1e6,
        secs
    )
}

/// CPU time this process (the broker, while kcat runs) has used, from
/// `/proc/self/stat` (`utime` + `stime`, in clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let n: u64 = match smoke {
        true => 20_000,
        false => std::env::var("MOLDAU_BENCH_MESSAGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000),
    };
    if Command::new("kcat").arg("-V").output().is_err() {
        eprintln!("broker bench skipped: kcat is not installed (tests/interop/run.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("inproc", 1, None).unwrap();
    log.create_topic("bench", 1, None).unwrap();

    // In-process: one thread, keyless, 100-byte values.
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let started = Instant::now();
    for _ in 0..n {
        producer.send("inproc", Record::new(value.clone())).unwrap();
    }
    producer.flush().unwrap();
    let inproc = started.elapsed();

    // The broker, in this process on its own runtime.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = log.clone();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let config = BrokerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..BrokerConfig::default()
            };
            let server = Server::bind(served, config).await.unwrap();
            addr_tx.send(server.local_addr()).unwrap();
            server
                .serve(async {
                    let _ = stop_rx.await;
                })
                .await
        })
    });
    let addr = addr_rx.recv().unwrap().to_string();

    // Messages as kcat reads them: one per line.
    let input = dir.path().join("messages.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let line = [vec![b'x'; VALUE_BYTES], vec![b'\n']].concat();
        for _ in 0..n {
            f.write_all(&line).unwrap();
        }
        // On disk before timing starts: its writeback must not compete.
        f.into_inner().unwrap().sync_all().unwrap();
    }
    let cpu = cpu_time();
    let started = Instant::now();
    let status = Command::new("kcat")
        .args(["-P", "-b", &addr, "-t", "bench", "-l"])
        .args(["-X", "acks=all", "-X", "linger.ms=5"])
        .arg(&input)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    let produced = started.elapsed();
    let produce_cpu = cpu_time() - cpu;
    assert!(status.success(), "kcat -P failed");
    let end = log.describe_topic("bench").unwrap().partitions[0].end_offset;
    assert_eq!(end, Offset(n), "every message stored");

    let cpu = cpu_time();
    let started = Instant::now();
    let out = Command::new("kcat")
        // Exits at the Nth message, not after a last long poll at the end.
        .args(["-C", "-b", &addr, "-t", "bench", "-o", "beginning", "-q"])
        .args(["-c", &n.to_string()])
        // A prefetch queue that holds the whole run: with the default
        // (100,000 messages) librdkafka pauses fetching for a backoff
        // whenever kcat's printing falls behind, which measures kcat.
        .args(["-X", "queued.min.messages=10000000"])
        .args(["-X", "queued.max.messages.kbytes=2097151"])
        .args(["-f", "%o\n"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let fetched = started.elapsed();
    let fetch_cpu = cpu_time() - cpu;
    assert!(out.status.success(), "kcat -C failed");
    let lines = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    assert_eq!(lines, n, "every message fetched");

    stop_tx.send(()).unwrap();
    server.join().unwrap().unwrap();

    println!("broker throughput, {n} messages of {VALUE_BYTES} bytes, 1 partition");
    println!("  in-process Producer::send (1 thread) {}", rate(n, inproc));
    println!(
        "  kcat -P (librdkafka, acks=all)       {}",
        rate(n, produced)
    );
    println!(
        "  kcat -C (librdkafka, from start)     {}",
        rate(n, fetched)
    );
    println!(
        "  broker CPU: {:.2} s while producing, {:.2} s while fetching",
        produce_cpu.as_secs_f64(),
        fetch_cpu.as_secs_f64()
    );
    println!(
        "  broker produce / in-process: {:.2}; fetch / produce: {:.2}",
        inproc.as_secs_f64() / produced.as_secs_f64(),
        produced.as_secs_f64() / fetched.as_secs_f64()
    );
}
