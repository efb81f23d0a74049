//! Sequential read throughput: a partition pre-filled with 200,000 records of
//! 100 bytes is read from the start with `read(offset, 1 MiB)`, decoding every
//! record (CRC check included) and touching its key and value: owned
//! (`records()`, `Bytes` per key and value) and borrowed (`for_each_record`).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moldau::{FlushPolicy, PartitionConfig, PartitionLog, Record};

#[path = "shared/mod.rs"]
mod shared;
use shared::{read_all, read_all_borrowed};

const RECORDS: u64 = 200_000;
const VALUE_BYTES: usize = 100;

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let config = PartitionConfig {
        flush: FlushPolicy::Never,
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(dir.path().join("bench-0"), config).expect("open");
    let value = Bytes::from(vec![0xa5u8; VALUE_BYTES]);
    let batch: Vec<Record> = (0..1000).map(|_| Record::new(value.clone())).collect();
    for _ in 0..RECORDS / 1000 {
        log.append(&batch).expect("append");
    }
    assert_eq!(read_all(&log).0, RECORDS);
    assert_eq!(read_all_borrowed(&log), read_all(&log));

    let mut group = c.benchmark_group("read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(RECORDS));
    group.bench_function("sequential_200k_x_100B", |b| {
        b.iter(|| black_box(read_all(&log)));
    });
    group.bench_function("sequential_200k_x_100B_borrowed", |b| {
        b.iter(|| black_box(read_all_borrowed(&log)));
    });
    group.finish();
    log.close().expect("close");
}

criterion_group!(benches, read);
criterion_main!(benches);
