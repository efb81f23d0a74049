//! A torn last batch (the log file cut at any byte inside it) is truncated on
//! open, after a clean close and after an unclean stop, and nothing before it
//! is lost.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use moldau::{Offset, PartitionLog};

const RECORDS: u64 = 250;
const PER_BATCH: u64 = 3;

/// Writes the log, closes it, and returns the active segment's file name, the
/// byte where the last batch starts in it, and that batch's base offset.
fn prepare(dir: &Path) -> (std::ffi::OsString, u64, Offset) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let bases = append_range(&log, 0..RECORDS, PER_BATCH);
    assert!(log.stats().segment_count > 2, "{:?}", log.stats());
    let last = *bases.last().unwrap();
    let last_len = log.read(last, 1).unwrap().len() as u64;
    log.close().unwrap();
    let active = log_files(dir).pop().unwrap();
    let start = file_len(&active) - last_len;
    (active.file_name().unwrap().to_owned(), start, last)
}

/// How the copy looks stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Clean,
    /// No checkpoint: a full recovery.
    MissingCheckpoint,
    /// A damaged checkpoint counts as missing: a full recovery.
    GarbageCheckpoint,
}

fn torn_tail_is_cut(stops: &[Stop]) {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    let (active, start, last) = prepare(&orig);
    let end = file_len(&orig.join(&active));
    for (k, cut) in (start..end).enumerate() {
        let stop = stops[k % stops.len()];
        let copy = tmp.path().join(format!("cut-{cut}"));
        copy_dir(&orig, &copy);
        set_len(&copy.join(&active), cut);
        match stop {
            Stop::Clean => {}
            Stop::MissingCheckpoint => mark_unclean(&copy),
            Stop::GarbageCheckpoint => {
                fs::write(copy.join(CHECKPOINT), b"\x00garbage checkpoint\xff").unwrap()
            }
        }
        let log = PartitionLog::open(&copy, small_config())
            .unwrap_or_else(|e| panic!("cut at {cut} ({stop:?}): open failed: {e}"));
        assert_eq!(log.end_offset(), last, "cut at {cut} ({stop:?})");
        assert_eq!(log.start_offset(), Offset(0), "cut at {cut} ({stop:?})");
        assert_records(&log, 0..last.0);
        let next = common::record(last.0);
        assert_eq!(
            log.append(&[next]).unwrap(),
            last,
            "cut at {cut} ({stop:?})"
        );
        assert_records(&log, 0..last.0 + 1);
        log.close().unwrap();
        // The repaired log also reopens cleanly with the new record.
        let log = PartitionLog::open(&copy, small_config()).unwrap();
        assert_eq!(log.end_offset(), last.plus(1), "cut at {cut} ({stop:?})");
        log.close().unwrap();
        drop(log);
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn torn_tail_after_clean_close() {
    torn_tail_is_cut(&[Stop::Clean]);
}

#[test]
fn torn_tail_after_unclean_stop() {
    torn_tail_is_cut(&[Stop::MissingCheckpoint, Stop::GarbageCheckpoint]);
}
