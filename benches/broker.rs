//! Broker throughput and latency with real librdkafka clients, beside the
//! in-process producer and consumer, in one run:
//!
//! - produce: N messages of 100 bytes (default 1,000,000;
//!   `MOLDAU_BENCH_MESSAGES`) by one `kcat -P` (librdkafka, acks=all, no
//!   compression) to a 1-partition topic, and by four `kcat -P` at once, each
//!   N/4 messages to its own partition of a 4-partition topic; beside the
//!   in-process `Producer::send` of the same N records from 1 thread (keyless,
//!   1 partition) and from 4 threads (one partition each);
//! - fetch: each topic read back from the beginning by one `kcat -C`;
//! - end-to-end latency, one event at a time: confluent-kafka (librdkafka)
//!   producing and consuming through the broker (`benches/broker_latency.py`,
//!   `MOLDAU_BROKER_LATENCY_EVENTS`, default 20,000), beside the in-process
//!   `Producer::send` to a blocked `Consumer::poll` (`benches/latency.rs`'s
//!   loop).
//!
//! A plain `main` (no criterion): `--test` (as `cargo bench -- --test`
//! passes) runs 20,000 messages and 200 latency events as a smoke test.
//! Needs `kcat`; the latency part needs confluent-kafka, found on
//! `PYTHONPATH` or in `target/interop/py` (where `tests/interop/run.sh`
//! installs it), and is skipped with a message without it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moldau::broker::{BrokerConfig, Server};
use moldau::{Log, LogConfig, Offset, PartitionId, ProducerConfig, Record};

#[path = "shared/latency.rs"]
mod shared_latency;

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

/// Writes `n` messages as kcat reads them (one per line) to `path`,
/// fsynced so their writeback does not compete with the timed run.
fn write_lines(path: &Path, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let line = [vec![b'x'; VALUE_BYTES], vec![b'\n']].concat();
    for _ in 0..n {
        f.write_all(&line).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// One `kcat -P` per input file, all at once, each to its own partition
/// (`-p i`) of `topic`; returns when all have exited.
fn kcat_produce(addr: &str, topic: &str, inputs: &[std::path::PathBuf]) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            Command::new("kcat")
                .args(["-P", "-b", addr, "-t", topic, "-p", &i.to_string(), "-l"])
                .args(["-X", "acks=all", "-X", "linger.ms=5"])
                .arg(input)
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "kcat -P failed");
    }
    started.elapsed()
}

/// One `kcat -C` reading `n` messages of `topic` from the beginning.
fn kcat_fetch(addr: &str, topic: &str, n: u64) -> Duration {
    let started = Instant::now();
    let out = Command::new("kcat")
        // Exits at the Nth message, not after a last long poll at the end.
        .args(["-C", "-b", addr, "-t", topic, "-o", "beginning", "-q"])
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
    let elapsed = started.elapsed();
    assert!(out.status.success(), "kcat -C failed");
    let lines = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    assert_eq!(lines, n, "every message fetched");
    elapsed
}

/// Where confluent-kafka is: `PYTHONPATH` as given, plus the folder
/// `tests/interop/run.sh` installs into. `None` if Python cannot import it.
fn python_path() -> Option<String> {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop/py");
    let path = match std::env::var("PYTHONPATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{}", interop.display()),
        _ => interop.display().to_string(),
    };
    let ok = Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .env("PYTHONPATH", &path)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(path)
}

/// p50, p90, p99, p99.9, p99.99 and max in microseconds, through the
/// broker with confluent-kafka: from `produce` returning, and from the call.
fn broker_latency(addr: &str, pythonpath: &str, events: usize) -> (Vec<f64>, Vec<f64>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/broker_latency.py");
    let out = Command::new("python3")
        .arg(script)
        .args([addr, "latency"])
        .args([events, shared_latency::WARMUP.min(events), VALUE_BYTES].map(|v| v.to_string()))
        .env("PYTHONPATH", pythonpath)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "broker_latency.py failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| -> Vec<f64> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("a {prefix} line in {stdout}"))
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    (line("LATENCY_US "), line("LATENCY_CALL_US "))
}

