//! A full disk: appends that cannot get space fail with `Error::Io` (ENOSPC)
//! naming the file, lose nothing acknowledged, leave reads working, and work
//! again once space is freed, without reopening.
//!
//! Needs a small file system: the test mounts a 4 MiB tmpfs, which needs root
//! (`.ci/run` runs as root). Elsewhere it prints why it skips.

mod common;

use common::mount::Mount;
use moldau::{
    Error, FlushPolicy, Log, LogConfig, Offset, PartitionConfig, PartitionLog, ProducerConfig,
    Record,
};

fn config() -> PartitionConfig {
    PartitionConfig {
        flush: FlushPolicy::Always,
        segment_bytes: 512 * 1024,
        ..PartitionConfig::default()
    }
}

#[test]
fn appends_fail_cleanly_when_the_disk_is_full_and_recover_when_freed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(dir.path(), "4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    // Ballast to free later.
    let ballast = dir.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 1536 * 1024]).unwrap();
    let path = dir.path().join("p-0");
    let log = PartitionLog::open(&path, config()).unwrap();
    let value = vec![7u8; 1000];
    let mut acked = 0u64;
    let err = loop {
        match log.append(&[Record::new(value.clone()).with_key(acked.to_string())]) {
            Ok(offset) => {
                assert_eq!(offset, Offset(acked));
                acked += 1;
            }
            Err(e) => break e,
        }
        assert!(acked < 100_000, "the disk never filled");
    };
    match &err {
        Error::Io {
            path: file, source, ..
        } => {
            assert_eq!(source.raw_os_error(), Some(28), "not ENOSPC: {err}");
            assert!(
                file.starts_with(&path),
                "{err} does not name a file of the partition"
            );
        }
        other => panic!("expected Error::Io with ENOSPC, got {other}"),
    }
    assert!(acked > 100, "only {acked} records fit");
    // Regression: appends reserved a whole batch limit (1 MiB) of file ahead
    // and reported ENOSPC with that much still free. The log must use the
    // disk up before it gives up.
    // (Growth stops 64 KiB short of full, the reserve for metadata files.)
    let free = rustix::fs::statvfs(dir.path()).unwrap();
    let free_bytes = free.f_bavail * free.f_frsize;
    assert!(
        free_bytes < 128 * 1024,
        "ENOSPC with {free_bytes} bytes still free"
    );

    // Reads keep working and hold every acknowledged record.
    let end = log.end_offset();
    assert!(end.0 >= acked);
    let mut next = Offset(0);
    while next < Offset(acked) {
        let batches = log.read(next, 1 << 20).unwrap();
        for r in batches.records() {
            let r = r.unwrap();
            assert_eq!(r.value.as_deref(), Some(&value[..]));
            next = r.offset.plus(1);
        }
    }

    // Free space: appends work again on the same handle.
    std::fs::remove_file(&ballast).unwrap();
    let offset = log.append(&[Record::new(value.clone())]).unwrap();
    assert_eq!(offset, end);
    log.close().unwrap();

    let log = PartitionLog::open(&path, config()).unwrap();
    assert_eq!(log.end_offset(), end.plus(1));
    log.close().unwrap();
}

// Regression: a full disk could not be freed through moldau. Deleting a
// topic first rewrites the topic catalog (and retention the partition
// checkpoint), which needs a block, and appends had taken the last one, so
// `delete_topic` failed with ENOSPC. Data files now stop growing 64 KiB
// short of a full file system.
#[test]
fn a_topic_can_be_deleted_on_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(dir.path(), "4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let log = Log::open(dir.path().join("data"), LogConfig::default()).unwrap();
    log.create_topic("ballast", 1, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let err = loop {
        if let Err(e) = producer.send("ballast", Record::new(vec![1u8; 1000])) {
            break e;
        }
    };
    assert!(
        matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(28)),
        "{err}"
    );
    // The producer's cache would keep the deleted partitions' files open.
    drop(producer);
    log.delete_topic("ballast").unwrap();
    log.create_topic("t", 1, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    producer.send("t", Record::new(vec![2u8; 1000])).unwrap();
    drop(producer);
    log.close().unwrap();
}
