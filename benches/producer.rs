//! `Producer::send` against the partition log it writes to, in one run:
//! `PartitionLog::append` of one record per call (the baseline), `send` from
//! one thread (keyless to a 1-partition topic, keyed to a 4-partition
//! topic), and `send` from 4 threads to a 4-partition topic. 100-byte values
//! shared by every record (a clone is a reference count), flush policy
//! `Never`, logs in the temp directory.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moldau::{
    partition_for_key, FlushPolicy, Log, LogConfig, PartitionConfig, PartitionLog, Producer,
    ProducerConfig, Record,
};
use tempfile::TempDir;

const VALUE_BYTES: usize = 100;
/// Distinct keys cycled through by keyed sends.
const KEYS: usize = 1024;
const THREADS: u64 = 4;
/// Records after which a benchmark's log is replaced by a fresh one (about
/// 40 MB of batches), so samples measure the write path rather than segment
/// rolls (which fsync a whole 1 GiB segment) or the kernel throttling a
/// writer with gigabytes of dirty pages. Not once per sample: a new data
/// directory costs tens of milliseconds of fsyncs, and criterion plans its
/// iteration counts from whole calls, setup included.
const ROTATE_RECORDS: u64 = 200_000;
/// Records written untimed into a fresh log: the first appends allocate
/// and fault in the segment's first pages (hundreds of microseconds).
const WARM_RECORDS: u64 = 1000;

/// What a benchmark writes to: opened in a fresh directory, written one
/// record per call.
trait Target: Sized {
    fn open(dir: &Path) -> Self;
    /// Writes record number `i`.
    fn write(&self, i: u64);
    fn close(self);
}

/// A target and its directory, with the records written so far.
struct Fresh<T> {
    target: T,
    written: u64,
    _dir: TempDir,
}

/// The target in `slot`, replaced first if it has taken `ROTATE_RECORDS`.
fn current<T: Target>(slot: &mut Option<Fresh<T>>) -> &mut Fresh<T> {
    if slot.as_ref().is_some_and(|f| f.written >= ROTATE_RECORDS) {
        if let Some(old) = slot.take() {
            old.target.close();
        }
    }
    slot.get_or_insert_with(|| {
        let dir = tempfile::Builder::new()
            .prefix("moldau-bench-producer")
            .tempdir_in(std::env::temp_dir())
            .expect("tempdir");
        let target = T::open(dir.path());
        for i in 0..WARM_RECORDS {
            target.write(i);
        }
        Fresh {
            target,
            written: WARM_RECORDS,
            _dir: dir,
        }
    })
}

fn value() -> Bytes {
    Bytes::from(vec![0xa5u8; VALUE_BYTES])
}

fn keys() -> Vec<Bytes> {
    (0..KEYS).map(|i| Bytes::from(format!("key-{i}"))).collect()
}

/// A fresh log with topic `t` of `partitions` partitions, and a producer.
fn open_log(dir: &Path, partitions: u32) -> (Log, Producer) {
    let log = Log::open(dir, LogConfig::default()).expect("open");
    log.create_topic("t", partitions, None)
        .expect("create topic");
    let producer = log.producer(ProducerConfig::default()).expect("producer");
    (log, producer)
}

/// The baseline: `PartitionLog::append` of one record, built per call as
/// for a send (the value's `Bytes` cloned, the record dropped after).
struct Append(PartitionLog, Bytes);

impl Target for Append {
    fn open(dir: &Path) -> Self {
        let config = PartitionConfig {
            flush: FlushPolicy::Never,
            ..PartitionConfig::default()
        };
        let log = PartitionLog::open(dir.join("t-0"), config).expect("open");
        Append(log, value())
    }
    fn write(&self, _: u64) {
        let record = Record::new(self.1.clone());
        self.0
            .append(std::slice::from_ref(&record))
            .expect("append");
    }
    fn close(self) {
        self.0.close().expect("close");
    }
}

/// The threaded baseline: four bare partition logs, written by key as a
/// producer would (`partition_for_key`), without a combiner.
struct Append4(Arc<Vec<PartitionLog>>, Bytes, Vec<Bytes>);

impl Target for Append4 {
    fn open(dir: &Path) -> Self {
        let logs = (0..4)
            .map(|p| {
                let config = PartitionConfig {
                    flush: FlushPolicy::Never,
                    ..PartitionConfig::default()
                };
                PartitionLog::open(dir.join(format!("t-{p}")), config).expect("open")
            })
            .collect();
        Append4(Arc::new(logs), value(), keys())
    }
    fn write(&self, i: u64) {
        let key = self.2[i as usize % KEYS].clone();
        append_keyed(&self.0, Record::new(self.1.clone()).with_key(key));
    }
    fn close(self) {
        for l in self.0.iter() {
            l.close().expect("close");
        }
    }
}

