//! Helpers shared by the integration tests: small configs, records with
//! checkable contents, whole-log reads, and file surgery on partition dirs.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(feature = "broker")]
pub mod broker;
pub mod groups;
#[cfg(feature = "broker")]
pub mod kafka;
pub mod mount;
pub mod workload;

use moldau::{Offset, PartitionConfig, PartitionLog, Record, StoredRecord, Timestamp};

/// Name of the partition checkpoint file (see docs/ARCHITECTURE.md, "Recovery").
pub const CHECKPOINT: &str = "partition.checkpoint";

/// Small segments and a dense index, so a few KiB of records roll and index.
pub fn small_config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 4096,
        index_interval_bytes: 128,
        max_record_bytes: 4096,
        ..PartitionConfig::default()
    }
}

/// The value record `i` carries: its number, padded to a length that varies.
pub fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(v.len() + (i % 37) as usize, b'a' + (i % 26) as u8);
    v
}

/// Record `i`: key `key-i`, value [`value`]`(i)`, a header.
pub fn record(i: u64) -> Record {
    Record::new(value(i))
        .with_key(format!("key-{i}"))
        .with_header("n", i.to_string())
}

/// Record `i` with an explicit timestamp.
pub fn record_at(i: u64, ts: i64) -> Record {
    record(i).with_timestamp(Timestamp(ts))
}

/// Asserts that `r` is exactly record `i` as built by [`record`], at offset `i`.
pub fn assert_record(r: &StoredRecord, i: u64) {
    assert_eq!(r.offset, Offset(i), "offset");
    assert_eq!(
        r.key.as_deref(),
        Some(format!("key-{i}").as_bytes()),
        "key of {i}"
    );
    assert_eq!(r.value.as_deref(), Some(&value(i)[..]), "value of {i}");
    assert_eq!(r.headers.len(), 1, "headers of {i}");
    assert_eq!(r.headers[0].key.as_ref(), b"n");
    assert_eq!(
        r.headers[0].value.as_deref(),
        Some(i.to_string().as_bytes())
    );
}

/// Every record from `from` to the end offset, reading batch by batch.
pub fn read_all(log: &PartitionLog, from: Offset) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.end_offset() {
        let batches = log.read(next, 1 << 20).expect("read");
        for r in batches.records() {
            out.push(r.expect("record"));
        }
        next = batches
            .next_offset()
            .expect("a read below the end is not empty");
    }
    out
}

/// The records in `range`, reading batch by batch.
pub fn read_range(log: &PartitionLog, range: std::ops::Range<u64>) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut next = Offset(range.start);
    while next.0 < range.end {
        let batches = log.read(next, 1 << 20).expect("read");
        for r in batches.records() {
            let r = r.expect("record");
            if r.offset.0 < range.end {
                out.push(r);
            }
        }
        next = batches
            .next_offset()
            .expect("a read below the end is not empty");
    }
    out
}

/// Asserts that the log holds exactly records `range` as built by [`record`].
pub fn assert_records(log: &PartitionLog, range: std::ops::Range<u64>) {
    let all = read_range(log, range.clone());
    assert_eq!(all.len() as u64, range.end - range.start, "record count");
    for (r, i) in all.iter().zip(range) {
        assert_record(r, i);
    }
}

/// The `.log` files of a partition directory, sorted by base offset.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    files_with_ext(dir, "log")
}

/// The files of `dir` whose extension is `ext`, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Copies every regular file of `src` into a new directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create copy");
    for e in fs::read_dir(src).expect("list dir") {
        let e = e.expect("dir entry");
        if e.file_type().expect("file type").is_file() {
            fs::copy(e.path(), dst.join(e.file_name())).expect("copy file");
        }
    }
}

/// XORs the byte at `pos` of `path` with `mask`.
pub fn flip_byte(path: &Path, pos: u64, mask: u8) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8];
    f.read_exact_at(&mut b, pos).expect("read byte");
    b[0] ^= mask;
    f.write_all_at(&b, pos).expect("write byte");
}

