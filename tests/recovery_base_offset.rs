//! Recovery after an unclean stop checks the base offsets of the active
//! segment's batches, which Kafka's CRC does not cover.

mod common;

use common::*;
use moldau::{Offset, PartitionLog};

// Regression: recovery after an unclean stop accepted a batch of the active
// segment whose baseOffset (outside the CRC) had a flipped bit, as long as it
// still increased: the log end jumped by 2^17 and the batch's records were
// served at offsets they were never written at. In the active segment
// offsets are contiguous, so recovery now cuts the log at such a batch.
#[test]
fn recovery_cuts_the_active_segment_at_a_damaged_base_offset() {
    let dir = tempfile::tempdir().unwrap();
    let active = closed_partition(dir.path(), 300);
    let (second, damaged_base) = batch_starts(&std::fs::read(&active).unwrap())[1];
    flip_byte(&active, second as u64 + 5, 0x02);
    mark_unclean(dir.path());

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_cut_at(&log, damaged_base);
}

// Regression (a known gap of docs/RELIABILITY.md suite 4 until fixed):
// after a clean close, the open trusted the active segment past its last
// index entry, so a damaged baseOffset there moved the log end and served
// records at wrong offsets. A clean open whose end differs from the one the
// clean close checkpointed now recovers instead.
#[test]
fn a_clean_open_does_not_trust_a_damaged_base_offset() {
    let dir = tempfile::tempdir().unwrap();
    let active = closed_partition(dir.path(), 300);
    // The last batch: past every index entry.
    let (last, damaged_base) = *batch_starts(&std::fs::read(&active).unwrap())
        .last()
        .unwrap();
    flip_byte(&active, last as u64 + 5, 0x02);

    // Refusing to open is as good as cutting; serving the batch is not.
    if let Ok(log) = PartitionLog::open(dir.path(), small_config()) {
        assert_cut_at(&log, damaged_base);
    }
}

/// The log ends at `end` (the damaged batch) and holds every record before it.
fn assert_cut_at(log: &PartitionLog, end: u64) {
    assert_eq!(log.end_offset(), Offset(end), "cut at the damaged batch");
    assert_records(log, 0..end);
    log.close().unwrap();
}
