//! Replacing segments with a compacted one, crash-safely.
//!
//! A group of segments based at `B` is replaced in four steps:
//! 1. the new log is written to `B.log.cleaned`, its indexes to
//!    `B.index.cleaned` and `B.timeindex.cleaned`, all fsynced;
//! 2. each `.cleaned` is renamed to `.swap`, the log last, and the directory
//!    fsynced: a `B.log.swap` is the commit point;
//! 3. the group's other segments are deleted;
//! 4. the `.swap` files are renamed over `B.log`, `B.index`, `B.timeindex`.
//!
//! Opening a partition finishes what a crash interrupted
//! ([`finish_interrupted`]): `.cleaned` files (step 1, not committed) are
//! removed; a `B.log.swap` (committed) replaces every segment whose base lies
//! in its offset range, then takes its place. Index `.swap` files without a
//! log `.swap` are removed, and a swapped-in log without its index swaps
//! gets its indexes rebuilt when first loaded.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::segment::{self, build_indexes, map_read_only, SegmentData, SegmentPaths};
use crate::types::Offset;

const CLEANED: &str = "cleaned";
const SWAP: &str = "swap";

/// `path` with `.suffix` appended (`x.log` -> `x.log.swap`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// The three files of a segment, in the order they are renamed (log last).
fn files(paths: &SegmentPaths) -> [PathBuf; 3] {
    [
        paths.index.clone(),
        paths.time.clone(),
        paths.log.to_path_buf(),
    ]
}

/// A compacted segment being written (step 1).
#[derive(Debug)]
pub(crate) struct Cleaned {
    dir: PathBuf,
    base: Offset,
    paths: SegmentPaths,
    log: PathBuf,
}

impl Cleaned {
    /// Creates an empty `B.log.cleaned` (replacing any leftover).
    pub(crate) fn create(dir: &Path, base: Offset) -> Result<(Cleaned, File)> {
        let paths = SegmentPaths::new(dir, base);
        let log = with_suffix(&paths.log, CLEANED);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log)
            .map_err(|e| Error::io("create", &log, e))?;
        let cleaned = Cleaned {
            dir: dir.to_path_buf(),
            base,
            paths,
            log,
        };
        Ok((cleaned, file))
    }

    /// The log being written.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// Removes the files: the group needed no rewrite.
    pub(crate) fn discard(self) -> Result<()> {
        fsutil::remove_if_exists(&self.log)
    }

    /// Steps 1 and 2: fsyncs the written log, writes its indexes, and
    /// commits the swap. Returns the new segment's maps (of the `.swap`
    /// files, which keep their inodes through the final rename).
    pub(crate) fn commit(
        self,
        log_file: File,
        index_interval_bytes: u64,
    ) -> Result<Arc<SegmentData>> {
        // Reported to the fault-injection observer like every other fsync
        // (the power-loss suite otherwise takes the file for unsynced).
        let note = fsutil::FileSyncNote::before(|| log_file.metadata().map_or(0, |m| m.len()));
        log_file
            .sync_all()
            .map_err(|e| Error::io("fsync", &self.log, e))?;
        note.synced(&self.log);
        drop(log_file);
        let log = map_read_only(&self.log)?;
        let built = build_indexes(self.base, log.readable(), index_interval_bytes);
        if built.valid_len != log.published() {
            return Err(Error::corrupt(
                &self.log,
                built.valid_len as u64,
                crate::error::FormatError::Inconsistent(
                    "a compacted segment does not read back whole".into(),
                ),
            ));
        }
        let [index, time, _] = files(&self.paths);
        write_synced(&with_suffix(&index, CLEANED), &built.offset_index)?;
        write_synced(&with_suffix(&time, CLEANED), &built.time_index)?;
        for path in files(&self.paths) {
            rename(&with_suffix(&path, CLEANED), &with_suffix(&path, SWAP))?;
        }
        fsutil::sync_dir(&self.dir)?;
        Ok(Arc::new(SegmentData {
            log,
            index: map_read_only(&with_suffix(&index, SWAP))?,
            time: map_read_only(&with_suffix(&time, SWAP))?,
        }))
    }
}

/// Step 4: the committed `.swap` files of the segment based at `base` take
/// their final names (the group's other segments are already gone).
pub(crate) fn install(dir: &Path, base: Offset) -> Result<()> {
    for path in files(&SegmentPaths::new(dir, base)) {
        let swap = with_suffix(&path, SWAP);
        if swap.exists() {
            rename(&swap, &path)?;
        } else if path != *SegmentPaths::new(dir, base).log {
            // An index whose swap was lost: rebuilt from the log when loaded.
            fsutil::remove_if_exists(&path)?;
        }
    }
    fsutil::sync_dir(dir)
}

