//! `truncate_to` removes records from an offset on (active or sealed
//! segment), durably, without disturbing bytes a reader already holds;
//! `delete_records_before` moves the start offset and deletes whole segments.

mod common;

use std::path::Path;

use common::*;
use moldau::{Error, Offset, PartitionLog};

const RECORDS: u64 = 300;

fn prepare(dir: &Path) -> (PartitionLog, Vec<Offset>) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let bases = append_range(&log, 0..RECORDS, 3);
    assert!(log.stats().segment_count >= 4);
    (log, bases)
}

fn base_of(file: &Path) -> u64 {
    file.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Truncates at `at` (inside a batch: the whole batch goes), checks, appends,
/// and checks again after a clean and an unclean reopen.
fn truncate_and_check(dir: &Path, at: u64) {
    let (log, _) = prepare(dir);
    let held = log.read(Offset(0), 1 << 20).unwrap();
    let held_tail = log.read(Offset(at), 1 << 20).unwrap();
    let batch_base = at / 3 * 3;
    assert_eq!(log.truncate_to(Offset(at)).unwrap(), Offset(batch_base));
    assert_eq!(log.end_offset(), Offset(batch_base));
    assert_records(&log, 0..batch_base);
    assert!(matches!(
        log.read(Offset(batch_base + 1), 10),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Results read before the truncation still hold the old records.
    for (k, r) in held.records().enumerate() {
        assert_record(&r.unwrap(), k as u64);
    }
    for r in held_tail.records() {
        let r = r.unwrap();
        assert_record(&r, r.offset.0);
    }
    // The segments after the cut are gone.
    let last = log_files(dir).pop().unwrap();
    assert!(base_of(&last) <= batch_base, "{last:?}");
    append_range(&log, batch_base..batch_base + 10, 2);
    assert_records(&log, 0..batch_base + 10);
    log.close().unwrap();
    let log = PartitionLog::open(dir, small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(batch_base + 10));
    assert_records(&log, 0..batch_base + 10);
    drop(log);
    mark_unclean(dir);
    let log = PartitionLog::open(dir, small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(batch_base + 10));
    assert_records(&log, 0..batch_base + 10);
}

#[test]
fn truncate_in_active_segment() {
    let tmp = tempfile::tempdir().unwrap();
    truncate_and_check(tmp.path(), RECORDS - 7);
}

#[test]
fn truncate_in_sealed_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (log, _) = prepare(dir);
    let files = log_files(dir);
    let second = base_of(&files[1]);
    drop(log);
    std::fs::remove_dir_all(dir).unwrap();
    truncate_and_check(dir, second + 4);
}

#[test]
fn truncate_at_segment_start_and_at_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = prepare(tmp.path());
    let end = log.end_offset();
    assert_eq!(log.truncate_to(end).unwrap(), end, "at the end: no-op");
    assert_eq!(log.truncate_to(Offset(u64::MAX)).unwrap(), end);
    let files = log_files(tmp.path());
    let third = base_of(&files[2]);
    assert_eq!(log.truncate_to(Offset(third)).unwrap(), Offset(third));
    assert_records(&log, 0..third);
    assert_eq!(log.truncate_to(Offset(0)).unwrap(), Offset(0));
    assert_eq!(log.end_offset(), Offset(0));
    append_range(&log, 0..5, 1);
    assert_records(&log, 0..5);
}

#[test]
fn delete_records_before_moves_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (log, _) = prepare(dir);
    let files = log_files(dir);
    let third = base_of(&files[2]);
    let cut = third + 2;
    let deleted = log.delete_records_before(Offset(cut)).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(log_files(dir).len(), files.len() - 2);
    assert_eq!(log.start_offset(), Offset(cut));
    match log.read(Offset(cut - 1), 10) {
        Err(Error::OffsetOutOfRange { offset, start, end }) => {
            assert_eq!(
                (offset, start, end),
                (Offset(cut - 1), Offset(cut), Offset(RECORDS))
            )
        }
        other => panic!("{other:?}"),
    }
    assert_records(&log, cut..RECORDS);
    // Moving backwards is a no-op.
    assert_eq!(log.delete_records_before(Offset(1)).unwrap(), 0);
    assert_eq!(log.start_offset(), Offset(cut));
    // Beyond the end is an error and changes nothing.
    match log.delete_records_before(Offset(RECORDS + 1)) {
        Err(Error::OffsetOutOfRange { offset, .. }) => assert_eq!(offset, Offset(RECORDS + 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.start_offset(), Offset(cut));
    log.close().unwrap();
    let log = PartitionLog::open(dir, small_config()).unwrap();
    assert_eq!(log.start_offset(), Offset(cut));
    assert_records(&log, cut..RECORDS);
    assert!(matches!(
        log.read(Offset(cut - 1), 10),
        Err(Error::OffsetOutOfRange { .. })
    ));
    drop(log);
    // After an unclean stop the start is taken from the oldest segment left.
    mark_unclean(dir);
    let log = PartitionLog::open(dir, small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(RECORDS));
    assert!(log.start_offset() <= Offset(cut) && log.start_offset() >= Offset(third));
    assert_records(&log, cut..RECORDS);
    // Up to the end: every sealed segment goes, the log is empty but usable.
    let n = log.delete_records_before(Offset(RECORDS)).unwrap();
    assert!(n >= 1);
    assert_eq!(log_files(dir).len(), 1);
    assert!(log.read(Offset(RECORDS), 10).unwrap().is_empty());
    append_range(&log, RECORDS..RECORDS + 3, 1);
    assert_records(&log, RECORDS..RECORDS + 3);
}
