//! Consumer-group drain rate: a topic of 4 partitions × 50,000 records of
//! 100 bytes is drained by a group of 2 consumers (two threads, a fresh group
//! each iteration, from the earliest offset), in batches of 1,000 records. Baseline in the same run: one
//! thread reading the same 4 partitions with `PartitionLog::read` and owned
//! records, the partition-log figure the group's rate is compared with.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moldau::{
    AutoOffsetReset, ConsumerConfig, FlushPolicy, Log, LogConfig, PartitionConfig, PartitionLog,
    Record,
};

#[path = "shared/mod.rs"]
mod shared;
use shared::read_all;

const PARTITIONS: u32 = 4;
const PER_PARTITION: u64 = 50_000;
const VALUE_BYTES: usize = 100;

fn consumer(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let value = Bytes::from(vec![0xa5u8; VALUE_BYTES]);
    let batch: Vec<Record> = (0..1000).map(|_| Record::new(value.clone())).collect();

    // Baseline: the same data in bare partition logs.
    let raw: Vec<PartitionLog> = (0..PARTITIONS)
        .map(|p| {
            let config = PartitionConfig {
                flush: FlushPolicy::Never,
                ..PartitionConfig::default()
            };
            let log =
                PartitionLog::open(tmp.path().join(format!("raw-{p}")), config).expect("open");
            for _ in 0..PER_PARTITION / 1000 {
                log.append(&batch).expect("append");
            }
            log
        })
        .collect();

    // The topic gets the same batches (1,000 records each), written through
    // its partition directories while the log is closed.
    let log_dir = tmp.path().join("log");
    let log = Log::open(&log_dir, LogConfig::default()).expect("open");
    log.create_topic("bench", PARTITIONS, None).expect("topic");
    log.close().expect("close");
    drop(log);
    for p in 0..PARTITIONS {
        let part = PartitionLog::open(
            log_dir.join(format!("bench-{p}")),
            PartitionConfig::default(),
        )
        .expect("open partition");
        for _ in 0..PER_PARTITION / 1000 {
            part.append(&batch).expect("append");
        }
        part.close().expect("close");
    }
    let log = Log::open(&log_dir, LogConfig::default()).expect("reopen");
    let total = PER_PARTITION * u64::from(PARTITIONS);

    let mut group = c.benchmark_group("consumer");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(total));
    group.bench_function("partition_log_read_4x50k_x_100B", |b| {
        b.iter(|| {
            let n: u64 = raw.iter().map(|l| read_all(l).0).sum();
            assert_eq!(n, total);
            black_box(n)
        });
    });
    let mut round = 0u64;
    group.bench_function("group_of_2_drains_4x50k_x_100B", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                elapsed += drain(&log, &format!("bench-{round}"), total as usize);
            }
            elapsed
        });
    });
    group.finish();
    for l in raw {
        l.close().expect("close");
    }
    log.close().expect("close");
}

/// Two consumers of a new group drain the topic; returns the time taken.
fn drain(log: &Log, group: &str, total: usize) -> Duration {
    let config = ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    };
    let seen = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Both join before either polls, so the group settles once (a later
    // join would rebalance and, without commits, re-read records).
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = log.consumer(config.clone()).expect("consumer");
            c.subscribe(group, &["bench"]).expect("subscribe");
            c
        })
        .collect();
    let threads: Vec<_> = consumers
        .into_iter()
        .map(|mut c| {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                // Both members joined before either polled, so the first
                // poll takes the final assignment: this member's share is
                // known then, and it stops when it has read it (waiting for
                // the group's total would add a poll timeout at the end).
                let mut mine = None;
                let mut read = 0u64;
                while mine.is_none_or(|m| read < m) {
                    assert!(Instant::now() < deadline, "drain stalled");
                    let records = c.poll(Duration::from_millis(10)).expect("poll");
                    mine.get_or_insert(c.assignment().len() as u64 * PER_PARTITION);
                    for r in &records {
                        black_box(r.value.as_ref().map(|v| v.len()));
                    }
                    read += records.len() as u64;
                }
                seen.fetch_add(read as usize, Ordering::Relaxed);
                // Leaving now would rebalance the other member mid-drain.
                c
            })
        })
        .collect();
    let members: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("consumer thread"))
        .collect();
    let elapsed = started.elapsed();
    drop(members);
    assert_eq!(seen.load(Ordering::Relaxed), total, "every record once");
    elapsed
}

criterion_group!(benches, consumer);
criterion_main!(benches);
