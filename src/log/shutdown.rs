//! The log-wide clean-shutdown marker (Kafka's `.kafka_cleanshutdown`).
//!
//! A clean [`Log::close`](super::Log::close) makes every partition's clean
//! checkpoint durable and then writes `<data>/.clean_shutdown`. The next
//! `Log::open` reads it and removes it durably before any partition can be
//! appended to, so a stop from then on, clean close aside, finds no marker.
//! A partition's own clean checkpoint is trusted only when the marker was
//! there: a crash, or a close interrupted before the marker was written,
//! makes every partition recover. This replaces the checkpoint each
//! partition used to rewrite and fsync at open (two fsyncs per partition)
//! with one unlink and one directory fsync per `Log::open`.
//!
//! Format: a checkpoint file (see `checkpoint`), kind `MLDS`, version 1,
//! payload [`CleanShutdown`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::fsutil;

/// Name of the marker in the data directory.
pub(crate) const MARKER_FILE: &str = ".clean_shutdown";
const MARKER_MAGIC: [u8; 4] = *b"MLDS";
const MARKER_VERSION: u32 = 1;

/// The marker's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct CleanShutdown {
    /// Partitions whose clean checkpoints the close wrote (for inspection).
    partitions: u64,
}

/// Whether the last close of the log in `dir` was clean; removes the marker
/// (durably) so that any stop from now on is seen as unclean. A damaged
/// marker counts as absent.
pub(crate) fn take(dir: &Path) -> Result<bool> {
    let path = dir.join(MARKER_FILE);
    let clean = match checkpoint::read::<CleanShutdown>(&path, MARKER_MAGIC, MARKER_VERSION) {
        Ok(found) => found.is_some(),
        Err(Error::Corrupt { .. }) => false,
        Err(e) => return Err(e),
    };
    if path.exists() {
        std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        fsutil::sync_dir(dir)?;
    }
    Ok(clean)
}

/// Writes the marker durably: called once every partition's clean
/// checkpoint is on stable storage.
pub(crate) fn write(dir: &Path, partitions: u64) -> Result<()> {
    checkpoint::write(
        &dir.join(MARKER_FILE),
        MARKER_MAGIC,
        MARKER_VERSION,
        &CleanShutdown { partitions },
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::log::{Log, LogConfig};
    use crate::partition::CHECKPOINT_FILE;
    use crate::record::Record;
    use crate::types::{PartitionId, TopicName};

    fn append(log: &Log, p: u32, value: &str) {
        let topic = log.topic(&TopicName::new("t").unwrap()).unwrap();
        let part = topic.partition(PartitionId(p)).unwrap();
        part.log.append(&[Record::new(value.to_owned())]).unwrap();
    }

    /// (end offset, recovered) of each partition of `t`.
    fn state(log: &Log) -> Vec<(u64, bool)> {
        let d = log.describe_topic("t").unwrap();
        d.partitions
            .iter()
            .map(|p| (p.end_offset.0, p.recovered))
            .collect()
    }

    #[test]
    fn clean_open_writes_no_checkpoint_and_a_crash_recovers_every_partition() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 3, None).unwrap();
        for p in 0..3 {
            append(&log, p, "a");
        }
        log.close().unwrap();
        drop(log);
        assert!(dir.path().join(MARKER_FILE).exists());
        let ckpt = dir.path().join("t-1").join(CHECKPOINT_FILE);
        let before = (fs_inode(&ckpt), std::fs::read(&ckpt).unwrap());

        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert!(!dir.path().join(MARKER_FILE).exists());
        assert_eq!(state(&log), vec![(1, false); 3]);
        // Nothing rewritten at open: same file (a rewrite renames a new
        // one over it), same bytes.
        assert_eq!((fs_inode(&ckpt), std::fs::read(&ckpt).unwrap()), before);
        append(&log, 1, "b");
        log.crash();

        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(state(&log), vec![(1, true), (2, true), (1, true)]);
        log.close().unwrap();
        drop(log);
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(state(&log), vec![(1, false), (2, false), (1, false)]);
    }

    #[test]
    fn a_damaged_marker_counts_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 1, None).unwrap();
        append(&log, 0, "a");
        log.close().unwrap();
        drop(log);
        let marker = dir.path().join(MARKER_FILE);
        let mut bytes = std::fs::read(&marker).unwrap();
        bytes[4] ^= 1;
        std::fs::write(&marker, &bytes).unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert!(!marker.exists());
        assert_eq!(state(&log), vec![(1, true)]);
    }

    fn fs_inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }
}
