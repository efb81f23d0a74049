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
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    append_range(&log, 0..300, 3);
    log.close().unwrap();
    let active = log_files(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&active).unwrap();
    // The second batch starts after the first: 12 bytes of offset and
    // length, then the length's worth.
    let second = 12 + u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let damaged_base = i64::from_be_bytes(bytes[second..second + 8].try_into().unwrap()) as u64;
    flip_byte(&active, second as u64 + 5, 0x02);
    mark_unclean(dir.path());

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(
        log.end_offset(),
        Offset(damaged_base),
        "cut at the damaged batch"
    );
    assert_records(&log, 0..damaged_base);
    log.close().unwrap();
}
