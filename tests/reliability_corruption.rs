//! Reliability suite 4, corruption: for every kind of file moldau keeps
//! (segment `.log`, `.index` and `.timeindex` of sealed and active segments,
//! `partition.checkpoint`, `topics.checkpoint`, the `__consumer_offsets`
//! log), byte flips, truncations and zero-filled ranges at many positions,
//! each on a fresh copy of a cleanly closed data directory, reopened after a
//! clean close and after an unclean stop.
//!
//! Every case must end one of two ways: the open fails with a typed error
//! naming a file of the damaged directory, or it succeeds and every read
//! either returns exactly the records written at their offsets or fails with
//! `Error::Corrupt` naming a file; no panic, no damaged record served, and
//! damage to derived data (indexes, the partition checkpoint) cuts nothing
//! (two known gaps are tallied, not failed: see docs/RELIABILITY.md).
//! `MOLDAU_CORRUPTION_POSITIONS=N` damages N positions per file and kind of
//! damage (default 12).

mod common;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::workload::{self, Rng};
use common::*;
use moldau::{Error, Log, LogConfig, Offset, OffsetAndMetadata, PartitionLog, TopicPartition};

const RECORDS: u64 = 300;

/// One way to damage a file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// XOR the byte at `pos` with `mask`.
    Flip { pos: u64, mask: u8 },
    /// Cut the file to `len` bytes.
    Truncate { len: u64 },
    /// Zero `len` bytes from `pos`.
    Zero { pos: u64, len: u64 },
}

impl Damage {
    /// Damages `path`; returns whether any byte changed (zeroing zeros or
    /// cutting nothing is no case).
    fn apply(self, path: &Path) -> bool {
        let before = fs::read(path).unwrap();
        match self {
            Damage::Flip { pos, mask } => flip_byte(path, pos, mask),
            Damage::Truncate { len } => set_len(path, len),
            Damage::Zero { pos, len } => zero_range(path, pos, len as usize),
        }
        fs::read(path).unwrap() != before
    }
}

fn positions_per_kind() -> u64 {
    std::env::var("MOLDAU_CORRUPTION_POSITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Flips, truncations and zeroed ranges of a file of `len` bytes: at the
/// ends, evenly spread, and at random positions.
fn damages(len: u64, rng: &mut Rng) -> Vec<Damage> {
    if len == 0 {
        return vec![];
    }
    let n = positions_per_kind();
    let mut positions: Vec<u64> = vec![0, len - 1];
    positions.extend((1..n / 2).map(|i| i * len / (n / 2)));
    while (positions.len() as u64) < n {
        positions.push(rng.below(len));
    }
    let mut out = Vec::new();
    for &pos in &positions {
        let mask = 1u8 << rng.below(8);
        out.push(Damage::Flip { pos, mask });
        out.push(Damage::Truncate { len: pos });
        let zero_len = (1 + rng.below(64)).min(len - pos);
        out.push(Damage::Zero { pos, len: zero_len });
    }
    out
}

/// Copies the directory tree `src` to `dst`.
fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        match e.file_type().unwrap().is_dir() {
            true => copy_tree(&e.path(), &to),
            false => drop(fs::copy(e.path(), to).unwrap()),
        }
    }
}

/// Outcomes over all cases of one file kind.
#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    open_failed: u64,
    read_errors: u64,
    records_unreadable: u64,
    /// Derived-data cases whose reads failed until the indexes were rebuilt.
    index_disagreements: u64,
    /// The cases that broke a rule, with what went wrong.
    failures: Vec<String>,
}

/// Whether `e` is a typed corruption error naming a file under `dir`.
fn names_file_in(e: &Error, dir: &Path) -> bool {
    match e {
        Error::Corrupt { path, .. } => path.starts_with(dir),
        Error::Io { path, .. } => path.starts_with(dir),
        _ => false,
    }
}

