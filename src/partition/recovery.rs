//! Opening a partition directory: finding segments, and recovering after an
//! unclean stop (validate from the recovery point, truncate the first invalid
//! byte and everything after it, rebuild the indexes of touched segments).

use std::fs;
use std::path::Path;
use std::sync::{Arc, Weak};

use crate::config::PartitionConfig;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::mmap::SharedMap;
use crate::record::validate_batch;
use crate::segment::{self, ActiveSegment, Segment, SegmentPaths, WriterCell};
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
    /// Whether existing segments were validated (recovery ran).
    pub recovered: bool,
    /// Whether the active segment's files were created (no segment existed).
    pub created: bool,
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
    cell: &Weak<WriterCell>,
) -> Result<Option<Opened>> {
    let Some((&last, sealed)) = bases.split_last() else {
        return Ok(None);
    };
    let len = file_len(&SegmentPaths::new(dir, last).log)?;
    match ActiveSegment::reopen(dir, last, cfg, len, true, cell) {
        Ok(active) => Ok(Some(Opened {
            sealed: sealed
                .iter()
                .map(|&b| Segment::unloaded(dir, b, &cfg.open_segments))
                .collect(),
            active,
            truncated_at: None,
            recovered: false,
            created: false,
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
    cell: &Weak<WriterCell>,
) -> Result<Opened> {
    if bases.is_empty() {
        let active = ActiveSegment::create(dir, start_base, cfg, cell)?;
        return Ok(Opened {
            sealed: Vec::new(),
            active,
            truncated_at: None,
            recovered: false,
            created: true,
        });
    }
    let first_checked = bases
        .partition_point(|b| *b <= recovery_point)
        .saturating_sub(1);
    let mut sealed: Vec<Arc<Segment>> = bases[..first_checked]
        .iter()
        .map(|&b| Segment::unloaded(dir, b, &cfg.open_segments))
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
        // In the segment holding the recovery point, the batches below it
        // were fsynced: start at the index entry below it, if the index
        // still has one that agrees with the log (it is not fsynced with
        // the log, so it may be short), so that recovery reads the
        // unflushed tail, not the whole segment.
        let trusted = match i == first_checked {
            true => trusted_start(&paths, base, recovery_point),
            false => None,
        };
        let from_trusted = trusted.and_then(|start| {
            validate_segment(
                &paths.log,
                base,
                next_base,
                Some(start),
                expected_next,
                contiguous,
            )
            .transpose()
        });
        let checked = match from_trusted {
            Some(checked) => checked?,
            // From the start there is no named batch to disagree with, so
            // this always gives a result.
            None => validate_segment(&paths.log, base, next_base, None, expected_next, contiguous)?
                .ok_or_else(|| {
                    Error::io("validate", &paths.log, std::io::Error::other("no result"))
                })?,
        };
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
                Segment::unloaded(dir, later, &cfg.open_segments).delete()?;
            }
            break (base, valid_len);
        }
        // A whole, valid sealed segment: its indexes may predate the crash.
        let built = segment::build_indexes(base, checked.log.readable(), cfg.index_interval_bytes);
        fsutil::write_atomic(&paths.index, &built.offset_index)?;
        fsutil::write_atomic(&paths.time, &built.time_index)?;
        sealed.push(Segment::unloaded(dir, base, &cfg.open_segments));
        expected_next = next;
        i += 1;
    };
    let active = ActiveSegment::reopen(dir, last_base, cfg, valid_len, false, cell)?;
    // The cut must be durable before anything is appended after it.
    let log_path = SegmentPaths::new(dir, last_base).log;
    let note = fsutil::FileSyncNote::before(|| valid_len as u64);
    // Open: the writer lock is held, so the budget cannot have parked it.
    let synced = match active.log_file() {
        Some(f) => f.sync_all(),
        None => fs::File::open(&*log_path).and_then(|f| f.sync_all()),
    };
    synced.map_err(|e| Error::io("fsync", &log_path, e))?;
    note.synced(&log_path);
    fsutil::sync_dir(dir)?;
    Ok(Opened {
        sealed,
        active,
        truncated_at,
        recovered: true,
        created: false,
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

/// Where validation may start in a segment: a batch below the recovery
/// point (so fsynced) that the offset index names.
#[derive(Debug, Clone, Copy)]
struct Start {
    /// Where the batch starts.
    position: usize,
    /// Its last offset, as the index says.
    last: Offset,
}

/// The greatest offset-index entry naming a batch wholly below
/// `recovery_point`, among the index's leading entries that increase (after
/// a crash the index may end in zeros: it is not fsynced with the log).
fn trusted_start(paths: &SegmentPaths, base: Offset, recovery_point: Offset) -> Option<Start> {
    let bytes = fs::read(&paths.index).ok()?;
    let index = segment::OffsetIndex::new(&bytes);
    let mut best = None;
    let mut prev: Option<(u32, u32)> = None;
    for k in 0..index.len() {
        let e = index.get(k);
        if prev.is_some_and(|(o, p)| e.relative_offset <= o || e.position <= p) {
            break;
        }
        prev = Some((e.relative_offset, e.position));
        let last = base.plus(u64::from(e.relative_offset));
        if last >= recovery_point {
            break;
        }
        best = Some(Start {
            position: e.position as usize,
            last,
        });
    }
    best.filter(|s| s.position > 0)
}

/// Validates the batches of one segment from its start, or from `start`;
/// with `contiguous`, each batch must start where the one before it ended.
/// `None` if the batch at `start` is not the one the index named (the
/// caller then validates from the beginning).
fn validate_segment(
    path: &Path,
    base: Offset,
    next_base: Option<Offset>,
    start: Option<Start>,
    mut expected_next: Option<Offset>,
    contiguous: bool,
) -> Result<Option<Checked>> {
    let len = file_len(path)?;
    let log = map(path, len)?;
    let bytes = log.readable();
    let mut pos = 0;
    let mut next = None;
    if let Some(start) = start {
        // The named batch is below the recovery point: durable, and its
        // offsets fix where the contiguous run continues.
        let named = match segment::header_at(bytes, start.position) {
            Ok(Some(h)) => h,
            _ => return Ok(None),
        };
        if named.last_offset() as u64 != start.last.0
            || segment::check_in_segment(base, &named).is_err()
            || validate_batch(&bytes[start.position..start.position + named.total_size()]).is_err()
        {
            return Ok(None);
        }
        pos = start.position + named.total_size();
        next = Some(start.last.plus(1));
        expected_next = next;
    }
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
    Ok(Some(Checked {
        log,
        valid_len: pos,
        next,
    }))
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
