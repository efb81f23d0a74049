//! Files moldau did not write (random bytes, another magic, garbage
//! checkpoints, empty files) make `open` repair by cutting the tail or return
//! a typed error; they never panic it.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use moldau::{Error, Offset, PartitionLog};

const RECORDS: u64 = 200;

fn prepare(dir: &Path) -> Vec<std::path::PathBuf> {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0..RECORDS, 2);
    log.close().unwrap();
    let files = log_files(dir);
    assert!(files.len() >= 3);
    files
}

/// A v1-style (magic 1) message set header: offset, size, crc, magic 1.
fn magic_one(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    v[8..12].copy_from_slice(&((n - 12) as i32).to_be_bytes());
    v[16] = 1;
    v
}

/// Opening must not panic; when it succeeds, the log must be a readable
/// prefix of what was written, and usable.
fn open_repairs_or_errors(dir: &Path, what: &str) -> Option<PartitionLog> {
    let result = std::panic::catch_unwind(|| PartitionLog::open(dir, small_config()));
    let result = result.unwrap_or_else(|_| panic!("{what}: open panicked"));
    match result {
        Ok(log) => {
            let end = log.end_offset();
            assert!(end.0 <= RECORDS, "{what}: end {end}");
            assert_records(&log, log.start_offset().0..end.0);
            assert_eq!(log.append(&[common::record(end.0)]).unwrap(), end, "{what}");
            Some(log)
        }
        Err(e) => {
            assert!(
                matches!(e, Error::Corrupt { .. } | Error::Io { .. }),
                "{what}: unexpected error {e}"
            );
            None
        }
    }
}

fn with_copy(tmp: &Path, orig: &Path, name: &str, edit: impl FnOnce(&Path)) -> std::path::PathBuf {
    let copy = tmp.join(name);
    copy_dir(orig, &copy);
    edit(&copy);
    copy
}

#[test]
fn foreign_active_segment_is_cut_away() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    let files = prepare(&orig);
    let active = files.last().unwrap().file_name().unwrap().to_owned();
    let base: u64 = active.to_str().unwrap()[..20].parse().unwrap();
    let contents: Vec<(&str, Vec<u8>)> = vec![
        ("random", random_bytes(3000, 7)),
        ("magic-1", magic_one(500)),
        ("empty", Vec::new()),
        ("one-byte", vec![2]),
    ];
    for (name, bytes) in contents {
        for unclean in [false, true] {
            let what = format!("active segment {name} (unclean: {unclean})");
            let copy = with_copy(tmp.path(), &orig, &format!("{name}-{unclean}"), |d| {
                fs::write(d.join(&active), &bytes).unwrap();
                if unclean {
                    mark_unclean(d);
                }
            });
            // Documented repair: the active segment is cut at its first
            // invalid byte, so the log ends where that segment starts.
            let log = open_repairs_or_errors(&copy, &what).expect("the tail is repaired");
            assert_eq!(log.end_offset(), Offset(base + 1), "{what}");
            assert!(file_len(&copy.join(&active)) > 0, "{what}");
        }
    }
}

#[test]
fn foreign_sealed_segment_is_an_error_or_a_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    let files = prepare(&orig);
    let sealed = files[1].file_name().unwrap().to_owned();
    let base: u64 = sealed.to_str().unwrap()[..20].parse().unwrap();
    let contents: Vec<(&str, Vec<u8>)> = vec![
        ("random", random_bytes(3000, 11)),
        ("magic-1", magic_one(800)),
        ("empty", Vec::new()),
    ];
    for (name, bytes) in contents {
        for unclean in [false, true] {
            let what = format!("sealed segment {name} (unclean: {unclean})");
            let copy = with_copy(tmp.path(), &orig, &format!("{name}-{unclean}"), |d| {
                fs::write(d.join(&sealed), &bytes).unwrap();
                if unclean {
                    mark_unclean(d);
                }
            });
            if unclean {
                // Full recovery validates the segment and cuts the log there;
                // an emptied segment too: the offsets it held are gone, so the
                // later segments no longer follow on from the earlier ones.
                let log = open_repairs_or_errors(&copy, &what).expect("recovery repairs");
                assert_eq!(log.end_offset(), Offset(base + 1), "{what}");
                assert_eq!(log_files(&copy).len(), 2, "{what}: later segments removed");
            } else {
                // Lazy open trusts the sealed segment; reading it reports the damage.
                let log = PartitionLog::open(&copy, small_config()).unwrap();
                assert_records(&log, 0..base);
                let err = match log.read(Offset(base), 1 << 20) {
                    Err(e) => Some(e),
                    Ok(b) => b.records().find_map(|r| r.err()),
                };
                match (name, err) {
                    (_, Some(Error::Corrupt { path, .. })) => {
                        assert_eq!(path, copy.join(&sealed), "{what}")
                    }
                    // An empty sealed segment holds no offsets: the read moves on.
                    ("empty", None) => {}
                    (_, other) => panic!("{what}: expected Corrupt, got {other:?}"),
                }
                let next_seg: u64 = files[2].file_name().unwrap().to_str().unwrap()[..20]
                    .parse()
                    .unwrap();
                assert_records(&log, next_seg..RECORDS);
            }
        }
    }
}

#[test]
fn garbage_checkpoint_means_full_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    prepare(&orig);
    let contents: Vec<(&str, Vec<u8>)> = vec![
        ("random", random_bytes(64, 3)),
        ("empty", Vec::new()),
        ("long", random_bytes(100_000, 5)),
        ("magic-only", b"MLDP".to_vec()),
    ];
    for (name, bytes) in contents {
        let copy = with_copy(tmp.path(), &orig, name, |d| {
            fs::write(d.join(CHECKPOINT), &bytes).unwrap()
        });
        let log = open_repairs_or_errors(&copy, &format!("checkpoint {name}"))
            .expect("a damaged checkpoint is repaired");
        assert_eq!(log.end_offset(), Offset(RECORDS + 1), "{name}");
    }
}

#[test]
fn stray_and_empty_files_are_harmless() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    prepare(&orig);
    let copy = with_copy(tmp.path(), &orig, "stray", |d| {
        fs::write(d.join("notes.txt"), b"hello").unwrap();
        fs::write(d.join("123.log"), b"not a segment name").unwrap();
        fs::write(d.join("00000000000000000000.log.tmp"), b"leftover").unwrap();
        fs::write(d.join("00000000000000000000.bak"), b"").unwrap();
    });
    let log = open_repairs_or_errors(&copy, "stray files").unwrap();
    assert_eq!(log.end_offset(), Offset(RECORDS + 1));

    // A fresh directory holding only an empty checkpoint and an empty segment.
    let fresh = tmp.path().join("fresh");
    fs::create_dir(&fresh).unwrap();
    fs::write(fresh.join(CHECKPOINT), b"").unwrap();
    fs::write(fresh.join("00000000000000000000.log"), b"").unwrap();
    fs::write(fresh.join("00000000000000000000.index"), b"").unwrap();
    let log = open_repairs_or_errors(&fresh, "empty files").unwrap();
    assert_eq!(log.end_offset(), Offset(1));
}

#[test]
fn zero_length_log_after_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let log = PartitionLog::open(&dir, small_config()).unwrap();
    log.close().unwrap();
    drop(log);
    // A clean, empty log: one zero-length segment and a clean checkpoint.
    let files = log_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(file_len(&files[0]), 0);
    let log = open_repairs_or_errors(&dir, "zero-length log").unwrap();
    assert_eq!(log.end_offset(), Offset(1));
}
