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