/// Reads every offset of `log` from its start: each record must be
/// `record(i)` at offset `i`; a read may fail only with `Corrupt` naming a
/// file of `dir` (then the next offset is tried). Returns the offsets that
/// could not be read.
fn read_checked(log: &PartitionLog, dir: &Path, tally: &mut Tally, what: &str) -> u64 {
    let mut next = log.start_offset();
    let mut unreadable = 0;
    // A damaged header can claim offsets up to 2^32 past the base; after
    // this many failed reads the rest counts as unreadable.
    let mut failures_left = 2 * RECORDS;
    while next < log.end_offset() {
        if failures_left == 0 {
            unreadable += log.end_offset().0 - next.0;
            break;
        }
        // One batch per read, so every lookup goes through the indexes.
        match log.read(next, 1) {
            Ok(batches) => {
                let mut failed = false;
                for r in batches.records() {
                    match r {
                        Ok(r) => {
                            assert!(r.offset >= next, "{what}: offset went back");
                            unreadable += r.offset.0 - next.0;
                            let record = catch_unwind(|| assert_record(&r, r.offset.0));
                            assert!(record.is_ok(), "{what}: wrong record at {}", r.offset);
                            next = r.offset.plus(1);
                        }
                        Err(e) => {
                            assert!(names_file_in(&e, dir), "{what}: untyped read error {e}");
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    failures_left -= 1;
                    tally.read_errors += 1;
                    unreadable += 1;
                    next = next.plus(1);
                } else if let Some(after) = batches.next_offset() {
                    unreadable += after.0.saturating_sub(next.0);
                    next = next.max(after);
                }
            }
            Err(e) => {
                assert!(names_file_in(&e, dir), "{what}: untyped read error {e}");
                failures_left -= 1;
                tally.read_errors += 1;
                unreadable += 1;
                next = next.plus(1);
            }
        }
    }
    unreadable
}

/// A cleanly closed partition: several sealed segments and an active one.
fn pristine_partition(dir: &Path) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    // Fixed timestamps, so the time indexes (and the sweep) are the same on
    // every run.
    let mut i = 0;
    while i < RECORDS {
        let n = if i < RECORDS - 20 { 3 } else { 1 };
        let batch: Vec<_> = (i..i + n).map(|k| record_at(k, 1_000 + k as i64)).collect();
        assert_eq!(log.append(&batch).unwrap(), Offset(i));
        i += n;
    }
    assert!(log_files(dir).len() >= 4);
    log.close().unwrap();
}

/// Runs every damage on file `pick(dir)` of a copy of `pristine`; `derived`
/// files (indexes, checkpoint) must lose nothing.
fn sweep_partition_file(
    pristine: &Path,
    kind: &str,
    pick: impl Fn(&Path) -> PathBuf,
    derived: bool,
    unclean: bool,
) -> Tally {
    let mut rng = Rng(0xc0ff_ee00 ^ kind.len() as u64 ^ unclean as u64);
    let len = file_len(&pick(pristine));
    let mut tally = Tally::default();
    for damage in damages(len, &mut rng) {
        let what = format!("{kind} {damage:?} unclean={unclean}");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p-0");
        copy_tree(pristine, &dir);
        if !damage.apply(&pick(&dir)) {
            continue;
        }
        if unclean && dir.join(CHECKPOINT).exists() {
            mark_unclean(&dir);
        }
        tally.cases += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match PartitionLog::open(&dir, small_config()) {
                Ok(log) => {
                    let unreadable = read_checked(&log, &dir, &mut tally, &what);
                    let cut = RECORDS.saturating_sub(log.end_offset().0);
                    assert!(
                        !derived || cut == 0,
                        "{what}: damage to derived data cut {cut} records"
                    );
                    tally.records_unreadable += cut + unreadable;
                    log.close().unwrap();
                    if derived && unreadable > 0 {
                        // Known gap (docs/RELIABILITY.md): an index entry
                        // damaged into another plausible one passes the
                        // sanity check, and reads it misleads fail with
                        // `Corrupt` instead of rebuilding. The log is intact:
                        // rebuilt indexes serve every record.
                        tally.index_disagreements += 1;
                        for ext in ["index", "timeindex"] {
                            for f in files_with_ext(&dir, ext) {
                                fs::remove_file(f).unwrap();
                            }
                        }
                        let log = PartitionLog::open(&dir, small_config()).unwrap();
                        assert_records(&log, 0..RECORDS);
                        log.close().unwrap();
                    }
                }
                Err(e) => {
                    assert!(names_file_in(&e, &dir), "{what}: untyped open error {e}");
                    assert!(!derived, "{what}: damage to derived data fails open: {e}");
                    tally.open_failed += 1;
                }
            }
        }));
        if let Err(panic) = outcome {
            // Until fixed, a damaged baseOffset in the active segment past
            // its last index entry was trusted by a clean open (the CRC does
            // not cover it), and its records were served at wrong offsets
            // (regression: tests/recovery_base_offset.rs).
            tally.failures.push(panic_message(&*panic));
        }
    }
    eprintln!("{kind} unclean={unclean}: {tally:?}");
    tally
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into())
}

fn nth_with_ext(dir: &Path, ext: &str, last: bool) -> PathBuf {
    let files = files_with_ext(dir, ext);
    match last {
        true => files.last().unwrap().clone(),
        false => files[0].clone(),
    }
}

