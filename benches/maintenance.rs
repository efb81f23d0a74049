//! Compaction and retention speed.
//!
//! - `compaction/compact`: one pass over a log of 1M records (100-byte values)
//!   over 10k keys, reported as bytes of log cleaned per second, beside
//!   `compaction/copy-baseline`: reading the same segment files and writing
//!   them to one new file, fsynced (a pass can do no better than a copy).
//! - `retention/delete-1000-segments`: a retention pass that deletes 999 of
//!   1,000 segments, beside `retention/unlink-baseline`: unlinking the same
//!   2,997 files and fsyncing the directory; `retention/check-1000-segments`:
//!   a pass that deletes nothing (the cost every `retention_check_interval`
//!   pays).
//!
//! Every sample works on a fresh copy of a log built once, in the cargo
//! target dir; only the pass itself is timed.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moldau::{CompactionSettings, PartitionConfig, PartitionLog, Record, Retention, Timestamp};

const RECORDS: u64 = 1_000_000;
const KEYS: u64 = 10_000;
const VALUE_BYTES: usize = 100;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for e in fs::read_dir(src).expect("list") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
        }
    }
}

fn compacted_config() -> PartitionConfig {
    PartitionConfig {
        compacted: true,
        segment_bytes: 16 << 20,
        ..PartitionConfig::default()
    }
}

/// A partition of 1M keyed records, every segment sealed (closed cleanly).
fn build_keyed(dir: &Path) -> u64 {
    let log = PartitionLog::open(dir, compacted_config()).expect("open");
    let value = vec![0x5au8; VALUE_BYTES];
    let batch: u64 = 1_000;
    for b in 0..RECORDS / batch {
        let records: Vec<Record> = (b * batch..(b + 1) * batch)
            .map(|i| {
                Record::new(value.clone())
                    .with_key(format!("key-{:05}", i % KEYS))
                    .with_timestamp(Timestamp(0))
            })
            .collect();
        log.append(&records).expect("append");
    }
    log.roll_segment().expect("roll");
    let size = log.size_bytes().expect("size");
    log.close().expect("close");
    size
}

fn compaction(c: &mut Criterion) {
    let template = tmp();
    let size = build_keyed(template.path());
    let settings = CompactionSettings {
        min_cleanable_dirty_ratio: 0.0,
        ..CompactionSettings::default()
    };
    let mut group = c.benchmark_group("compaction");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(size));
    group.bench_function("compact", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let work = tmp();
                copy_dir(template.path(), work.path());
                let log = PartitionLog::open(work.path(), compacted_config()).expect("open");
                let start = Instant::now();
                let outcome = log.compact(Timestamp(0), &settings).expect("compact");
                total += start.elapsed();
                assert!(outcome.cleaned && outcome.records_removed >= RECORDS - KEYS - 1_000);
                log.close().expect("close");
            }
            total
        });
    });
    group.bench_function("copy-baseline", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let work = tmp();
                let start = Instant::now();
                let mut out = fs::File::create(work.path().join("copy")).expect("create");
                let mut logs: Vec<_> = fs::read_dir(template.path())
                    .expect("list")
                    .map(|e| e.expect("entry").path())
                    .filter(|p| p.extension().is_some_and(|e| e == "log"))
                    .collect();
                logs.sort();
                for p in logs {
                    out.write_all(&fs::read(p).expect("read")).expect("write");
                }
                out.sync_all().expect("fsync");
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

fn retention_config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 4096,
        ..PartitionConfig::default()
    }
}

/// A partition of 1,000 segments of about 4 KiB.
fn build_segments(dir: &Path) {
    let log = PartitionLog::open(dir, retention_config()).expect("open");
    let value = vec![0x5au8; VALUE_BYTES];
    while log.stats().segment_count < 1_000 {
        let records: Vec<Record> = (0..10)
            .map(|_| Record::new(value.clone()).with_timestamp(Timestamp(0)))
            .collect();
        log.append(&records).expect("append");
    }
    log.close().expect("close");
}

fn retention(c: &mut Criterion) {
    let template = tmp();
    build_segments(template.path());
    let mut group = c.benchmark_group("retention");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("delete-1000-segments", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let work = tmp();
                copy_dir(template.path(), work.path());
                let log = PartitionLog::open(work.path(), retention_config()).expect("open");
                let keep_one = Retention {
                    max_age: None,
                    max_bytes: Some(1),
                };
                let start = Instant::now();
                let o = log
                    .apply_retention(Timestamp(0), keep_one)
                    .expect("retention");
                total += start.elapsed();
                assert_eq!(o.segments_deleted, 999);
                log.close().expect("close");
            }
            total
        });
    });
    group.bench_function("unlink-baseline", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let work = tmp();
                copy_dir(template.path(), work.path());
                let mut files: Vec<_> = fs::read_dir(work.path())
                    .expect("list")
                    .map(|e| e.expect("entry").path())
                    .filter(|p| {
                        p.extension()
                            .is_some_and(|e| e != "checkpoint" && e != "lock")
                    })
                    .collect();
                files.sort();
                // All but the last segment's three files, then the directory fsync.
                files.truncate(files.len() - 3);
                let start = Instant::now();
                for f in &files {
                    fs::remove_file(f).expect("unlink");
                }
                fs::File::open(work.path())
                    .expect("dir")
                    .sync_all()
                    .expect("fsync");
                total += start.elapsed();
            }
            total
        });
    });
    let work = tmp();
    copy_dir(template.path(), work.path());
    let log = PartitionLog::open(work.path(), retention_config()).expect("open");
    let keep_all = Retention {
        max_age: Some(Duration::from_secs(3600)),
        max_bytes: Some(1 << 30),
    };
    group.bench_function("check-1000-segments", |b| {
        b.iter(|| {
            let o = log
                .apply_retention(Timestamp(0), keep_all)
                .expect("retention");
            assert_eq!(o.segments_deleted, 0);
        });
    });
    group.finish();
}

criterion_group!(benches, compaction, retention);
criterion_main!(benches);
