//! What durability costs, in one run: `FlushPolicy::Always` (every append
//! fsynced before it returns, concurrent appenders sharing fsyncs: group
//! commit) with 1, 4 and 16 threads, against the per-record baseline a user
//! would write by hand: `write` + `fdatasync` of each record on one thread.
//! A second baseline separates group commit from preallocation: `pwrite` +
//! `fdatasync` per record into a file preallocated with `fallocate`, as
//! moldau's segments are (its `fdatasync` has no file size to record).
//!
//! Two moldau paths: `PartitionLog::append` of one record per call (the
//! partition's group commit alone), and `Producer::send` to a 1-partition
//! topic configured `Always` (the producer also combines the sends that
//! queue while an fsync runs into one batch). 100-byte values; each case
//! runs for a fixed time and counts acknowledged records. The disk here is
//! shared, and its fsync rate drifts, so the cases take turns in
//! `ROUNDS` short slices with a slice of each baseline before each, and each
//! figure sums its slices.
//!
//! `cargo bench --bench durability` (2 s per case in all, baseline 6 s;
//! `MOLDAU_DURABILITY_MS`);
//! `-- --test` (what `.ci/run` passes) runs 50 ms per case.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moldau::{
    FlushPolicy, Log, LogConfig, PartitionConfig, PartitionLog, ProducerConfig, Record, TopicConfig,
};

const VALUE_BYTES: usize = 100;
const THREADS: [usize; 3] = [1, 4, 16];
/// Turns each case takes (see `main`).
const ROUNDS: u32 = 4;

/// Acknowledged records over the run, and fsyncs where known.
#[derive(Default, Clone)]
struct Outcome {
    records: u64,
    elapsed: Duration,
    syncs: Option<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn add(&mut self, other: &Outcome) {
        if self.elapsed.is_zero() {
            *self = other.clone();
            return;
        }
        self.records += other.records;
        self.elapsed += other.elapsed;
        self.syncs = self.syncs.zip(other.syncs).map(|(a, b)| a + b);
    }
}

/// Runs `work` on `threads` threads until `run` has passed; each call
/// writes one record. Returns the records written.
fn run_threads(
    threads: usize,
    run: Duration,
    work: impl Fn() + Send + Sync + 'static,
) -> (u64, Duration) {
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (work, stop, total) = (Arc::clone(&work), Arc::clone(&stop), Arc::clone(&total));
            thread::spawn(move || {
                let mut mine = 0;
                while !stop.load(Ordering::Relaxed) {
                    work();
                    mine += 1;
                }
                total.fetch_add(mine, Ordering::Relaxed);
            })
        })
        .collect();
    thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("writer thread");
    }
    (total.load(Ordering::Relaxed), start.elapsed())
}

fn raw_fsync_each(path: &Path, value: &[u8], run: Duration) -> Outcome {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("raw create");
    let mut rec = Vec::with_capacity(4 + value.len());
    rec.extend_from_slice(&(value.len() as u32).to_le_bytes());
    rec.extend_from_slice(value);
    let start = Instant::now();
    let mut records = 0;
    while start.elapsed() < run {
        f.write_all(&rec).expect("raw write");
        f.sync_data().expect("raw fdatasync");
        records += 1;
    }
    Outcome {
        records,
        elapsed: start.elapsed(),
        syncs: Some(records),
    }
}

/// Like [`raw_fsync_each`], into a file preallocated with `fallocate` (as
/// moldau's segments are), written with `pwrite`: `fdatasync` then has no
/// file size or block allocation to record, only the data.
fn raw_preallocated_fsync_each(path: &Path, value: &[u8], run: Duration) -> Outcome {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("raw create");
    let mut rec = Vec::with_capacity(4 + value.len());
    rec.extend_from_slice(&(value.len() as u32).to_le_bytes());
    rec.extend_from_slice(value);
    let len = 64 << 20;
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, len).expect("fallocate");
    f.sync_all().expect("raw fsync");
    let start = Instant::now();
    let (mut records, mut pos) = (0, 0u64);
    while start.elapsed() < run && pos + rec.len() as u64 <= len {
        f.write_all_at(&rec, pos).expect("raw pwrite");
        f.sync_data().expect("raw fdatasync");
        pos += rec.len() as u64;
        records += 1;
    }
    Outcome {
        records,
        elapsed: start.elapsed(),
        syncs: Some(records),
    }
}

fn partition_always(dir: &Path, value: &Bytes, threads: usize, run: Duration) -> Outcome {
    let config = PartitionConfig {
        flush: FlushPolicy::Always,
        ..PartitionConfig::default()
    };
    let log = Arc::new(PartitionLog::open(dir, config).expect("open partition"));
    let record = Record::new(value.clone());
    let writer = Arc::clone(&log);
    let (records, elapsed) = run_threads(threads, run, move || {
        writer
            .append(std::slice::from_ref(&record))
            .expect("append");
    });
    let stats = log.stats();
    assert_eq!(
        stats.end_offset.0, records,
        "every acknowledged record stored"
    );
    assert_eq!(
        stats.flushed_offset, stats.end_offset,
        "every record synced"
    );
    let syncs = stats.syncs;
    Arc::into_inner(log)
        .expect("threads joined")
        .close()
        .expect("close");
    Outcome {
        records,
        elapsed,
        syncs: Some(syncs),
    }
}