fn print_latency(name: &str, us: &[f64]) {
    print!("  {name:<50}");
    for v in us {
        print!(" {v:>9.1}");
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    // or with `--test`, a short smoke run.
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let env_num = |name: &str, smoke_value: u64, default: u64| match smoke {
        true => smoke_value,
        false => std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    };
    let n = env_num("MOLDAU_BENCH_MESSAGES", 20_000, 1_000_000) / 4 * 4;
    let latency_events = env_num("MOLDAU_BROKER_LATENCY_EVENTS", 200, 20_000) as usize;
    if Command::new("kcat").arg("-V").output().is_err() {
        eprintln!("broker bench skipped: kcat is not installed (tests/interop/run.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("data"), LogConfig::default()).unwrap();
    log.create_topic("inproc", 1, None).unwrap();
    log.create_topic("inproc4", 4, None).unwrap();
    log.create_topic("bench", 1, None).unwrap();
    log.create_topic("bench4", 4, None).unwrap();
    log.create_topic("latency", 1, None).unwrap();

    // In-process: keyless, 100-byte values; 1 thread, then 4 threads with
    // a partition each.
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let started = Instant::now();
    for _ in 0..n {
        producer.send("inproc", Record::new(value.clone())).unwrap();
    }
    producer.flush().unwrap();
    let inproc = started.elapsed();
    let started = Instant::now();
    thread::scope(|s| {
        for p in 0..4u32 {
            let (producer, value) = (&producer, &value);
            s.spawn(move || {
                for _ in 0..n / 4 {
                    producer
                        .send_to("inproc4", PartitionId(p), Record::new(value.clone()))
                        .unwrap();
                }
            });
        }
    });
    producer.flush().unwrap();
    let inproc4 = started.elapsed();

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

    let one = [dir.path().join("messages.txt")];
    write_lines(&one[0], n);
    let four: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("messages-{i}.txt")))
        .collect();
    for f in &four {
        write_lines(f, n / 4);
    }

    let cpu = cpu_time();
    let produced = kcat_produce(&addr, "bench", &one);
    let produce_cpu = cpu_time() - cpu;
    let end = log.describe_topic("bench").unwrap().partitions[0].end_offset;
    assert_eq!(end, Offset(n), "every message stored");
    let cpu = cpu_time();
    let produced4 = kcat_produce(&addr, "bench4", &four);
    let produce4_cpu = cpu_time() - cpu;
    for p in log.describe_topic("bench4").unwrap().partitions {
        assert_eq!(p.end_offset, Offset(n / 4), "every message stored");
    }

    let cpu = cpu_time();
    let fetched = kcat_fetch(&addr, "bench", n);
    let fetch_cpu = cpu_time() - cpu;
    let fetched4 = kcat_fetch(&addr, "bench4", n);

    // Latency: in-process first (its own log), then through the broker.
    let (inproc_returned, inproc_called) = {
        let dir = tempfile::tempdir().unwrap();
        let total = shared_latency::WARMUP + latency_events;
        let (sent, received) =
            shared_latency::moldau_run(total, &value, &dir.path().join("latency"));
        let us = |from: &[u64]| {
            let l = shared_latency::latencies(from, &received);
            shared_latency::PERCENTILES
                .iter()
                .map(|p| shared_latency::percentile(&l, *p) as f64 / 1000.0)
                .collect::<Vec<_>>()
        };
        (us(&sent.returned), us(&sent.called))
    };
    let through_broker = match python_path() {
        Some(path) => Some(broker_latency(&addr, &path, latency_events)),
        None => {
            eprintln!(
                "broker latency skipped: python3 cannot import confluent_kafka \
                 (tests/interop/run.sh installs it into target/interop/py)"
            );
            None
        }
    };

    stop_tx.send(()).unwrap();
    server.join().unwrap().unwrap();

    println!("broker throughput, {n} messages of {VALUE_BYTES} bytes");
    println!(
        "  in-process Producer::send, 1 thread        {}",
        rate(n, inproc)
    );
    println!(
        "  in-process Producer::send, 4 threads (4 p) {}",
        rate(n, inproc4)
    );
    println!(
        "  kcat -P x1 (librdkafka, acks=all, 1 p)     {}",
        rate(n, produced)
    );
    println!(
        "  kcat -P x4 (librdkafka, acks=all, 4 p)     {}",
        rate(n, produced4)
    );
    println!(
        "  kcat -C, 1 partition, from start           {}",
        rate(n, fetched)
    );
    println!(
        "  kcat -C, 4 partitions, from start          {}",
        rate(n, fetched4)
    );
    println!(
        "  broker CPU: {:.2} s producing (x1), {:.2} s producing (x4), {:.2} s fetching (1 p)",
        produce_cpu.as_secs_f64(),
        produce4_cpu.as_secs_f64(),
        fetch_cpu.as_secs_f64()
    );
    println!(
        "  broker / in-process produce: x1 {:.2}, x4 {:.2}; fetch / produce (x1): {:.2}",
        inproc.as_secs_f64() / produced.as_secs_f64(),
        inproc4.as_secs_f64() / produced4.as_secs_f64(),
        produced.as_secs_f64() / fetched.as_secs_f64()
    );
    println!(
        "\nend-to-end latency, {latency_events} events one at a time (µs)\n  {:<50} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "",
        "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    print_latency("in-process, from send return", &inproc_returned);
    print_latency("in-process, from send call", &inproc_called);
    if let Some((returned, called)) = &through_broker {
        print_latency("confluent-kafka via broker, from produce return", returned);
        print_latency("confluent-kafka via broker, from produce call", called);
    }
}
