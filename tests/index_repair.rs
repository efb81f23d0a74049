//! Missing, short, or garbage `.index` / `.timeindex` files (of sealed and
//! active segments) are rebuilt from the log: reads and timestamp lookups
//! answer exactly as before the damage, after a clean or an unclean stop.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use moldau::{Offset, PartitionLog, Timestamp};

const RECORDS: u64 = 400;

fn ts(i: u64) -> i64 {
    // Increasing, with a few steps back inside batches.
    1_000_000 + (i as i64) * 10 - if i % 7 == 3 { 25 } else { 0 }
}

fn prepare(dir: &Path) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let mut i = 0;
    while i < RECORDS {
        let n = 1 + i % 4;
        let recs: Vec<_> = (i..(i + n).min(RECORDS))
            .map(|j| record_at(j, ts(j)))
            .collect();
        log.append(&recs).unwrap();
        i += n;
    }
    assert!(log.stats().segment_count >= 4);
    log.close().unwrap();
}

/// Everything the indexes help answer: the batch read for each offset, and
/// the offset found for timestamps around every record's.
#[derive(Debug)]
struct Answers {
    reads: Vec<Vec<u8>>,
    reads_many: Vec<(usize, Option<Offset>)>,
    times: Vec<Option<Offset>>,
}

fn answers(log: &PartitionLog) -> Answers {
    let reads = (0..RECORDS)
        .map(|o| log.read(Offset(o), 1).unwrap().bytes().to_vec())
        .collect();
    let reads_many = (0..RECORDS)
        .step_by(5)
        .map(|o| {
            let b = log.read(Offset(o), 1000).unwrap();
            (b.len(), b.next_offset())
        })
        .collect();
    let times = (ts(0) - 20..ts(RECORDS - 1) + 20)
        .step_by(3)
        .map(|t| log.offset_for_timestamp(Timestamp(t)).unwrap())
        .collect();
    Answers {
        reads,
        reads_many,
        times,
    }
}

type Damage = fn(&Path);

fn damages() -> Vec<(&'static str, Damage)> {
    vec![
        ("delete index", |p| rm(p, "index")),
        ("delete timeindex", |p| rm(p, "timeindex")),
        ("delete both", |p| {
            rm(p, "index");
            rm(p, "timeindex")
        }),
        ("non-multiple length", |p| {
            each(p, "index", |f| set_len(f, file_len(f).saturating_sub(3)));
            each(p, "timeindex", |f| {
                set_len(f, file_len(f).saturating_sub(5))
            });
        }),
        ("half the entries", |p| {
            each(p, "index", |f| set_len(f, file_len(f) / 16 * 8));
            each(p, "timeindex", |f| set_len(f, file_len(f) / 24 * 12));
        }),
        ("empty", |p| {
            each(p, "index", |f| set_len(f, 0));
            each(p, "timeindex", |f| set_len(f, 0));
        }),
        ("zeros", |p| {
            for ext in ["index", "timeindex"] {
                each(p, ext, |f| {
                    fs::write(f, vec![0u8; file_len(f) as usize]).unwrap()
                });
            }
        }),
        ("garbage", |p| {
            for ext in ["index", "timeindex"] {
                each(p, ext, |f| {
                    fs::write(f, random_bytes(file_len(f) as usize, 0x2545_f491_4f6c_dd1d)).unwrap()
                });
            }
        }),
        ("garbage, longer", |p| {
            for ext in ["index", "timeindex"] {
                each(p, ext, |f| {
                    fs::write(f, random_bytes(4096, 0x2545_f491_4f6c_dd1d)).unwrap()
                });
            }
        }),
        ("entries past the log", |p| {
            each(p, "index", |f| {
                let mut b = fs::read(f).unwrap();
                b.extend_from_slice(&[0, 0, 0, 200, 0, 1, 0, 0]);
                fs::write(f, b).unwrap()
            });
        }),
    ]
}

fn rm(dir: &Path, ext: &str) {
    each(dir, ext, |f| fs::remove_file(f).unwrap());
}

fn each(dir: &Path, ext: &str, f: impl Fn(&Path)) {
    for p in files_with_ext(dir, ext) {
        f(&p);
    }
}

fn damaged_indexes_give_same_answers(unclean: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("orig");
    prepare(&orig);
    let expected = {
        let log = PartitionLog::open(&orig, small_config()).unwrap();
        answers(&log)
    };
    assert_eq!(expected.times.last(), Some(&None));
    for (name, damage) in damages() {
        let copy = tmp.path().join(name.replace(' ', "-"));
        copy_dir(&orig, &copy);
        damage(&copy);
        if unclean {
            mark_unclean(&copy);
        }
        let log = PartitionLog::open(&copy, small_config())
            .unwrap_or_else(|e| panic!("{name}: open failed: {e}"));
        assert_eq!(log.end_offset(), Offset(RECORDS), "{name}");
        let got = answers(&log);
        let what = format!("{name} (unclean: {unclean})");
        assert!(got.reads == expected.reads, "{what}: reads differ");
        assert_eq!(got.reads_many, expected.reads_many, "{what}: reads differ");
        assert_eq!(
            got.times, expected.times,
            "{what}: timestamp lookups differ"
        );
        // Appends after the repair are indexed and found too.
        log.append(&[record_at(RECORDS, ts(RECORDS))]).unwrap();
        assert_eq!(
            log.offset_for_timestamp(Timestamp(ts(RECORDS))).unwrap(),
            Some(Offset(RECORDS)),
            "{name}"
        );
        log.close().unwrap();
        let log = PartitionLog::open(&copy, small_config()).unwrap();
        assert_records(&log, 0..RECORDS);
        drop(log);
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn damaged_indexes_after_clean_close() {
    damaged_indexes_give_same_answers(false);
}

#[test]
fn damaged_indexes_after_unclean_stop() {
    damaged_indexes_give_same_answers(true);
}
