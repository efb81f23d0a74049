//! moldau against what a user would embed instead, in one run: write N
//! records (default 1,000,000) and read them back, for 100-byte and 1 KiB
//! values, with
//!
//! - moldau's partition log (`PartitionLog::append` of `batch` records per
//!   call; reads owned with `records()` and borrowed with `for_each_record`),
//! - moldau's producer and consumer (`Producer::send`, or `send_batch` of
//!   `batch` records, to a 1-partition topic of a `Log`; read back by one
//!   `Consumer::poll` loop),
//! - the `commitlog` crate (0.2: `append_msg`, or `append` of a `MessageBuf`
//!   of `batch` messages serialized once and reused, its fastest path; and,
//!   like for like with moldau, which encodes its records in every call, a
//!   `MessageBuf` serialized in every call),
//! - `fjall` (an LSM key-value store, default options: `insert`, or a
//!   `WriteBatch` of `batch` inserts, keys the big-endian sequence number
//!   as a log would use; read back with one forward iterator),
//! - the raw baseline: every record through one `BufWriter` (u32 length +
//!   value), read back through a `BufReader`; it does not depend on `batch`.
//!
//! Writes are swept over batch sizes 1, 10, 100 and 1000; reads follow the
//! 1000-record writes. Plain `main`, no criterion.
//!
//! Fairness rules: every engine writes fresh files under one directory on
//! the same file system (the cargo target dir); a write is timed until the
//! data is in the page cache (moldau and fjall: the call returned, both
//! write to OS buffers or a shared map; commitlog: `append` returned, it
//! `write`s each call; raw: `BufWriter::flush`), never fsynced (see
//! `benches/durability.rs` for that); reads run right after the writes,
//! page cache warm, for every engine alike; each engine's files are removed
//! before the next engine runs. Each case runs `MOLDAU_PEERS_REPEATS` times
//! (default 3) and the best run is reported. MB/s counts value bytes.
//!
//! `cargo bench --bench peers` writes `docs/bench-throughput-100b.svg` and
//! `docs/bench-throughput-1kib.svg`. `MOLDAU_PEERS_RECORDS=N` changes the
//! record count. With `--test` (as `.ci/run` passes) or without `--bench`
//! (as `cargo test --all-targets` runs it), it is a smoke test: 2,000
//! records, one repeat, no chart.

use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use moldau::{
    AutoOffsetReset, ConsumerConfig, FlushPolicy, Log, LogConfig, Offset, PartitionConfig,
    PartitionLog, ProducerConfig, Record, TopicName, TopicPartition,
};

#[path = "shared/mod.rs"]
mod shared;

#[path = "shared/chart.rs"]
mod chart;

const BATCHES: [usize; 4] = [1, 10, 100, 1000];
const VALUE_SIZES: [usize; 2] = [100, 1024];

const MOLDAU: &str = "moldau PartitionLog";
const MOLDAU_BORROWED: &str = "moldau PartitionLog (borrowed)";
const PRODUCER: &str = "moldau Producer/Consumer";
const COMMITLOG: &str = "commitlog 0.2";
const COMMITLOG_REBUILT: &str = "commitlog 0.2 (serialized per call)";
const FJALL: &str = "fjall 3";
const RAW: &str = "raw BufWriter/BufReader";
/// Engines in the order they are printed and drawn.
const ENGINES: [&str; 7] = [
    MOLDAU,
    MOLDAU_BORROWED,
    PRODUCER,
    COMMITLOG,
    COMMITLOG_REBUILT,
    FJALL,
    RAW,
];

/// Best (fastest) run of one case.
#[derive(Default, Clone, Copy)]
struct Best {
    records: u64,
    secs: f64,
}

impl Best {
    fn add(&mut self, records: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if self.records == 0 || records as f64 / secs > self.rate() {
            *self = Best { records, secs };
        }
    }

    fn rate(&self) -> f64 {
        match self.secs > 0.0 {
            true => self.records as f64 / self.secs,
            false => 0.0,
        }
    }
}

/// What a case is: write with a batch size, or the read back.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    Write(usize),
    Read,
}

