//! Fuzz target: opening a partition whose segment file holds arbitrary bytes,
//! after an unclean stop (full recovery) or behind a clean checkpoint (the
//! lazy path that trusts the file), then reading everything, appending, and
//! reopening. Never a panic; an append after a successful open survives a
//! clean close and reopen.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use moldau::{Offset, PartitionLog, Record, Timestamp};
use moldau_fuzz::config;

/// The scratch directory of this process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| moldau_fuzz::scratch("recovery"))
}

/// Reads from the start to the end, skipping offsets that fail to read;
/// returns the records read. Bounded: a damaged header can claim any offset.
fn read_all(log: &PartitionLog) -> u64 {
    let (mut next, mut records) = (log.start_offset(), 0);
    for _ in 0..10_000 {
        if next >= log.end_offset() {
            break;
        }
        match log.read(next, 1 << 16) {
            Ok(batches) => {
                for r in batches.records() {
                    match r {
                        Ok(_) => records += 1,
                        Err(_) => break,
                    }
                }
                next = match batches.next_offset() {
                    Some(after) if after > next => after,
                    _ => next.plus(1),
                };
            }
            Err(_) => next = next.plus(1),
        }
    }
    records
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, contents)) = data.split_first() else {
        return;
    };
    let dir = scratch().join("p-0");
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    if mode & 1 == 1 {
        // A clean checkpoint from an empty log: the next open trusts the segment.
        PartitionLog::open(&dir, config()).unwrap().close().unwrap();
    } else {
        fs::create_dir_all(&dir).unwrap();
    }
    fs::write(dir.join("00000000000000000000.log"), contents).unwrap();
    let Ok(log) = PartitionLog::open(&dir, config()) else {
        return;
    };
    read_all(&log);
    let _ = log.offset_for_timestamp(Timestamp(i64::from(mode)));
    let appended = log.append(&[Record::new("appended")]);
    let end = log.end_offset();
    log.close().unwrap();
    let Ok(at) = appended else {
        return;
    };
    let log = PartitionLog::open(&dir, config()).expect("reopen after a clean close");
    assert_eq!(
        log.end_offset(),
        end,
        "a clean close and reopen moved the end"
    );
    let batches = log.read(at, 1 << 16).expect("read the appended record");
    let last = batches.records().last().expect("a record").expect("intact");
    assert_eq!(last.offset, Offset(end.0 - 1));
    assert_eq!(last.value.as_deref(), Some(&b"appended"[..]));
    log.close().unwrap();
});