fn producer_always(dir: &Path, value: &Bytes, threads: usize, run: Duration) -> Outcome {
    let log = Log::open(dir, LogConfig::default()).expect("open log");
    let config = TopicConfig {
        flush: FlushPolicy::Always,
        ..log.config().topic_defaults.clone()
    };
    log.create_topic("durable", 1, Some(config))
        .expect("create topic");
    let producer = log.producer(ProducerConfig::default()).expect("producer");
    let value = value.clone();
    let (records, elapsed) = run_threads(threads, run, move || {
        producer
            .send("durable", Record::new(value.clone()))
            .expect("send");
    });
    let end = log.describe_topic("durable").expect("describe").partitions[0].end_offset;
    assert_eq!(end.0, records, "every acknowledged record stored");
    log.close().expect("close");
    Outcome {
        records,
        elapsed,
        syncs: None,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    // or with `--test`, a short smoke run.
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let run = Duration::from_millis(match smoke {
        true => 50,
        false => std::env::var("MOLDAU_DURABILITY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    });
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let d = root.path();
    let value = Bytes::from(vec![0xa5u8; VALUE_BYTES]);
    println!(
        "durability: {VALUE_BYTES}-byte records, each acknowledged only once fsynced, \
         {} ms per case, under {}",
        run.as_millis(),
        d.display()
    );

    // The disk is shared and its fsync rate drifts by 10x within a minute
    // here, so the cases take turns in short slices, the baseline between
    // them, and each case's figure sums its slices.
    let slice = run / ROUNDS;
    let mut raw = Outcome::default();
    let mut prealloc = Outcome::default();
    let mut cases: Vec<(String, usize, Outcome)> = Vec::new();
    for threads in THREADS {
        cases.push((
            format!("PartitionLog::append, {threads:>2} threads"),
            threads,
            Outcome::default(),
        ));
    }
    for threads in THREADS {
        cases.push((
            format!("Producer::send, {threads:>2} threads"),
            threads,
            Outcome::default(),
        ));
    }
    for round in 0..ROUNDS {
        for (i, (_, threads, total)) in cases.iter_mut().enumerate() {
            raw.add(&raw_fsync_each(
                &d.join(format!("raw-{round}-{i}.bin")),
                &value,
                slice / 2,
            ));
            let path = d.join(format!("prealloc-{round}-{i}.bin"));
            prealloc.add(&raw_preallocated_fsync_each(&path, &value, slice / 4));
            let dir = d.join(format!("case-{round}-{i}"));
            let o = match i < THREADS.len() {
                true => partition_always(&dir, &value, *threads, slice),
                false => producer_always(&dir, &value, *threads, slice),
            };
            total.add(&o);
            std::fs::remove_dir_all(&dir).expect("remove case dir");
        }
    }

    println!(
        "\n{:<40} {:>12} {:>10} {:>14} {:>8} {:>8}",
        "case", "records/s", "fsyncs", "records/fsync", "/ raw", "/ prealloc"
    );
    for (name, o) in [
        ("raw write + fdatasync, 1 thread", &raw),
        ("raw, preallocated, pwrite + fdatasync", &prealloc),
    ] {
        println!(
            "{name:<40} {:>12.0} {:>10} {:>14.2} {:>8.2} {:>8.2}",
            o.rate(),
            o.records,
            1.0,
            o.rate() / raw.rate(),
            o.rate() / prealloc.rate()
        );
    }
    for (name, _, o) in &cases {
        let (syncs, per) = match o.syncs {
            Some(s) => (
                s.to_string(),
                format!("{:.2}", o.records as f64 / s.max(1) as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{name:<40} {:>12.0} {:>10} {:>14} {:>8.2} {:>8.2}",
            o.rate(),
            syncs,
            per,
            o.rate() / raw.rate(),
            o.rate() / prealloc.rate()
        );
    }
    println!("\ntarget: 16 threads >= 10x the raw per-record fsync rate");
    for (name, threads, o) in &cases {
        if *threads == 16 {
            let r = o.rate() / raw.rate();
            let verdict = if r >= 10.0 { "met" } else { "MISSED" };
            let p = o.rate() / prealloc.rate();
            let strict = if p >= 10.0 { "met" } else { "MISSED" };
            println!(
                "  {name:<36} {r:>6.2}  ({verdict}); against the preallocated baseline {p:.2} ({strict})"
            );
        }
    }
}