/// Finishes or discards compaction swaps a crash interrupted (see the
/// module docs). Runs before the segments are listed.
pub(crate) fn finish_interrupted(dir: &Path, index_interval_bytes: u64) -> Result<()> {
    let (mut log_swaps, mut leftovers) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match name.strip_suffix(".log.swap").map(segment::parse_base) {
            Some(Some(base)) => log_swaps.push(base),
            _ if name.ends_with(".cleaned") || name.ends_with(".swap") => {
                leftovers.push(entry.path())
            }
            _ => {}
        }
    }
    if log_swaps.is_empty() && leftovers.is_empty() {
        return Ok(());
    }
    log_swaps.sort();
    for base in log_swaps {
        let log_swap = with_suffix(&SegmentPaths::new(dir, base).log, SWAP);
        let map = map_read_only(&log_swap)?;
        let next = build_indexes(base, map.readable(), index_interval_bytes).next_offset;
        drop(map);
        // The old segments the swap replaces: every one based inside its
        // range but its own base, which the swap is renamed over.
        if let Some(next) = next {
            for old in super::super::recovery::list_segments(dir)? {
                if old > base && old < next {
                    for path in files(&SegmentPaths::new(dir, old)) {
                        fsutil::remove_if_exists(&path)?;
                    }
                }
            }
        }
        install(dir, base)?;
    }
    // Uncommitted files: `.cleaned` ones, and index swaps without a log swap
    // (those of committed swaps were just renamed away).
    for path in leftovers {
        fsutil::remove_if_exists(&path)?;
    }
    fsutil::sync_dir(dir)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
}

fn write_synced(path: &Path, contents: &[u8]) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(contents)?;
        let note = fsutil::FileSyncNote::before(|| contents.len() as u64);
        f.sync_all()?;
        note.synced(path);
        Ok(())
    };
    write().map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PartitionConfig;
    use crate::partition::PartitionLog;
    use crate::record::Record;

    fn config() -> PartitionConfig {
        PartitionConfig {
            segment_bytes: 4096,
            index_interval_bytes: 256,
            ..PartitionConfig::default()
        }
    }

    fn contents(log: &PartitionLog) -> Vec<(u64, Vec<u8>)> {
        crate::partition::tests::values(log, log.start_offset())
    }

    #[test]
    fn a_committed_swap_replaces_the_segments_in_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        while log.stats().segment_count < 4 {
            log.append(&[Record::new(vec![b'x'; 200])]).unwrap();
        }
        let expect = contents(&log);
        log.close().unwrap();
        drop(log);
        let bases = crate::partition::recovery::list_segments(dir.path()).unwrap();
        // What a crash after step 2 leaves: segments 0 and 1 merged into a
        // committed swap at base 0 (here uncompacted: the range is what counts),
        // its index swaps, and an uncommitted leftover of another pass.
        let paths = |b| SegmentPaths::new(dir.path(), b);
        let mut merged = fs::read(&paths(bases[0]).log).unwrap();
        merged.extend(fs::read(&paths(bases[1]).log).unwrap());
        fs::write(with_suffix(&paths(bases[0]).log, SWAP), &merged).unwrap();
        fs::write(with_suffix(&paths(bases[0]).index, SWAP), b"").unwrap();
        fs::write(with_suffix(&paths(bases[2]).log, CLEANED), b"junk").unwrap();
        fs::write(with_suffix(&paths(bases[3]).index, SWAP), b"junk").unwrap();

        finish_interrupted(dir.path(), 256).unwrap();
        let left = crate::partition::recovery::list_segments(dir.path()).unwrap();
        assert_eq!(left, [bases[0], bases[2], bases[3]]);
        assert_eq!(fs::read(&paths(bases[0]).log).unwrap(), merged);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".swap") || n.ends_with(".cleaned")),
            "{names:?}"
        );
        // The log reads back whole, clean open or full recovery alike.
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(contents(&log), expect);
        log.close().unwrap();
        drop(log);
        fs::remove_file(dir.path().join(crate::partition::CHECKPOINT_FILE)).unwrap();
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(contents(&log), expect);
    }

    #[test]
    fn an_uncommitted_pass_leaves_the_old_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        while log.stats().segment_count < 3 {
            log.append(&[Record::new(vec![b'y'; 300])]).unwrap();
        }
        let expect = contents(&log);
        log.close().unwrap();
        drop(log);
        // A crash in step 2: the index was renamed, the log was not.
        let p = SegmentPaths::new(dir.path(), Offset(0));
        fs::write(with_suffix(&p.log, CLEANED), b"partial").unwrap();
        fs::write(with_suffix(&p.index, SWAP), b"").unwrap();
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(contents(&log), expect);
        assert!(!with_suffix(&p.index, SWAP).exists());
        assert!(!with_suffix(&p.log, CLEANED).exists());
    }
}
