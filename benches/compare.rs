//! moldau against the `commitlog` crate (0.2) and a raw buffered file, in one
//! process: batched and single-record appends, a sequential decoded read, and
//! fsync-per-append durability. Plain `main`, no criterion. moldau reads both
//! ways: owned (`records()`, a `Bytes` per key and value) and borrowed
//! (`for_each_record`, `&[u8]`, as commitlog hands out payloads).
//!
//! `cargo bench --bench compare`; `MOLDAU_COMPARE_RECORDS` changes the record
//! count (default 1,000,000), `MOLDAU_COMPARE_FSYNC_MS` the duration of each
//! fsync run (default 2000 ms, scaled down with a smaller record count).
//! Run without `--bench` (as `cargo test --all-targets` does), it is a smoke
//! test: 2,000 records and 20 ms fsync runs unless the variables say otherwise.
//!
//! Fairness rules: every engine writes fresh files under one directory on the
//! same file system (the cargo target dir); a write is timed until the data
//! is in the page cache (moldau: `append` returned; commitlog: `append`
//! returned, it `write`s each call; raw: `BufWriter::flush`), never fsynced
//! (except in the fsync case); reads run right after the writes, page cache
//! warm, for every engine alike. Each case runs 3 times; the best is reported.
//! MB/s counts value bytes (100 per record), the same for every engine.
//!
//! commitlog's batched case reuses one serialized `MessageBuf` (its `append`
//! only rewrites the offsets), so it measures a `write` of ready bytes;
//! `commitlog_rebuilt` serializes the 1000 messages in every call, as moldau
//! encodes its records in every `append`. The raw baseline writes every
//! record through one `BufWriter`, so it serves the batched and the single
//! case alike. `fsync_each` also runs moldau `Always` with one thread, to
//! separate the cost of one fsync from what group commit shares.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use moldau::{FlushPolicy, Offset, PartitionConfig, PartitionLog, Record};

#[path = "shared/mod.rs"]
mod shared;

const VALUE_BYTES: usize = 100;
const BATCH: usize = 1000;
const REPEATS: usize = 3;
/// Appending threads in the group-commit case.
const FSYNC_THREADS: usize = 4;

