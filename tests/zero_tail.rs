//! A zero-filled tail (the preallocated space a crash leaves behind) is cut
//! on open without losing a record; zeros inside the last batch cut that batch.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use common::*;
use moldau::{Offset, PartitionLog};

const RECORDS: u64 = 200;

fn prepare(dir: &Path) -> Vec<Offset> {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let bases = append_range(&log, 0..RECORDS, 4);
    assert!(log.stats().segment_count > 1);
    log.close().unwrap();
    bases
}

fn append_zeros(path: &Path, n: usize) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(&vec![0u8; n]).unwrap();
    f.sync_all().unwrap();
}

fn zero_tail_is_trimmed(unclean: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    prepare(&dir);
    let active = log_files(&dir).pop().unwrap();
    let len = file_len(&active);
    append_zeros(&active, 64 << 10);
    if unclean {
        mark_unclean(&dir);
    }
    let log = PartitionLog::open(&dir, small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(RECORDS));
    assert_eq!(file_len(&active), len, "the zero tail is trimmed on open");
    assert_records(&log, 0..RECORDS);
    assert_eq!(
        log.append(&[common::record(RECORDS)]).unwrap(),
        Offset(RECORDS)
    );
    log.close().unwrap();
    let log = PartitionLog::open(&dir, small_config()).unwrap();
    assert_records(&log, 0..RECORDS + 1);
}

#[test]
fn zero_tail_after_unclean_stop() {
    zero_tail_is_trimmed(true);
}

#[test]
fn zero_tail_with_clean_checkpoint() {
    zero_tail_is_trimmed(false);
}

#[test]
fn zeros_inside_the_last_batch_cut_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let bases = prepare(&dir);
    let last = *bases.last().unwrap();
    let active = log_files(&dir).pop().unwrap();
    let len = file_len(&active);
    // Last batch size, found through a read on a reopened copy.
    let last_len = {
        let log = PartitionLog::open(&dir, small_config()).unwrap();
        log.read(last, 1).unwrap().len() as u64
    };
    let start = len - last_len;
    for (at, n) in [
        (start + 8, 8),
        (start + 30, 20),
        (start + last_len / 2, (last_len / 2) as usize),
        (start, last_len as usize),
    ] {
        let copy = tmp.path().join(format!("z-{at}-{n}"));
        copy_dir(&dir, &copy);
        let file = copy.join(active.file_name().unwrap());
        zero_range(&file, at, n);
        append_zeros(&file, 64 << 10);
        mark_unclean(&copy);
        let log = PartitionLog::open(&copy, small_config()).unwrap();
        assert_eq!(log.end_offset(), last, "zeros at {at}+{n}");
        assert_eq!(file_len(&file), start, "zeros at {at}+{n}");
        assert_records(&log, 0..last.0);
        assert_eq!(log.append(&[common::record(last.0)]).unwrap(), last);
        assert_records(&log, 0..last.0 + 1);
    }
}
