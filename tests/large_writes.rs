//! Large appends go to the log file with one positioned write instead of
//! through the memory map; small ones still go through the map. Readers see
//! both alike, at once and after reopening (clean or after recovery), and
//! the two kinds interleave in one segment and across rolls.

mod common;

use common::*;
use moldau::record::encode_batch_to_vec;
use moldau::{FlushPolicy, Offset, PartitionConfig, PartitionLog, Record, Timestamp};

/// Segments of 512 KiB, batches up to 256 KiB: a few large appends roll.
fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 512 << 10,
        max_record_bytes: 256 << 10,
        index_interval_bytes: 4096,
        ..PartitionConfig::default()
    }
}

/// Appends records `range` in one call and checks the last is readable.
fn append_checked(log: &PartitionLog, range: std::ops::Range<u64>) {
    let records: Vec<Record> = range.clone().map(record).collect();
    assert_eq!(log.append(&records).unwrap(), Offset(range.start));
    assert_eq!(log.end_offset(), Offset(range.end));
    let last = read_range(log, range.end - 1..range.end);
    assert_record(&last[0], range.end - 1);
}

#[test]
fn large_and_small_appends_interleave_across_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    let mut next = 0;
    for round in 0..12 {
        // One record (through the map), then 6000 (about 220 KiB of keys
        // and values: a positioned write of a 256 KiB batch, then the rest
        // through the map), then 7 (the map again).
        for n in [1, 6000 + round, 7] {
            append_checked(&log, next..next + n);
            next += n;
        }
    }
    assert!(log.stats().segment_count > 3, "the appends rolled");
    assert_records(&log, 0..next);
    log.close().unwrap();
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    assert_records(&log, 0..next);
    append_checked(&log, next..next + 2000);
    next += 2000;
    log.close().unwrap();
    // Recovery validates every batch written either way.
    mark_unclean(tmp.path());
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    assert_eq!(log.end_offset(), Offset(next));
    assert_records(&log, 0..next);
}

#[test]
fn large_encoded_batch_is_stored_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    append_range(&log, 0..3, 3);
    let ts = Timestamp(1_700_000_000_000);
    let records: Vec<Record> = (3..4003).map(|i| record_at(i, ts.0)).collect();
    let bytes = encode_batch_to_vec(&records, ts, Offset(999)).unwrap();
    assert!(bytes.len() > 128 << 10, "{} bytes", bytes.len());
    assert_eq!(log.append_batch(&bytes).unwrap(), Offset(3));
    let check = |log: &PartitionLog| {
        let b = log.read(Offset(3), 1).unwrap();
        assert_eq!(b.len(), bytes.len());
        assert_eq!(&b.bytes()[..8], &3u64.to_be_bytes(), "baseOffset rewritten");
        assert_eq!(&b.bytes()[8..], &bytes[8..], "stored verbatim");
        assert_records(log, 0..4003);
    };
    check(&log);
    append_range(&log, 4003..4010, 7);
    log.close().unwrap();
    mark_unclean(tmp.path());
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    check(&log);
    assert_records(&log, 0..4010);
}

#[test]
fn large_appends_under_flush_always_are_flushed() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = PartitionConfig {
        flush: FlushPolicy::Always,
        ..config()
    };
    let log = PartitionLog::open(tmp.path(), cfg).unwrap();
    let mut next = 0;
    for n in [6000, 1, 6000] {
        append_checked(&log, next..next + n);
        next += n;
        assert_eq!(log.flushed_offset(), Offset(next));
    }
    assert_records(&log, 0..next);
}