/// Best (shortest) time per case and engine, with how many records it moved.
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

    fn print(&self, case: &str, engine: &str) {
        let mb = self.rate() * VALUE_BYTES as f64 / 1e6;
        println!("{case:<16} {engine:<22} {:>14.0} {:>10.1}", self.rate(), mb);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn moldau_config(flush: FlushPolicy) -> PartitionConfig {
    PartitionConfig {
        flush,
        ..PartitionConfig::default()
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

// ---- moldau ----

/// moldau's counterpart of commitlog's reused `MessageBuf`: one batch
/// encoded once, appended with `append_batch` (validated, CRC-checked and
/// given its base offset on every call, as a broker does).
fn moldau_write_encoded(dir: &Path, value: &Bytes, n: u64, batch: usize) -> Duration {
    let log = PartitionLog::open(
        dir.join("moldau-encoded"),
        moldau_config(FlushPolicy::Never),
    )
    .expect("moldau open");
    let records: Vec<Record> = (0..batch).map(|_| Record::new(value.clone())).collect();
    let encoded =
        moldau::record::encode_batch_to_vec(&records, moldau::Timestamp::now(), Offset(0))
            .expect("encode");
    let ((), elapsed) = timed(|| {
        for _ in 0..n / batch as u64 {
            log.append_batch(&encoded).expect("moldau append_batch");
        }
    });
    log.close().expect("moldau close");
    elapsed
}

fn moldau_write(dir: &Path, value: &Bytes, n: u64, batch: usize) -> (PartitionLog, Duration) {
    let log = PartitionLog::open(dir.join("moldau-0"), moldau_config(FlushPolicy::Never))
        .expect("moldau open");
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

fn moldau_read(log: &PartitionLog, n: u64) -> Duration {
    let ((count, sum), elapsed) = timed(|| shared::read_all(log));
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

/// Like [`moldau_read`], with the borrowing visitor: keys and values are
/// `&[u8]` into the read, no reference count per record.
fn moldau_read_borrowed(log: &PartitionLog, n: u64) -> Duration {
    let ((count, sum), elapsed) = timed(|| shared::read_all_borrowed(log));
    assert_eq!(count, n);
    black_box(sum);
    elapsed
}

// ---- commitlog 0.2 ----

fn commitlog_open(dir: &Path) -> CommitLog {
    let mut opts = LogOptions::new(dir.join("commitlog"));
    // The same limits as moldau's defaults: 1 GiB segments, ~1 MiB messages.
    opts.segment_max_bytes(1 << 30).message_max_bytes(1_048_588);
    CommitLog::new(opts).expect("commitlog open")
}

fn commitlog_write_batched(dir: &Path, value: &[u8], n: u64) -> (CommitLog, Duration) {
    let mut log = commitlog_open(dir);
    let mut full: MessageBuf = (0..BATCH).map(|_| value).collect();
    let ((), elapsed) = timed(|| {
        let mut left = n;
        while left > 0 {
            if left < BATCH as u64 {
                let mut tail: MessageBuf = (0..left).map(|_| value).collect();
                log.append(&mut tail).expect("commitlog append");
                break;
            }
            // append rewrites the offsets inside the buffer, so it can be reused.
            log.append(&mut full).expect("commitlog append");
            left -= BATCH as u64;
        }
    });
    assert_eq!(log.next_offset(), n);
    (log, elapsed)
}

/// Like [`commitlog_write_batched`], but serializes each batch in the call
/// (`MessageBuf::push`: header and CRC-32C per message), as moldau encodes
/// and checksums its `Record`s in every `append`: the like-for-like case.
fn commitlog_write_rebuilt(dir: &Path, value: &[u8], n: u64) -> Duration {
    let mut log = commitlog_open(dir);
    let mut buf = MessageBuf::default();
    let ((), elapsed) = timed(|| {
        let mut left = n;
        while left > 0 {
            let k = left.min(BATCH as u64);
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

fn commitlog_write_single(dir: &Path, value: &[u8], n: u64) -> Duration {
    let mut log = commitlog_open(dir);
    let ((), elapsed) = timed(|| {
        for _ in 0..n {
            log.append_msg(value).expect("commitlog append_msg");
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
                .read(next, ReadLimit::default())
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
        let mut buf = Vec::with_capacity(VALUE_BYTES);
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

// ---- durability: group commit against an fsync per record ----

fn moldau_always(dir: &Path, value: &Bytes, threads: usize, run: Duration) -> (u64, Duration) {
    let log = Arc::new(
        PartitionLog::open(
            dir.join("moldau-always"),
            moldau_config(FlushPolicy::Always),
        )
        .expect("moldau open"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (log, stop, total) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&total));
            let record = Record::new(value.clone());
            std::thread::spawn(move || {
                let mut mine = 0;
                while !stop.load(Ordering::Relaxed) {
                    log.append(std::slice::from_ref(&record))
                        .expect("moldau append");
                    mine += 1;
                }
                total.fetch_add(mine, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("appender thread");
    }
    let elapsed = start.elapsed();
    (total.load(Ordering::Relaxed), elapsed)
}

fn raw_fsync_each(path: &Path, value: &[u8], run: Duration) -> (u64, Duration) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("raw create");
    let mut rec = Vec::with_capacity(4 + value.len());
    rec.extend_from_slice(&(value.len() as u32).to_le_bytes());
    rec.extend_from_slice(value);
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < run {
        f.write_all(&rec).expect("raw write");
        f.sync_data().expect("raw fdatasync");
        count += 1;
    }
    (count, start.elapsed())
}

fn ratio(name: &str, num: &Best, den: &Best, target: f64) {
    let r = num.rate() / den.rate();
    let verdict = if r >= target { "met" } else { "MISSED" };
    println!("{name:<44} {r:>6.2}  (target >= {target:.2}: {verdict})");
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --benches` or
    // `--all-targets`), run a smoke test of a few thousand records so that a
    // test run stays fast.
    let full = std::env::args().any(|a| a == "--bench");
    let n = env_u64("MOLDAU_COMPARE_RECORDS")
        .unwrap_or(if full { 1_000_000 } else { 2_000 })
        .max(1);
    let fsync_ms = env_u64("MOLDAU_COMPARE_FSYNC_MS").unwrap_or_else(|| match full {
        true => (2000 * n / 1_000_000).clamp(100, 2000),
        false => 20,
    });
    let fsync_run = Duration::from_millis(fsync_ms);
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let value = Bytes::from(vec![0xa5u8; VALUE_BYTES]);

    println!(
        "moldau compare: {n} records of {VALUE_BYTES} B, batches of {BATCH}, \
         best of {REPEATS} runs per case, data under {}",
        root.path().display()
    );

    let mut m_batched = Best::default();
    let mut m_encoded = Best::default();
    let mut m_single = Best::default();
    let mut m_read = Best::default();
    let mut m_read_ref = Best::default();
    let mut c_batched = Best::default();
    let mut c_rebuilt = Best::default();
    let mut c_single = Best::default();
    let mut c_read = Best::default();
    let mut r_write = Best::default();
    let mut r_read = Best::default();
    let mut m_always = Best::default();
    let mut m_always_1 = Best::default();
    let mut r_fsync = Best::default();

    for run in 0..REPEATS {
        // Each run writes into a fresh directory, removed at its end.
        let dir = tempfile::tempdir_in(root.path()).expect("run dir");
        let d = dir.path();

        let (log, t) = moldau_write(d, &value, n, BATCH);
        m_batched.add(n, t);
        m_read.add(n, moldau_read(&log, n));
        m_read_ref.add(n, moldau_read_borrowed(&log, n));
        log.close().expect("moldau close");

        m_encoded.add(
            n / BATCH as u64 * BATCH as u64,
            moldau_write_encoded(d, &value, n, BATCH),
        );

        let (log, t) = moldau_write(&d.join("single"), &value, n, 1);
        m_single.add(n, t);
        log.close().expect("moldau close");

        let (log, t) = commitlog_write_batched(d, &value, n);
        c_batched.add(n, t);
        c_read.add(n, commitlog_read(&log, n));
        drop(log);

        c_rebuilt.add(n, commitlog_write_rebuilt(&d.join("rebuilt"), &value, n));
        c_single.add(n, commitlog_write_single(&d.join("single"), &value, n));

        let raw = d.join("raw.bin");
        r_write.add(n, raw_write(&raw, &value, n));
        r_read.add(n, raw_read(&raw, n));

        let (k, t) = moldau_always(d, &value, FSYNC_THREADS, fsync_run);
        m_always.add(k, t);
        let (k, t) = moldau_always(&d.join("one"), &value, 1, fsync_run);
        m_always_1.add(k, t);
        let (k, t) = raw_fsync_each(&d.join("raw-fsync.bin"), &value, fsync_run);
        r_fsync.add(k, t);
        eprintln!("run {} of {REPEATS} done", run + 1);
    }

    println!(
        "\n{:<16} {:<22} {:>14} {:>10}",
        "case", "engine", "records/s", "MB/s"
    );
    m_batched.print("write_batched", "moldau");
    m_encoded.print("write_batched", "moldau_append_batch");
    c_batched.print("write_batched", "commitlog");
    c_rebuilt.print("write_batched", "commitlog_rebuilt");
    r_write.print("write_batched", "raw_bufwriter");
    m_single.print("write_single", "moldau");
    c_single.print("write_single", "commitlog");
    m_read.print("read", "moldau_records");
    m_read_ref.print("read", "moldau_for_each_record");
    c_read.print("read", "commitlog");
    r_read.print("read", "raw_bufreader");
    m_always.print("fsync_each", "moldau_always_4thr");
    m_always_1.print("fsync_each", "moldau_always_1thr");
    r_fsync.print("fsync_each", "raw_fdatasync_1thr");

    println!("\nratios (best of {REPEATS} each):");
    ratio("moldau batched / raw batched", &m_batched, &r_write, 0.65);
    ratio(
        "moldau batched / commitlog batched",
        &m_batched,
        &c_batched,
        1.3,
    );
    ratio(
        "moldau append_batch / commitlog batched",
        &m_encoded,
        &c_batched,
        1.3,
    );
    ratio(
        "moldau batched / commitlog rebuilt batched",
        &m_batched,
        &c_rebuilt,
        1.3,
    );
    ratio(
        "moldau single / commitlog single",
        &m_single,
        &c_single,
        3.0,
    );
    ratio("moldau read / commitlog read", &m_read, &c_read, 1.0);
    ratio("moldau read / raw read", &m_read, &r_read, 0.7);
    ratio(
        "moldau borrowed read / commitlog read",
        &m_read_ref,
        &c_read,
        1.0,
    );
    ratio("moldau borrowed read / raw read", &m_read_ref, &r_read, 0.7);
    ratio(
        "moldau Always 4 threads / raw fdatasync",
        &m_always,
        &r_fsync,
        5.0,
    );
}
