//! A partition directory, and a `Log`'s data directory, has one owner: a
//! second open, from this process or another, gets `Error::Locked` until the
//! first handle is closed or dropped.

use std::process::Command;

use moldau::{Error, Log, LogConfig, PartitionConfig, PartitionLog};

const CHILD_DIR: &str = "MOLDAU_LOCK_CHILD_DIR";

fn assert_locked(result: moldau::Result<PartitionLog>, dir: &std::path::Path) {
    match result {
        Err(Error::Locked { dir: d }) => assert_eq!(d, dir),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn second_open_in_process_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let log = PartitionLog::open(&dir, PartitionConfig::default()).unwrap();
    assert_locked(PartitionLog::open(&dir, PartitionConfig::default()), &dir);
    log.close().unwrap();
    let second = PartitionLog::open(&dir, PartitionConfig::default()).unwrap();
    // `log` still exists but is closed: it must not have taken the lock back.
    assert_locked(PartitionLog::open(&dir, PartitionConfig::default()), &dir);
    drop(log);
    drop(second);
    let third = PartitionLog::open(&dir, PartitionConfig::default()).unwrap();
    third.append(&[moldau::Record::new("x")]).unwrap();
}

/// The child: tries to open the directory and reports what happened.
#[test]
fn lock_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    // A data directory of a `Log` holds topics.checkpoint; open it as one.
    let result = match std::path::Path::new(&dir)
        .join("topics.checkpoint")
        .exists()
    {
        true => Log::open(&dir, LogConfig::default()).map(|_| ()),
        false => PartitionLog::open(&dir, PartitionConfig::default()).map(|_| ()),
    };
    match result {
        Err(Error::Locked { .. }) => println!("child: locked"),
        Ok(()) => println!("child: opened"),
        Err(e) => println!("child: error {e}"),
    }
}

fn run_child(dir: &std::path::Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["lock_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn another_process_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let log = PartitionLog::open(&dir, PartitionConfig::default()).unwrap();
    let out = run_child(&dir);
    assert!(out.contains("child: locked"), "{out}");
    log.close().unwrap();
    let out = run_child(&dir);
    assert!(out.contains("child: opened"), "{out}");
}

#[test]
fn another_process_is_locked_out_of_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    let out = run_child(tmp.path());
    assert!(out.contains("child: locked"), "{out}");
    log.close().unwrap();
    let out = run_child(tmp.path());
    assert!(out.contains("child: opened"), "{out}");
}