fn append_keyed(logs: &[PartitionLog], record: Record) {
    let key = record.key.as_deref().expect("keyed");
    let p = partition_for_key(key, logs.len() as u32).expect("partitions");
    logs[p.0 as usize]
        .append(std::slice::from_ref(&record))
        .expect("append");
}

/// `send` of a keyless record to a 1-partition topic.
struct SendKeyless(Log, Producer, Bytes);

impl Target for SendKeyless {
    fn open(dir: &Path) -> Self {
        let (log, producer) = open_log(dir, 1);
        SendKeyless(log, producer, value())
    }
    fn write(&self, _: u64) {
        let record = Record::new(self.2.clone());
        self.1.send("t", record).expect("send");
    }
    fn close(self) {
        self.0.close().expect("close");
    }
}

/// `send` of keyed records to a 4-partition topic.
struct SendKeyed(Log, Producer, Bytes, Vec<Bytes>);

impl Target for SendKeyed {
    fn open(dir: &Path) -> Self {
        let (log, producer) = open_log(dir, 4);
        SendKeyed(log, producer, value(), keys())
    }
    fn write(&self, i: u64) {
        let key = self.3[i as usize % KEYS].clone();
        let record = Record::new(self.2.clone()).with_key(key);
        self.1.send("t", record).expect("send");
    }
    fn close(self) {
        self.0.close().expect("close");
    }
}

/// Times `iters` writes to the current target of `slot`.
fn run<T: Target>(slot: &mut Option<Fresh<T>>, iters: u64) -> Duration {
    let fresh = current(slot);
    let first = fresh.written;
    let start = Instant::now();
    for i in first..first + iters {
        fresh.target.write(i);
    }
    let elapsed = start.elapsed();
    fresh.written += iters;
    elapsed
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("producer");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    let mut append: Option<Fresh<Append>> = None;
    group.bench_function("append/1", |b| b.iter_custom(|n| run(&mut append, n)));
    let mut keyless: Option<Fresh<SendKeyless>> = None;
    group.bench_function("send/keyless-1p", |b| {
        b.iter_custom(|n| run(&mut keyless, n))
    });
    let mut keyed: Option<Fresh<SendKeyed>> = None;
    group.bench_function("send/keyed-4p", |b| b.iter_custom(|n| run(&mut keyed, n)));

    // Each thread writes its share of keyed records (through a clone of one
    // producer, or straight into the bare logs for the baseline); the
    // threads start together and the time is until the last one finishes.
    let mut appends4: Option<Fresh<Append4>> = None;
    group.bench_function(BenchmarkId::new("append-threads/keyed-4p", THREADS), |b| {
        b.iter_custom(|iters| {
            let fresh = current(&mut appends4);
            let (logs, value) = (Arc::clone(&fresh.target.0), fresh.target.1.clone());
            let elapsed = threaded(iters, &fresh.target.2, move |record| {
                append_keyed(&logs, Record::new(value.clone()).with_key(record))
            });
            fresh.written += iters;
            elapsed
        });
    });
    let mut threads: Option<Fresh<SendKeyed>> = None;
    group.bench_function(BenchmarkId::new("send-threads/keyed-4p", THREADS), |b| {
        b.iter_custom(|iters| {
            let fresh = current(&mut threads);
            let (producer, value) = (fresh.target.1.clone(), fresh.target.2.clone());
            let elapsed = threaded(iters, &fresh.target.3, move |key| {
                let record = Record::new(value.clone()).with_key(key);
                producer.send("t", record).expect("send");
            });
            fresh.written += iters;
            elapsed
        });
    });
    group.finish();
    // The last logs; their directories go with them.
    if let Some(f) = append {
        f.target.close();
    }
    if let Some(f) = keyless {
        f.target.close();
    }
    if let Some(f) = keyed {
        f.target.close();
    }
    if let Some(f) = threads {
        f.target.close();
    }
    if let Some(f) = appends4 {
        f.target.close();
    }
}

/// Runs `write` for `iters` keys (cycling through `keys`) split over
/// `THREADS` threads started together; the time until the last finishes.
fn threaded(
    iters: u64,
    keys: &[Bytes],
    write: impl Fn(Bytes) + Clone + Send + 'static,
) -> Duration {
    let barrier = Arc::new(Barrier::new(THREADS as usize + 1));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (write, keys, barrier) = (write.clone(), keys.to_vec(), Arc::clone(&barrier));
            // Split `iters` evenly; the first threads take the remainder.
            let n = iters / THREADS + u64::from(t < iters % THREADS);
            thread::spawn(move || {
                barrier.wait();
                for i in 0..n as usize {
                    write(keys[(i * THREADS as usize + t as usize) % KEYS].clone());
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for w in writers {
        w.join().expect("writer");
    }
    start.elapsed()
}

criterion_group!(benches, bench);
criterion_main!(benches);