/// Results by (value size, case, engine).
type Results = BTreeMap<(usize, Case, &'static str), Best>;

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

// ---- moldau: the partition log ----

fn moldau_write(dir: &Path, value: &Bytes, n: u64, batch: usize) -> (PartitionLog, Duration) {
    let config = PartitionConfig {
        flush: FlushPolicy::Never,
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(dir.join("moldau"), config).expect("moldau open");
    let records: Vec<Record> = (0..batch).map(|_| Record::new(value.clone())).collect();
    let ((), elapsed) = timed(|| {
        let mut left = n;
        while left > 0 {
            let k = left.min(batch as u64) as usize;
            log.append(&records[..k]).expect("moldau append");
            left -= k as u64;
        }
    });
    assert_eq!(log.end_offset(), Offset(n));
    (log, elapsed)
}

fn moldau_read(log: &PartitionLog, n: u64, borrowed: bool) -> Duration {
    let ((count, sum), elapsed) = timed(|| match borrowed {
        true => shared::read_all_borrowed(log),
        false => shared::read_all(log),
    });
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

// ---- moldau: producer and consumer ----

fn producer_write(dir: &Path, value: &Bytes, n: u64, batch: usize) -> (Log, Duration) {
    let log = Log::open(dir.join("moldau-log"), LogConfig::default()).expect("log open");
    log.create_topic("peers", 1, None).expect("create topic");
    let producer = log.producer(ProducerConfig::default()).expect("producer");
    let ((), elapsed) = timed(|| {
        let mut left = n;
        while left > 0 {
            let k = left.min(batch as u64);
            match k {
                1 => {
                    producer
                        .send("peers", Record::new(value.clone()))
                        .expect("send");
                }
                _ => {
                    let records = (0..k).map(|_| Record::new(value.clone())).collect();
                    producer.send_batch("peers", records).expect("send_batch");
                }
            }
            left -= k;
        }
    });
    let end = log.describe_topic("peers").expect("describe").partitions[0].end_offset;
    assert_eq!(end, Offset(n));
    (log, elapsed)
}

fn consumer_read(log: &Log, n: u64) -> Duration {
    let mut consumer = log
        .consumer(ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        })
        .expect("consumer");
    let tp = TopicPartition::new(TopicName::new("peers").expect("topic name"), 0u32);
    consumer.assign(&[tp]).expect("assign");
    let ((count, sum), elapsed) = timed(|| {
        let (mut count, mut sum) = (0u64, 0u64);
        while count < n {
            let records = consumer.poll(Duration::from_secs(10)).expect("poll");
            assert!(!records.is_empty(), "consumer stalled at {count}");
            for r in records {
                let v = r.value.as_ref().expect("value");
                sum += u64::from(v[0]) + v.len() as u64;
                count += 1;
            }
        }
        (count, sum)
    });
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

// ---- commitlog 0.2 ----

fn commitlog_write(dir: &Path, value: &[u8], n: u64, batch: usize) -> (CommitLog, Duration) {
    let mut opts = LogOptions::new(dir.join("commitlog"));
    // The same limits as moldau's defaults: 1 GiB segments, ~1 MiB messages.
    opts.segment_max_bytes(1 << 30).message_max_bytes(1_048_588);
    let mut log = CommitLog::new(opts).expect("commitlog open");
    let mut full: MessageBuf = (0..batch).map(|_| value).collect();
    let ((), elapsed) = timed(|| {
        let mut left = n;
        while left > 0 {
            if batch == 1 {
                log.append_msg(value).expect("commitlog append_msg");
                left -= 1;
            } else if left < batch as u64 {
                let mut tail: MessageBuf = (0..left).map(|_| value).collect();
                log.append(&mut tail).expect("commitlog append");
                left = 0;
            } else {
                // append rewrites the offsets inside the buffer, so it can be reused.
                log.append(&mut full).expect("commitlog append");
                left -= batch as u64;
            }
        }
    });
    assert_eq!(log.next_offset(), n);
    (log, elapsed)
}

/// Like [`commitlog_write`] with `batch` > 1, but serializes each batch in
/// the call (`MessageBuf::push`: header and CRC-32C per message), as moldau
/// encodes and checksums its records in every `append`.
fn commitlog_write_rebuilt(dir: &Path, value: &[u8], n: u64, batch: usize) -> Duration {
    let mut opts = LogOptions::new(dir.join("commitlog"));
    opts.segment_max_bytes(1 << 30).message_max_bytes(1_048_588);
    let mut log = CommitLog::new(opts).expect("commitlog open");
    let mut buf = MessageBuf::default();
    let ((), elapsed) = timed(|| {
        let mut left = n;
        while left > 0 {
            let k = left.min(batch as u64);
            buf.clear();
            for _ in 0..k {
                buf.push(value).expect("commitlog push");
            }
            log.append(&mut buf).expect("commitlog append");
            left -= k;
        }
    });
    assert_eq!(log.next_offset(), n);
    elapsed
}

fn commitlog_read(log: &CommitLog, n: u64) -> Duration {
    let ((count, sum), elapsed) = timed(|| {
        let (mut count, mut sum, mut next) = (0u64, 0u64, 0u64);
        while next < n {
            let buf = log
                .read(next, ReadLimit::max_bytes(1 << 20))
                .expect("commitlog read");
            assert!(buf.len() > 0, "commitlog read nothing at {next}");
            for m in buf.iter() {
                let p = m.payload();
                sum += u64::from(p[0]) + p.len() as u64;
                next = m.offset() + 1;
                count += 1;
            }
        }
        (count, sum)
    });
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

// ---- fjall ----

fn fjall_write(
    dir: &Path,
    value: &[u8],
    n: u64,
    batch: usize,
) -> ((fjall::Database, fjall::Keyspace), Duration) {
    let db = fjall::Database::builder(dir.join("fjall"))
        .open()
        .expect("fjall open");
    let ks = db
        .keyspace("log", fjall::KeyspaceCreateOptions::default)
        .expect("fjall keyspace");
    let ((), elapsed) = timed(|| {
        let mut i = 0u64;
        while i < n {
            let k = (n - i).min(batch as u64);
            if k == 1 {
                ks.insert(i.to_be_bytes(), value).expect("fjall insert");
            } else {
                let mut b = db.batch();
                for j in i..i + k {
                    b.insert(&ks, j.to_be_bytes(), value);
                }
                b.commit().expect("fjall commit");
            }
            i += k;
        }
    });
    ((db, ks), elapsed)
}

fn fjall_read(ks: &fjall::Keyspace, n: u64) -> Duration {
    let ((count, sum), elapsed) = timed(|| {
        let (mut count, mut sum) = (0u64, 0u64);
        for kv in ks.iter() {
            let v = kv.value().expect("fjall read");
            sum += u64::from(v[0]) + v.len() as u64;
            count += 1;
        }
        (count, sum)
    });
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

// ---- raw file ----

fn raw_write(path: &Path, value: &[u8], n: u64) -> Duration {
    let ((), elapsed) = timed(|| {
        let mut w = BufWriter::new(File::create(path).expect("raw create"));
        let len = (value.len() as u32).to_le_bytes();
        for _ in 0..n {
            w.write_all(&len).expect("raw write");
            w.write_all(value).expect("raw write");
        }
        w.flush().expect("raw flush");
    });
    elapsed
}

fn raw_read(path: &Path, n: u64) -> Duration {
    let ((count, sum), elapsed) = timed(|| {
        let mut r = BufReader::new(File::open(path).expect("raw open"));
        let mut buf = Vec::with_capacity(1024);
        let (mut count, mut sum) = (0u64, 0u64);
        let mut len = [0u8; 4];
        while r.read_exact(&mut len).is_ok() {
            buf.resize(u32::from_le_bytes(len) as usize, 0);
            r.read_exact(&mut buf).expect("raw read");
            sum += u64::from(buf[0]) + buf.len() as u64;
            count += 1;
        }
        (count, sum)
    });
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

/// One repeat of every case for one value size, each engine in a fresh
/// directory removed before the next engine runs.
fn run_once(root: &Path, size: usize, n: u64, results: &mut Results) {
    let value = Bytes::from(vec![0xa5u8; size]);
    let mut add = |case, engine, elapsed| {
        results
            .entry((size, case, engine))
            .or_default()
            .add(n, elapsed);
    };
    let fresh = || tempfile::tempdir_in(root).expect("run dir");

    for batch in BATCHES {
        let dir = fresh();
        let (log, t) = moldau_write(dir.path(), &value, n, batch);
        add(Case::Write(batch), MOLDAU, t);
        if batch == 1000 {
            add(Case::Read, MOLDAU, moldau_read(&log, n, false));
            add(Case::Read, MOLDAU_BORROWED, moldau_read(&log, n, true));
        }
        log.close().expect("moldau close");
        drop(dir);

        let dir = fresh();
        let (log, t) = producer_write(dir.path(), &value, n, batch);
        add(Case::Write(batch), PRODUCER, t);
        if batch == 1000 {
            add(Case::Read, PRODUCER, consumer_read(&log, n));
        }
        log.close().expect("log close");
        drop(dir);

        let dir = fresh();
        let (log, t) = commitlog_write(dir.path(), &value, n, batch);
        add(Case::Write(batch), COMMITLOG, t);
        if batch == 1000 {
            add(Case::Read, COMMITLOG, commitlog_read(&log, n));
        }
        drop(log);
        drop(dir);

        if batch > 1 {
            let dir = fresh();
            let t = commitlog_write_rebuilt(dir.path(), &value, n, batch);
            add(Case::Write(batch), COMMITLOG_REBUILT, t);
            drop(dir);
        }

        let dir = fresh();
        let ((db, ks), t) = fjall_write(dir.path(), &value, n, batch);
        add(Case::Write(batch), FJALL, t);
        if batch == 1000 {
            add(Case::Read, FJALL, fjall_read(&ks, n));
        }
        drop(ks);
        drop(db);
        drop(dir);
    }

    let dir = fresh();
    let raw = dir.path().join("raw.bin");
    let t = raw_write(&raw, &value, n);
    for batch in BATCHES {
        add(Case::Write(batch), RAW, t);
    }
    add(Case::Read, RAW, raw_read(&raw, n));
}

fn label(size: usize) -> String {
    match size {
        1024 => "1 KiB".into(),
        s => format!("{s} B"),
    }
}

fn report(results: &Results, size: usize) {
    println!("\n{} values:", label(size));
    println!(
        "{:<12} {:<36} {:>14} {:>10} {:>8}  rank",
        "case", "engine", "records/s", "MB/s", "/ raw"
    );
    let mut cases: Vec<Case> = BATCHES.iter().map(|b| Case::Write(*b)).collect();
    cases.push(Case::Read);
    for case in cases {
        let raw = results.get(&(size, case, RAW)).map_or(0.0, Best::rate);
        let name = match case {
            Case::Write(b) => format!("write x{b}"),
            Case::Read => "read".to_string(),
        };
        // Rank among the engines (not the raw baseline).
        let mut ranked: Vec<(&str, f64)> = ENGINES
            .iter()
            .filter(|e| **e != RAW)
            .filter_map(|e| results.get(&(size, case, *e)).map(|b| (*e, b.rate())))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        for engine in ENGINES {
            let Some(best) = results.get(&(size, case, engine)) else {
                continue;
            };
            let rank = ranked
                .iter()
                .position(|(e, _)| *e == engine)
                .map_or("-".to_string(), |p| (p + 1).to_string());
            println!(
                "{name:<12} {engine:<36} {:>14.0} {:>10.1} {:>8.2}  {rank}",
                best.rate(),
                best.rate() * size as f64 / 1e6,
                best.rate() / raw,
            );
        }
    }
    let rate = |case, engine| results.get(&(size, case, engine)).map_or(0.0, Best::rate);
    let batched = Case::Write(1000);
    let r = rate(batched, MOLDAU) / rate(batched, RAW);
    println!(
        "  moldau batched (x1000) / raw: {r:.2} (target >= 0.65: {})",
        if r >= 0.65 { "met" } else { "MISSED" }
    );
}

fn draw(results: &Results, size: usize) {
    let series: Vec<chart::Series> = ENGINES
        .iter()
        .filter(|e| **e != MOLDAU_BORROWED)
        .map(|engine| chart::Series {
            name: engine.to_string(),
            points: BATCHES
                .iter()
                .filter_map(|b| {
                    results
                        .get(&(size, Case::Write(*b), *engine))
                        .map(|best| (*b as f64, best.rate()))
                })
                .collect(),
        })
        .collect();
    let file = match size {
        1024 => "bench-throughput-1kib.svg".to_string(),
        s => format!("bench-throughput-{s}b.svg"),
    };
    let path = chart::docs_path(&file);
    let title = format!("write throughput by batch size, {} values", label(size));
    chart::line_chart(
        &path,
        &chart::Chart {
            title: &title,
            x_label: "records per call",
            y_label: "records/s",
            x_log: true,
            y_log: true,
        },
        &series,
    )
    .expect("write chart");
    println!("chart: {}", path.display());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let n = env_u64("MOLDAU_PEERS_RECORDS")
        .unwrap_or(if full { 1_000_000 } else { 2_000 })
        .max(1);
    let repeats = env_u64("MOLDAU_PEERS_REPEATS").unwrap_or(if full { 3 } else { 1 });
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    println!(
        "peers: {n} records per case, batch sizes {BATCHES:?}, best of {repeats}, data under {}",
        root.path().display()
    );
    let mut results = Results::new();
    for size in VALUE_SIZES {
        for run in 0..repeats {
            run_once(root.path(), size, n, &mut results);
            eprintln!("{} values: run {} of {repeats} done", label(size), run + 1);
        }
    }
    for size in VALUE_SIZES {
        report(&results, size);
    }
    if full {
        for size in VALUE_SIZES {
            draw(&results, size);
        }
    }
}
