//! Sequential read throughput: a partition pre-filled with 200,000 records of
//! 100 bytes is read from the start with `read(offset, 1 MiB)`, decoding every
//! record (CRC check included) and touching its key and value: owned
//! (`records()`, `Bytes` per key and value) and borrowed (`for_each_record`).

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moldau::{FlushPolicy, Offset, PartitionConfig, PartitionLog, Record};

const RECORDS: u64 = 200_000;
const VALUE_BYTES: usize = 100;
const READ_BYTES: usize = 1 << 20;

/// Reads the whole partition; returns the record count and a checksum of
/// the bytes touched so nothing is optimised away.
fn read_all(log: &PartitionLog) -> (u64, u64) {
    let end = log.end_offset();
    let mut next = Offset(0);
    let (mut count, mut sum) = (0u64, 0u64);
    while next < end {
        let batches = log.read(next, READ_BYTES).expect("read");
        for r in batches.records() {
            let r = r.expect("record");
            sum += r.key.as_ref().map_or(0, |k| k.len() as u64);
            sum += r
                .value
                .as_ref()
                .map_or(0, |v| u64::from(v[0]) + v.len() as u64);
            next = Offset(r.offset.0 + 1);
            count += 1;
        }
    }
    (count, sum)
}

/// Like [`read_all`], with the borrowing visitor.
fn read_all_borrowed(log: &PartitionLog) -> (u64, u64) {
    let end = log.end_offset();
    let mut next = Offset(0);
    let (mut count, mut sum) = (0u64, 0u64);
    while next < end {
        let batches = log.read(next, READ_BYTES).expect("read");
        batches
            .for_each_record(|r| {
                sum += r.key.map_or(0, |k| k.len() as u64);
                sum += r.value.map_or(0, |v| u64::from(v[0]) + v.len() as u64);
                next = Offset(r.offset.0 + 1);
                count += 1;
                ControlFlow::Continue(())
            })
            .expect("record");
    }
    (count, sum)
}

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
