//! Opening a partition directory: finding segments, and recovering after an
//! unclean stop (validate from the recovery point, truncate the first invalid
//! byte and everything after it, rebuild the indexes of touched segments).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::config::PartitionConfig;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::mmap::SharedMap;
use crate::record::validate_batch;
use crate::segment::{self, ActiveSegment, Segment, SegmentPaths};
use crate::types::Offset;

/// The segments of an opened partition.
#[derive(Debug)]
pub(crate) struct Opened {
    /// Sealed segments, oldest first (not loaded).
    pub sealed: Vec<Arc<Segment>>,
    /// The last segment, open for appending.
    pub active: ActiveSegment,
    /// Where the log was cut during recovery, if it was: the file and byte.
    pub truncated_at: Option<(std::path::PathBuf, u64)>,
}

/// Base offsets of the segments in `dir`, sorted. Removes leftovers of
/// interrupted atomic writes (`*.tmp`).
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<Offset>> {
    let mut bases = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            fsutil::remove_if_exists(&entry.path())?;
            continue;
        }
        if let Some(base) = name.strip_suffix(".log").and_then(segment::parse_base) {
            bases.push(base);
        }
    }
    bases.sort();
    Ok(bases)
}

/// Opens the segments of a partition that was shut down cleanly: sealed
/// segments stay unloaded; the last one is reopened with its indexes kept if
/// they pass the sanity check. `None` if the last segment does not end cleanly
/// (the caller then recovers).
pub(crate) fn open_clean(
    dir: &Path,
    cfg: &PartitionConfig,
    bases: &[Offset],
) -> Result<Option<Opened>> {
    let Some((&last, sealed)) = bases.split_last() else {
        return Ok(None);
    };
    let len = file_len(&SegmentPaths::new(dir, last).log)?;
    match ActiveSegment::reopen(dir, last, cfg, len, true) {
        Ok(active) => Ok(Some(Opened {
            sealed: sealed.iter().map(|&b| Segment::unloaded(dir, b)).collect(),
            active,
            truncated_at: None,
        })),
        Err(Error::Corrupt { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Recovers after an unclean stop: every batch of the segments from the one
/// holding `recovery_point` to the end is validated (length, magic, CRC,
/// increasing offsets). The log is cut at the first invalid byte, later
/// segments are deleted, and the indexes of validated segments are rebuilt.
pub(crate) fn recover(
    dir: &Path,
    cfg: &PartitionConfig,
    bases: &[Offset],
    recovery_point: Offset,
    start_base: Offset,
) -> Result<Opened> {
    if bases.is_empty() {
        let active = ActiveSegment::create(dir, start_base, cfg)?;
        return Ok(Opened {
            sealed: Vec::new(),
            active,
            truncated_at: None,
        });
    }
    let first_checked = bases
        .partition_point(|b| *b <= recovery_point)
        .saturating_sub(1);
    let mut sealed: Vec<Arc<Segment>> = bases[..first_checked]
        .iter()
        .map(|&b| Segment::unloaded(dir, b))
        .collect();
    let mut truncated_at = None;
    let mut expected_next: Option<Offset> = None;
    let mut i = first_checked;
    let (last_base, valid_len) = loop {
        let base = bases[i];
        let next_base = bases.get(i + 1).copied();
        let paths = SegmentPaths::new(dir, base);
        // The last segment of a log that is never compacted holds contiguous
        // offsets; in a compacted one it may be a compacted segment (after a
        // truncation), whose gaps are legitimate.
        let contiguous = next_base.is_none() && !cfg.compacted;
        let checked = validate_segment(&paths.log, base, next_base, expected_next, contiguous)?;
        let (valid_len, len, next) = (checked.valid_len, checked.log.published(), checked.next);
        if valid_len < len {
            truncated_at = Some((paths.log.to_path_buf(), valid_len as u64));
        }
        // A sealed segment must end where the next one starts: an empty or
        // short one is a hole, and the log ends before it.
        if next_base.is_none() || valid_len < len || next != next_base {
            // The last segment, or the first one with an invalid tail or a
            // hole after it: it becomes the active segment, later ones go.
            for &later in &bases[i + 1..] {
                Segment::unloaded(dir, later).delete()?;
            }
            break (base, valid_len);
        }
        // A whole, valid sealed segment: its indexes may predate the crash.
        let built = segment::build_indexes(base, checked.log.readable(), cfg.index_interval_bytes);
        fsutil::write_atomic(&paths.index, &built.offset_index)?;
        fsutil::write_atomic(&paths.time, &built.time_index)?;
        sealed.push(Segment::unloaded(dir, base));
        expected_next = next;
        i += 1;
    };
    let active = ActiveSegment::reopen(dir, last_base, cfg, valid_len, false)?;
    // The cut must be durable before anything is appended after it.
    let log_path = SegmentPaths::new(dir, last_base).log;
    let note = fsutil::FileSyncNote::before(|| valid_len as u64);
    active
        .log_file()
        .sync_all()
        .map_err(|e| Error::io("fsync", &log_path, e))?;
    note.synced(&log_path);
    fsutil::sync_dir(dir)?;
    Ok(Opened {
        sealed,
        active,
        truncated_at,
    })
}

/// A segment's log as validated by [`validate_segment`].
struct Checked {
    /// The whole file, mapped.
    log: Arc<SharedMap>,
    /// Length of the valid prefix.
    valid_len: usize,
    /// The offset after its last valid batch.
    next: Option<Offset>,
}

/// Validates the batches of one segment from its start; with `contiguous`,
/// each batch must start where the one before it ended.
fn validate_segment(
    path: &Path,
    base: Offset,
    next_base: Option<Offset>,
    mut expected_next: Option<Offset>,
    contiguous: bool,
) -> Result<Checked> {
    let len = file_len(path)?;
    let log = map(path, len)?;
    let bytes = log.readable();
    let mut pos = 0;
    let mut next = None;
    while pos < bytes.len() {
        let Ok(Some(h)) = segment::header_at(bytes, pos) else {
            break;
        };
        // baseOffset is outside the CRC. Where offsets are contiguous, any
        // jump is a damaged baseOffset.
        let contiguous_from = expected_next.unwrap_or(base);
        if segment::check_in_segment(base, &h).is_err()
            || expected_next.is_some_and(|n| (h.base_offset as u64) < n.0)
            || (contiguous && h.base_offset as u64 != contiguous_from.0)
            || next_base.is_some_and(|n| h.last_offset() as u64 >= n.0)
            || validate_batch(&bytes[pos..pos + h.total_size()]).is_err()
        {
            break;
        }
        pos += h.total_size();
        let after = Offset(h.last_offset() as u64 + 1);
        next = Some(after);
        expected_next = Some(after);
    }
    Ok(Checked {
        log,
        valid_len: pos,
        next,
    })
}

fn file_len(path: &Path) -> Result<usize> {
    let len = fs::metadata(path)
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    Ok(len as usize)
}

fn map(path: &Path, len: usize) -> Result<Arc<SharedMap>> {
    let f = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    SharedMap::read_only(&f, len).map_err(|e| Error::io("mmap", path, e))
}
