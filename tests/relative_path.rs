//! Regression: opening a directory given as a bare relative name failed,
//! because its parent is the empty path and fsyncing "" is an error. (One
//! test per process: it changes the working directory.)

use moldau::{Log, LogConfig, PartitionConfig, PartitionLog, Record};

#[test]
fn bare_relative_names_open() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let log = Log::open("data", LogConfig::default()).unwrap();
    log.create_topic("t", 1, None).unwrap();
    log.close().unwrap();
    let p = PartitionLog::open("p-0", PartitionConfig::default()).unwrap();
    p.append(&[Record::new("x")]).unwrap();
    p.close().unwrap();
    assert!(dir.path().join("data/t-0").is_dir());
    assert!(dir.path().join("p-0").is_dir());
}
