//! Fuzz target: arbitrary `.index` / `.timeindex` contents under a valid log.
//! Indexes are derived data, so whatever they hold, the reopened partition
//! must answer exactly as before: every record at its offset, and the same
//! offset for each timestamp.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use moldau::{Offset, PartitionLog, Record, Timestamp};
use moldau_fuzz::config;

const RECORDS: u64 = 200;

fn root() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| moldau_fuzz::scratch("index"))
}

/// Timestamps probed: before, between and after the records' own.
fn probes() -> impl Iterator<Item = Timestamp> {
    (0..RECORDS as i64 * 10 + 40)
        .step_by(7)
        .map(|t| Timestamp(990 + t))
}

/// Every (offset, value) and the answer for each probed timestamp.
type Answers = (Vec<(Offset, Vec<u8>)>, Vec<Option<Offset>>);

fn answers(log: &PartitionLog) -> Result<Answers, moldau::Error> {
    let mut records = Vec::new();
    let mut next = log.start_offset();
    while next < log.end_offset() {
        let batches = log.read(next, 1 << 16)?;
        for r in batches.records() {
            let r = r?;
            records.push((r.offset, r.value.unwrap_or_default().to_vec()));
        }
        next = batches.next_offset().expect("progress");
    }
    let times = probes()
        .map(|t| log.offset_for_timestamp(t))
        .collect::<Result<_, _>>()?;
    Ok((records, times))
}

/// The pristine partition (several sealed segments, cleanly closed) and its answers.
fn template() -> &'static (PathBuf, Answers) {
    static T: OnceLock<(PathBuf, Answers)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = root().join("template");
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        let log = PartitionLog::open(&dir, config()).unwrap();
        for i in (0..RECORDS).step_by(3) {
            let batch: Vec<Record> = (i..(i + 3).min(RECORDS))
                .map(|n| {
                    Record::new(format!("value-{n}-{}", "x".repeat((n % 40) as usize)))
                        .with_timestamp(Timestamp(1000 + n as i64 * 10))
                })
                .collect();
            log.append(&batch).unwrap();
        }
        let a = answers(&log).unwrap();
        log.close().unwrap();
        (dir, a)
    })
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let (template, expected) = template();
    let Some((&mode, contents)) = data.split_first() else {
        return;
    };
    let dir = root().join("p-0");
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    for e in fs::read_dir(template).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    // Bits 0-1: which segment's file (first, second, last); bit 2: offset or
    // time index; bit 3: an unclean stop (no checkpoint: full recovery).
    let ext = if mode & 4 == 0 { "index" } else { "timeindex" };
    let candidates = files(&dir, ext);
    let target = match mode & 3 {
        0 => &candidates[0],
        1 => &candidates[1.min(candidates.len() - 1)],
        _ => candidates.last().unwrap(),
    };
    fs::write(target, contents).unwrap();
    if mode & 8 != 0 {
        fs::remove_file(dir.join("partition.checkpoint")).unwrap();
    }
    let log = PartitionLog::open(&dir, config()).expect("an index never stops an open");
    match answers(&log) {
        Ok(got) => assert!(&got == expected, "a damaged index changed an answer"),
        // Known gap (docs/RELIABILITY.md): an entry damaged into another
        // plausible one passes the sanity check, and the reads it misleads
        // fail with `Corrupt`. Never a wrong answer, and the log is intact:
        // with the indexes rebuilt, every answer is right again.
        Err(moldau::Error::Corrupt { .. }) => {
            log.close().unwrap();
            for ext in ["index", "timeindex"] {
                for f in files(&dir, ext) {
                    fs::remove_file(f).unwrap();
                }
            }
            let log = PartitionLog::open(&dir, config()).expect("reopen");
            assert!(
                &answers(&log).expect("rebuilt") == expected,
                "rebuilt indexes"
            );
            log.close().unwrap();
            return;
        }
        Err(e) => panic!("{e}"),
    }
    log.close().unwrap();
});
