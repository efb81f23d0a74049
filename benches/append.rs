//! `PartitionLog::append` throughput: 100-byte values, 1, 100 and 1000 records
//! per call, `FlushPolicy::Never`. One `Bytes` value is shared by every record
//! (a clone is a reference count), so this measures the log, not allocation.
//! Each sample appends into a fresh log in the cargo target dir.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moldau::{FlushPolicy, PartitionConfig, PartitionLog, Record};

const VALUE_BYTES: usize = 100;

fn append(c: &mut Criterion) {
    let value = Bytes::from(vec![0xa5u8; VALUE_BYTES]);
    let mut group = c.benchmark_group("append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for batch in [1usize, 100, 1000] {
        let records: Vec<Record> = (0..batch).map(|_| Record::new(value.clone())).collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(batch),
            &records,
            |b, records| {
                // A fresh log per sample, removed after it: each sample writes
                // at most ~100 MB into new files, so it measures the append path
                // rather than segment rolls (which fsync a whole 1 GiB segment)
                // or the kernel throttling a writer with gigabytes of dirty pages.
                b.iter_custom(|iters| {
                    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
                    let config = PartitionConfig {
                        flush: FlushPolicy::Never,
                        ..PartitionConfig::default()
                    };
                    let log = PartitionLog::open(dir.path().join("bench-0"), config).expect("open");
                    let start = Instant::now();
                    for _ in 0..iters {
                        log.append(records).expect("append");
                    }
                    let elapsed = start.elapsed();
                    log.close().expect("close");
                    elapsed
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
