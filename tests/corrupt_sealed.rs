//! A flipped byte in a segment is reported, never served: reads of a damaged
//! sealed segment return `Error::Corrupt` naming its file (other segments stay
//! readable), and recovery after an unclean stop cuts the active segment at
//! the damaged batch.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use moldau::{Error, Offset, PartitionLog};

const RECORDS: u64 = 340;

/// A batch of a segment: its byte range in the file and its offsets.
#[derive(Debug, Clone, Copy)]
struct BatchAt {
    position: u64,
    len: u64,
    base: u64,
    next: u64,
}

/// Writes the log, closes it cleanly, and lists the batches of segment `seg`
/// (its file name and the batches in file order); `usize::MAX` is the last.
fn prepare(dir: &Path, seg: usize) -> (PathBuf, Vec<BatchAt>) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0..RECORDS, 3);
    let files = log_files(dir);
    assert!(files.len() >= 4, "{files:?}");
    let seg = seg.min(files.len() - 1);
    let file = files[seg].clone();
    let base_of = |f: &Path| -> u64 { f.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let base = base_of(&file);
    let seg_end = files.get(seg + 1).map_or(RECORDS, |f| base_of(f));
    let mut batches = Vec::new();
    let (mut pos, mut next) = (0, base);
    while next < seg_end {
        let b = log.read(Offset(next), 1).unwrap();
        let after = b.next_offset().unwrap().0;
        batches.push(BatchAt {
            position: pos,
            len: b.len() as u64,
            base: next,
            next: after,
        });
        pos += b.len() as u64;
        next = after;
    }
    log.close().unwrap();
    (file.file_name().unwrap().into(), batches)
}

/// Reads `range` batch by batch. Every record must be the right one at the
/// right offset; the first failure must be `Corrupt` naming `file`. Returns
/// whether a failure was seen.
fn check_range(log: &PartitionLog, range: std::ops::Range<u64>, file: &Path, what: &str) -> bool {
    let mut next = range.start;
    for _ in 0..=range.end - range.start {
        if next >= range.end {
            return false;
        }
        let batches = match log.read(Offset(next), 256) {
            Ok(b) => b,
            Err(e) => {
                assert_corrupt_in(&e, file, what);
                return true;
            }
        };
        let mut any = false;
        for r in batches.records() {
            match r {
                Ok(r) => {
                    assert_eq!(r.offset, Offset(next), "{what}: wrong offset served");
                    assert_record(&r, next);
                    next += 1;
                    any = true;
                }
                Err(e) => {
                    assert_corrupt_in(&e, file, what);
                    return true;
                }
            }
        }
        assert!(any, "{what}: a read below the end returned no record");
    }
    panic!("{what}: reads did not progress");
}

fn assert_corrupt_in(e: &Error, file: &Path, what: &str) {
    match e {
        Error::Corrupt { path, position, .. } => {
            assert_eq!(path, file, "{what}: {e}");
            assert!(*position < file_len(file), "{what}: {e}");
        }
        other => panic!("{what}: expected Corrupt, got {other}"),
    }
}

/// Flips the byte at each of `positions` (one fresh copy each) of segment 1,
/// reopens cleanly, and checks reads of every segment.
fn flips_in_sealed_segment(positions: impl Fn(&[BatchAt]) -> Vec<u64>, mask: u8) {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    let (name, batches) = prepare(&orig, 1);
    let (seg_start, seg_end) = (batches[0].base, batches.last().unwrap().next);
    for pos in positions(&batches) {
        let copy = tmp.path().join(format!("flip-{pos}"));
        copy_dir(&orig, &copy);
        let file = copy.join(&name);
        flip_byte(&file, pos, mask);
        let what = format!("flip {mask:#04x} at byte {pos} of {name:?}");
        let log = PartitionLog::open(&copy, small_config())
            .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        assert_eq!(log.end_offset(), Offset(RECORDS), "{what}");
        let failed = check_range(&log, seg_start..seg_end, &file, &what);
        // Partition leader epoch (bytes 12..16) is outside the CRC by design.
        let in_epoch = batches
            .iter()
            .any(|b| (b.position + 12..b.position + 16).contains(&pos));
        assert!(failed || in_epoch, "{what}: damage went unnoticed");
        assert_records(&log, 0..seg_start);
        assert_records(&log, seg_end..RECORDS);
        drop(log);
        std::fs::remove_dir_all(&copy).unwrap();
    }
}

/// Bytes 8..61 of the header of a batch in the middle of the segment (length,
/// epoch, magic, CRC, attributes, ...), and every 7th byte of the file.
#[test]
fn flipped_header_and_record_bytes_are_reported() {
    flips_in_sealed_segment(
        |batches| {
            let mid = batches[batches.len() / 2];
            let mut v: Vec<u64> = (8..61).map(|i| mid.position + i).collect();
            let end = batches.last().map(|b| b.position + b.len).unwrap();
            v.extend((3..end).step_by(7).filter(|p| {
                // Base offsets are checked by their own test below.
                !batches
                    .iter()
                    .any(|b| (b.position..b.position + 8).contains(p))
            }));
            v
        },
        0x10,
    );
}

#[test]
fn fully_inverted_bytes_are_reported() {
    flips_in_sealed_segment(
        |batches| {
            let mid = batches[batches.len() / 3];
            (mid.position + 8..mid.position + mid.len).collect()
        },
        0xff,
    );
}

/// baseOffset (bytes 0..8) is outside the CRC (the broker rewrites it), so a
/// flip there is only detectable as offsets that do not follow the previous
/// batch; a reader must not serve records under the wrong offsets.
#[test]
fn flipped_base_offset_is_not_served() {
    flips_in_sealed_segment(
        |batches| {
            let mid = batches[batches.len() / 2];
            (0..8).map(|i| mid.position + i).collect()
        },
        0x01,
    );
}

#[test]
fn flipped_bytes_in_active_segment_cut_there_after_unclean_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    let (name, batches) = prepare(&orig, usize::MAX);
    assert!(batches.len() > 4);
    let victim = batches[batches.len() / 2];
    // Length, magic, CRC, attributes, counts, and record bytes (all checked by
    // length, magic or CRC validation).
    let positions = (8..12).chain(16..victim.len).step_by(3);
    for rel in positions {
        let pos = victim.position + rel;
        let copy = tmp.path().join(format!("flip-{pos}"));
        copy_dir(&orig, &copy);
        flip_byte(&copy.join(&name), pos, 0x20);
        mark_unclean(&copy);
        let what = format!("flip at byte {pos} of active {name:?}");
        let log = PartitionLog::open(&copy, small_config())
            .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        assert_eq!(log.end_offset(), Offset(victim.base), "{what}");
        assert_eq!(file_len(&copy.join(&name)), victim.position, "{what}");
        assert_records(&log, 0..victim.base);
        assert_eq!(
            log.append(&[common::record(victim.base)]).unwrap(),
            Offset(victim.base)
        );
        assert_records(&log, 0..victim.base + 1);
        drop(log);
        std::fs::remove_dir_all(&copy).unwrap();
    }
}
