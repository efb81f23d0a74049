//! `offset_for_timestamp(t)` finds the first offset whose timestamp is at or
//! after `t`, across segments and after reopening; `None` past the largest.

mod common;

use common::*;
use moldau::{Offset, PartitionLog, Timestamp};

const RECORDS: u64 = 500;

/// Mostly increasing, with steps back every 11th record.
fn ts(i: u64) -> i64 {
    let base = 5_000_000 + 20 * i as i64;
    if i % 11 == 5 {
        base - 75
    } else {
        base
    }
}

/// The model answer: first offset whose timestamp is >= `t`.
fn expected(t: i64, stamps: &[i64]) -> Option<Offset> {
    stamps
        .iter()
        .position(|&s| s >= t)
        .map(|p| Offset(p as u64))
}

fn check(log: &PartitionLog, stamps: &[i64], what: &str) {
    let lo = stamps.iter().min().unwrap() - 30;
    let hi = stamps.iter().max().unwrap() + 30;
    for t in (lo..=hi).step_by(7).chain(stamps.iter().copied()) {
        assert_eq!(
            log.offset_for_timestamp(Timestamp(t)).unwrap(),
            expected(t, stamps),
            "{what}: t = {t}"
        );
    }
    assert_eq!(log.offset_for_timestamp(Timestamp(i64::MAX)).unwrap(), None);
    assert_eq!(
        log.offset_for_timestamp(Timestamp(i64::MIN)).unwrap(),
        Some(Offset(0))
    );
}

fn write(dir: &std::path::Path, stamps: impl Fn(u64) -> i64) -> Vec<i64> {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let mut i = 0;
    while i < RECORDS {
        let n = (1 + i % 3).min(RECORDS - i);
        let recs: Vec<_> = (i..i + n).map(|j| record_at(j, stamps(j))).collect();
        log.append(&recs).unwrap();
        i += n;
    }
    assert!(log.stats().segment_count >= 4);
    let all: Vec<i64> = (0..RECORDS).map(&stamps).collect();
    check(&log, &all, "live");
    log.close().unwrap();
    all
}

#[test]
fn increasing_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let stamps = write(tmp.path(), |i| 1_000 + 10 * i as i64);
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    check(&log, &stamps, "reopened");
}

#[test]
fn non_monotonic_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let stamps = write(tmp.path(), ts);
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    check(&log, &stamps, "reopened");
    drop(log);
    mark_unclean(tmp.path());
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    check(&log, &stamps, "recovered");
}

#[test]
fn start_offset_bounds_the_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let stamps = write(tmp.path(), |i| 1_000 + 10 * i as i64);
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    log.delete_records_before(Offset(200)).unwrap();
    let t = stamps[100];
    let got = log.offset_for_timestamp(Timestamp(t)).unwrap();
    assert_eq!(got, Some(Offset(200)), "records below the start are gone");
}
