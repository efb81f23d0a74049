//! `read` returns whole batches: at least one, never split, up to `max_bytes`;
//! offsets outside the log are `OffsetOutOfRange` with the right bounds.

mod common;

use common::*;
use moldau::{Error, Offset, PartitionLog};

const RECORDS: u64 = 300;

fn open(dir: &std::path::Path) -> PartitionLog {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0..RECORDS, 5);
    log
}

/// Sizes of the batches in `b`, checking each is whole and contiguous.
fn batch_sizes(b: &moldau::Batches) -> Vec<usize> {
    let mut prev: Option<Offset> = None;
    b.iter()
        .map(|batch| {
            let batch = batch.unwrap();
            if let Some(p) = prev {
                assert_eq!(batch.base_offset(), p, "batches follow each other");
            }
            prev = Some(batch.next_offset());
            batch.bytes().len()
        })
        .collect()
}

#[test]
fn reads_at_start_middle_and_end() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for at in [0, 1, 4, 5, 150, 152, RECORDS - 1] {
        let b = log.read(Offset(at), 1 << 20).unwrap();
        let first = b.records().next().unwrap().unwrap();
        assert_record(&first, at);
        assert_eq!(b.from_offset(), Offset(at));
        let first_batch = b.iter().next().unwrap().unwrap();
        assert!(first_batch.base_offset() <= Offset(at) && Offset(at) <= first_batch.last_offset());
    }
    let b = log.read(Offset(RECORDS), 1 << 20).unwrap();
    assert!(b.is_empty());
    assert_eq!(b.records().count(), 0);
    assert_eq!(b.next_offset(), None);
}

#[test]
fn max_bytes_returns_whole_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let one = log.read(Offset(10), 1).unwrap();
    assert_eq!(
        batch_sizes(&one).len(),
        1,
        "max_bytes 1 still returns one batch"
    );
    assert_eq!(one.next_offset(), Some(Offset(15)));
    let zero = log.read(Offset(10), 0).unwrap();
    assert_eq!(batch_sizes(&zero).len(), 1);
    let size = one.len();
    for max in [size, size + 1, 2 * size - 1, 2 * size, 5 * size + 3, 1000] {
        let b = log.read(Offset(10), max).unwrap();
        let sizes = batch_sizes(&b);
        assert_eq!(sizes.iter().sum::<usize>(), b.len(), "no partial batch");
        assert!(b.len() <= max.max(size), "max {max}: read {}", b.len());
        assert!(!sizes.is_empty());
        // Another whole batch would not have fit (or the segment ended).
        let next = b.next_offset().unwrap();
        if next < log.end_offset() {
            let following = log.read(next, 1).unwrap().len();
            let same_segment = log.read(Offset(10), 1 << 20).unwrap().len() > b.len();
            assert!(!same_segment || b.len() + following > max, "max {max}");
        }
        let recs: Vec<_> = b.records().map(|r| r.unwrap()).collect();
        for (k, r) in recs.iter().enumerate() {
            assert_record(r, 10 + k as u64);
        }
        assert_eq!(next, Offset(10 + recs.len() as u64));
    }
}

#[test]
fn next_offset_walks_the_whole_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let mut next = Offset(0);
    let mut seen = 0;
    while next < log.end_offset() {
        let b = log.read(next, 700).unwrap();
        for r in b.records() {
            assert_record(&r.unwrap(), seen);
            seen += 1;
        }
        next = b.next_offset().unwrap();
        assert_eq!(next, Offset(seen));
    }
    assert_eq!(seen, RECORDS);
}

#[test]
fn out_of_range_reports_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let end = Offset(RECORDS);
    match log.read(Offset(RECORDS + 1), 100) {
        Err(Error::OffsetOutOfRange {
            offset,
            start,
            end: e,
        }) => {
            assert_eq!((offset, start, e), (Offset(RECORDS + 1), Offset(0), end))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        log.read(Offset(u64::MAX), 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    log.delete_records_before(Offset(120)).unwrap();
    match log.read(Offset(119), 100) {
        Err(Error::OffsetOutOfRange {
            offset,
            start,
            end: e,
        }) => {
            assert_eq!((offset, start, e), (Offset(119), Offset(120), end))
        }
        other => panic!("{other:?}"),
    }
    let b = log.read(Offset(120), 1).unwrap();
    assert_record(&b.records().next().unwrap().unwrap(), 120);
}