#[test]
fn damaged_partition_files_are_repaired_or_reported() {
    let pristine = tempfile::tempdir().unwrap();
    pristine_partition(pristine.path());
    type Pick = fn(&Path) -> PathBuf;
    let kinds: [(&str, Pick, bool); 7] = [
        ("sealed .log", |d| nth_with_ext(d, "log", false), false),
        ("active .log", |d| nth_with_ext(d, "log", true), false),
        ("sealed .index", |d| nth_with_ext(d, "index", false), true),
        ("active .index", |d| nth_with_ext(d, "index", true), true),
        (
            "sealed .timeindex",
            |d| nth_with_ext(d, "timeindex", false),
            true,
        ),
        (
            "active .timeindex",
            |d| nth_with_ext(d, "timeindex", true),
            true,
        ),
        ("partition.checkpoint", |d| d.join(CHECKPOINT), true),
    ];
    let (mut cases, mut failures) = (0, Vec::new());
    for (kind, pick, derived) in kinds {
        for unclean in [false, true] {
            let tally = sweep_partition_file(pristine.path(), kind, pick, derived, unclean);
            cases += tally.cases;
            failures.extend(tally.failures);
        }
    }
    eprintln!("{cases} damaged partition directories reopened");
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A cleanly closed data directory: topic `t` with records and ten commits
/// of group `g` (offsets 1 to 10, one batch each).
fn pristine_log(dir: &Path) {
    let log = Log::open(dir, LogConfig::default()).unwrap();
    log.create_topic("t", 1, None).unwrap();
    let producer = log.producer(moldau::ProducerConfig::default()).unwrap();
    for i in 0..20 {
        producer.send("t", record(i)).unwrap();
    }
    let mut c = log.consumer(moldau::ConsumerConfig::default()).unwrap();
    c.assign_in_group("g", &[t0()]).unwrap();
    for offset in 1..=10 {
        c.commit_offsets(&[(t0(), OffsetAndMetadata::new(Offset(offset)))])
            .unwrap();
    }
    drop(c);
    log.close().unwrap();
}

fn t0() -> TopicPartition {
    workload::tp("t", 0)
}

/// Damages `file` of a copy of `pristine` every way and reopens the `Log`:
/// either a typed error naming a file, or the topic intact and group `g`'s
/// commit one of those made, or none (recovery cut the damaged tail; counted
/// in `records_unreadable`).
fn sweep_log_file(pristine: &Path, kind: &str, file: &Path, unclean: bool) -> Tally {
    let mut rng = Rng(0xd00d ^ kind.len() as u64);
    let mut tally = Tally::default();
    for damage in damages(file_len(&pristine.join(file)), &mut rng) {
        let what = format!("{kind} {damage:?} unclean={unclean}");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        copy_tree(pristine, &dir);
        if !damage.apply(&dir.join(file)) {
            continue;
        }
        if unclean {
            mark_unclean(&dir.join(file.parent().unwrap()));
        }
        tally.cases += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match Log::open(&dir, LogConfig::default()) {
                Ok(log) => {
                    let committed = log.committed("g", &t0()).unwrap().map(|c| c.offset.0);
                    assert!(
                        committed.is_none_or(|c| (1..=10).contains(&c)),
                        "{what}: commit {committed:?} was never made"
                    );
                    // A damaged tail is cut (recovery), taking later commits.
                    if committed != Some(10) {
                        tally.records_unreadable += 1;
                    }
                    let d = log.describe_topic("t").unwrap();
                    assert_eq!(d.partitions[0].end_offset, Offset(20), "{what}");
                    log.close().unwrap();
                }
                Err(e) => {
                    assert!(names_file_in(&e, &dir), "{what}: untyped open error {e}");
                    tally.open_failed += 1;
                }
            }
        }));
        if let Err(panic) = outcome {
            tally.failures.push(panic_message(&*panic));
        }
    }
    eprintln!("{kind} unclean={unclean}: {tally:?}");
    tally
}

#[test]
fn a_damaged_topic_catalog_is_a_typed_error() {
    let pristine = tempfile::tempdir().unwrap();
    pristine_log(pristine.path());
    let tally = sweep_log_file(
        pristine.path(),
        "topics.checkpoint",
        Path::new("topics.checkpoint"),
        false,
    );
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    // Every damage is detected: the catalog is the truth, it is not repaired.
    assert_eq!(tally.open_failed, tally.cases, "{tally:?}");
}

#[test]
fn damaged_committed_offsets_are_repaired_or_reported() {
    let pristine = tempfile::tempdir().unwrap();
    pristine_log(pristine.path());
    let file = Path::new("__consumer_offsets-0/00000000000000000000.log");
    let mut failures = Vec::new();
    for unclean in [false, true] {
        failures.extend(
            sweep_log_file(pristine.path(), "__consumer_offsets .log", file, unclean).failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
