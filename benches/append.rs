//! `PartitionLog::append` throughput: 100-byte values, 1, 100 and 1000 records
//! per call, `FlushPolicy::Never`. One `Bytes` value is shared by every record
//! (a clone is a reference count), so this measures the log, not allocation.

use std::time::Duration;

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
        // A fresh log per batch size; segments roll at the default 1 GiB, so a
        // long run also pays for rolls, as a real log would.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let config = PartitionConfig {
            flush: FlushPolicy::Never,
            ..PartitionConfig::default()
        };
        let log = PartitionLog::open(dir.path().join("bench-0"), config).expect("open");
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(batch),
            &records,
            |b, records| {
                b.iter(|| log.append(records).expect("append"));
            },
        );
        log.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