/// Overwrites `len` bytes at `pos` of `path` with zeros.
pub fn zero_range(path: &Path, pos: u64, len: usize) {
    let f = OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(&vec![0u8; len], pos).expect("write zeros");
}

/// Sets the length of `path`.
pub fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("set_len");
}

/// Length of `path`.
pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

/// Makes the next open see an unclean stop: a missing checkpoint means a full
/// recovery (every batch validated from offset 0).
pub fn mark_unclean(dir: &Path) {
    fs::remove_file(dir.join(CHECKPOINT)).expect("remove checkpoint");
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}

/// Appends records `range` one batch of `per_batch` at a time; returns the
/// base offset of each batch.
pub fn append_range(
    log: &PartitionLog,
    range: std::ops::Range<u64>,
    per_batch: u64,
) -> Vec<Offset> {
    let mut bases = Vec::new();
    let mut i = range.start;
    while i < range.end {
        let n = per_batch.min(range.end - i);
        let recs: Vec<Record> = (i..i + n).map(record).collect();
        let base = log.append(&recs).expect("append");
        assert_eq!(base, Offset(i), "append returned the wrong offset");
        bases.push(base);
        i += n;
    }
    bases
}

/// Where each batch of a segment file starts, and its base offset (read
/// from the 12-byte log overhead: baseOffset, then batchLength).
pub fn batch_starts(log: &[u8]) -> Vec<(usize, u64)> {
    let (mut pos, mut out) = (0, Vec::new());
    while pos + 12 <= log.len() {
        let base = i64::from_be_bytes(log[pos..pos + 8].try_into().unwrap()) as u64;
        out.push((pos, base));
        pos += 12 + u32::from_be_bytes(log[pos + 8..pos + 12].try_into().unwrap()) as usize;
    }
    out
}

/// A cleanly closed partition in `dir` holding records `0..n` in batches of
/// three, and its active segment's file.
pub fn closed_partition(dir: &Path, n: u64) -> PathBuf {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0..n, 3);
    log.close().unwrap();
    log_files(dir).pop().unwrap()
}

/// `n` pseudo-random bytes (xorshift), the same for the same `seed`.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every compression codec, for tests that cover them all.
pub const CODECS: [moldau::record::Compression; 4] = [
    moldau::record::Compression::Gzip,
    moldau::record::Compression::Snappy,
    moldau::record::Compression::Lz4,
    moldau::record::Compression::Zstd,
];

/// Starts this test binary again running only its `crash_child` test, with
/// `env_var` set to `dir` (the child's cue to do its work), its standard
/// output piped to the parent.
pub fn spawn_crash_child(env_var: &str, dir: &Path) -> std::process::Child {
    spawn_child_with(&[(env_var, dir.as_os_str())])
}

/// Starts this test binary again running only its `crash_child` test, with
/// the environment variables `envs`, its standard output piped to the parent.
pub fn spawn_child_with(envs: &[(&str, &std::ffi::OsStr)]) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the `ack ...` lines a crash child prints, hands each whole one to
/// `on_ack`, kills the child (SIGKILL) after `kill_after` of them, and hands
/// over the whole lines it printed before the kill took effect too. A line
/// the kill cut short (no newline) was not acknowledged and is dropped.
pub fn kill_after_acks(
    child: &mut std::process::Child,
    kill_after: usize,
    mut on_ack: impl FnMut(&str),
) {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let (mut seen, mut killed) = (0, false);
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).expect("read the child's output") == 0 {
            break;
        }
        let Some(whole) = line.strip_suffix('\n') else {
            break;
        };
        if whole.starts_with("ack ") {
            on_ack(whole);
            seen += 1;
            if seen == kill_after {
                child.kill().expect("kill the child");
                killed = true;
            }
        }
    }
    assert!(killed, "the child exited before it was killed");
    child.wait().expect("wait for the child");
}
