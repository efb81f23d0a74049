//! One segment: a `.log` file of record batches with its `.index` and `.timeindex`.
//!
//! Sealed segments are loaded lazily (mapped read-only on first use) so that
//! opening a large log touches no segment data. The active segment is written
//! through [`ActiveSegment`], the only writer of its maps.

mod active;
mod build;
mod index;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::config::PartitionConfig;
use crate::error::{Error, FormatError, Result};
use crate::fsutil;
use crate::mmap::SharedMap;
use crate::record::BatchHeader;
use crate::types::{Offset, Timestamp};

pub(crate) use active::ActiveSegment;
pub(crate) use build::build_indexes;
use build::check_indexes;
pub(crate) use index::{
    Entry, IndexCursor, NewEntries, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex,
    OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES,
};

/// File name of a segment file: the base offset as 20 digits, then `ext`.
pub(crate) fn file_name(base: Offset, ext: &str) -> String {
    format!("{:020}.{ext}", base.0)
}

/// The base offset named by a segment file's stem (20 digits).
pub(crate) fn parse_base(stem: &str) -> Option<Offset> {
    match stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        true => stem.parse().ok().map(Offset),
        false => None,
    }
}

/// The three files of a segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentPaths {
    pub log: Arc<Path>,
    pub index: PathBuf,
    pub time: PathBuf,
}

impl SegmentPaths {
    pub(crate) fn new(dir: &Path, base: Offset) -> Self {
        SegmentPaths {
            log: Arc::from(dir.join(file_name(base, "log"))),
            index: dir.join(file_name(base, "index")),
            time: dir.join(file_name(base, "timeindex")),
        }
    }
}

/// The memory maps of a loaded segment.
#[derive(Debug)]
pub(crate) struct SegmentData {
    pub log: Arc<SharedMap>,
    pub index: Arc<SharedMap>,
    pub time: Arc<SharedMap>,
}

/// A segment of a partition, loaded or not.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: Offset,
    pub paths: SegmentPaths,
    /// The maps once loaded. Locked to load them or to copy the `Arc`; loading a
    /// sealed segment (open, map, check indexes) happens under it, so readers of
    /// the same segment wait for one load instead of racing.
    data: Mutex<Option<Arc<SegmentData>>>,
    /// Set when the segment's files are removed or replaced (compaction); it
    /// can no longer be loaded.
    deleted: AtomicBool,
    /// Bytes of log, once known; a sealed segment's size never changes.
    size: OnceLock<u64>,
}

/// Where a batch starts in a segment's log, and its header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub position: usize,
    pub header: BatchHeader,
}

impl Segment {
    /// A segment known from its files, to be loaded on first use.
    pub(crate) fn unloaded(dir: &Path, base: Offset) -> Arc<Segment> {
        Arc::new(Segment {
            base,
            paths: SegmentPaths::new(dir, base),
            data: Mutex::new(None),
            deleted: AtomicBool::new(false),
            size: OnceLock::new(),
        })
    }

    /// A sealed segment whose maps are already loaded (a compacted segment,
    /// mapped before its files take their final names).
    pub(crate) fn with_data(dir: &Path, base: Offset, data: Arc<SegmentData>) -> Arc<Segment> {
        Arc::new(Segment {
            base,
            paths: SegmentPaths::new(dir, base),
            data: Mutex::new(Some(data)),
            deleted: AtomicBool::new(false),
            size: OnceLock::new(),
        })
    }

    /// Whether the maps are in memory.
    #[cfg(test)]
    pub(crate) fn is_loaded(&self) -> bool {
        self.data.lock().is_some()
    }

    /// Whether the segment's files were removed.
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The segment's maps, loading a sealed segment on first use (checking its
    /// indexes, rebuilding them from the log if they are missing or inconsistent).
    /// `None` if the segment was deleted.
    pub(crate) fn load(&self, cfg: &PartitionConfig) -> Result<Option<Arc<SegmentData>>> {
        let mut slot = self.data.lock();
        if let Some(d) = slot.as_ref() {
            return Ok(Some(Arc::clone(d)));
        }
        if self.is_deleted() {
            return Ok(None);
        }
        let data = Arc::new(self.load_sealed(cfg)?);
        *slot = Some(Arc::clone(&data));
        Ok(Some(data))
    }

    fn load_sealed(&self, cfg: &PartitionConfig) -> Result<SegmentData> {
        let log = map_read_only(&self.paths.log)?;
        let log_bytes = log.readable();
        // Missing or unreadable indexes are rebuilt like inconsistent ones.
        let index = map_read_only(&self.paths.index).ok();
        let time = map_read_only(&self.paths.time).ok();
        let (index, time) = match (index, time) {
            (Some(i), Some(t))
                if check_indexes(self.base, log_bytes, i.readable(), t.readable()).is_ok() =>
            {
                (i, t)
            }
            _ => {
                let built = build_indexes(self.base, log_bytes, cfg.index_interval_bytes);
                fsutil::write_atomic(&self.paths.index, &built.offset_index)?;
                fsutil::write_atomic(&self.paths.time, &built.time_index)?;
                (
                    map_read_only(&self.paths.index)?,
                    map_read_only(&self.paths.time)?,
                )
            }
        };
        Ok(SegmentData { log, index, time })
    }

    /// Bytes of log of this sealed segment (its file is trimmed to its data).
    pub(crate) fn sealed_size(&self) -> Result<u64> {
        if let Some(size) = self.size.get() {
            return Ok(*size);
        }
        let size = match self.data.lock().as_ref() {
            Some(d) => d.log.published() as u64,
            None => fs::metadata(&self.paths.log)
                .map_err(|e| Error::io("stat", &self.paths.log, e))?
                .len(),
        };
        Ok(*self.size.get_or_init(|| size))
    }

    /// The largest record timestamp of this sealed segment (its time index
    /// ends with it); `None` if it holds no record.
    pub(crate) fn max_timestamp(&self, cfg: &PartitionConfig) -> Result<Option<Timestamp>> {
        let Some(data) = self.load(cfg)? else {
            return Ok(None);
        };
        Ok(TimeIndex::new(data.time.readable())
            .last()
            .map(|e| e.timestamp))
    }

    /// Marks the segment replaced: it can no longer be loaded, and readers
    /// that find it so look it up again. Its files now belong to its
    /// replacement and are left alone; readers holding its maps keep them.
    pub(crate) fn retire(&self) {
        self.deleted.store(true, Ordering::Release);
        *self.data.lock() = None;
    }

    /// Marks the segment deleted and removes its files. Readers holding its maps
    /// keep valid memory (an unlinked file stays mapped until unmapped).
    pub(crate) fn delete(&self) -> Result<()> {
        self.deleted.store(true, Ordering::Release);
        *self.data.lock() = None;
        fsutil::remove_if_exists(&self.paths.log)?;
        fsutil::remove_if_exists(&self.paths.index)?;
        fsutil::remove_if_exists(&self.paths.time)
    }

    /// The batch holding `target` or the first batch after it, searching from
    /// the index entry at or below it. `None` if the segment has nothing at or
    /// after `target`.
    pub(crate) fn locate(&self, data: &SegmentData, target: Offset) -> Result<Option<Located>> {
        let log = data.log.readable();
        let rel = target
            .0
            .saturating_sub(self.base.0)
            .min(u64::from(u32::MAX)) as u32;
        let entry = OffsetIndex::new(data.index.readable()).floor(rel);
        let mut pos = entry.map_or(0, |e| e.position as usize);
        // The batch an index entry points at ends at the entry's offset; each
        // later batch starts after the one before. baseOffset is outside the
        // CRC, so this is what catches a damaged one.
        let mut prev_last = entry.map(|e| self.base.0 as i64 + i64::from(e.relative_offset) - 1);
        loop {
            let Some(header) = self.header_at(log, pos)? else {
                return Ok(None);
            };
            let indexed = pos == entry.map_or(usize::MAX, |e| e.position as usize);
            if indexed && prev_last.is_some_and(|p| header.last_offset() != p + 1) {
                return Err(self.out_of_order(pos, "disagrees with the offset index"));
            }
            if !indexed && prev_last.is_some_and(|p| header.base_offset <= p) {
                return Err(self.out_of_order(pos, "does not follow the batch before it"));
            }
            if header.last_offset() >= target.0 as i64 {
                return Ok(Some(Located {
                    position: pos,
                    header,
                }));
            }
            prev_last = Some(header.last_offset());
            pos += header.total_size();
        }
    }

    /// Extends a read from the batch `first` over the whole batches that
    /// follow, while the total stays within `max_bytes` (at least `first`).
    /// Checks that offsets keep increasing, into the batch after the run, and
    /// stay below `upper` (the next segment's base). Returns the end position.
    pub(crate) fn extend_run(
        &self,
        data: &SegmentData,
        first: Located,
        max_bytes: usize,
        upper: Option<Offset>,
    ) -> Result<usize> {
        let log = data.log.readable();
        let below_upper = |h: &BatchHeader| upper.is_none_or(|u| h.last_offset() < u.0 as i64);
        if !below_upper(&first.header) {
            return Err(self.out_of_order(first.position, "reaches into the next segment"));
        }
        let mut prev_last = first.header.last_offset();
        let mut stop = first.position + first.header.total_size();
        while let Some(h) = self.header_at(log, stop)? {
            if h.base_offset <= prev_last {
                return Err(self.out_of_order(stop, "does not follow the batch before it"));
            }
            if stop + h.total_size() - first.position > max_bytes {
                break;
            }
            if !below_upper(&h) {
                return Err(self.out_of_order(stop, "reaches into the next segment"));
            }
            prev_last = h.last_offset();
            stop += h.total_size();
        }
        Ok(stop)
    }

    fn out_of_order(&self, pos: usize, what: &str) -> Error {
        Error::corrupt(
            &self.paths.log,
            pos as u64,
            FormatError::Inconsistent(format!("the batch's base offset {what}")),
        )
    }

    /// The first batch whose max timestamp is at or after `ts`.
    pub(crate) fn locate_time(&self, data: &SegmentData, ts: Timestamp) -> Result<Option<Located>> {
        let start = TimeIndex::new(data.time.readable())
            .below(ts)
            .map_or(self.base, |e| self.base.plus(u64::from(e.relative_offset)));
        let log = data.log.readable();
        let Some(first) = self.locate(data, start)? else {
            return Ok(None);
        };
        let mut pos = first.position;
        while let Some(header) = self.header_at(log, pos)? {
            if header.max_timestamp >= ts.0 {
                return Ok(Some(Located {
                    position: pos,
                    header,
                }));
            }
            pos += header.total_size();
        }
        Ok(None)
    }

    /// The batch header at `pos`, checked against this segment's bounds.
    pub(crate) fn header_at(&self, log: &[u8], pos: usize) -> Result<Option<BatchHeader>> {
        let header =
            header_at(log, pos).map_err(|r| Error::corrupt(&self.paths.log, pos as u64, r))?;
        if let Some(h) = &header {
            check_in_segment(self.base, h)
                .map_err(|r| Error::corrupt(&self.paths.log, pos as u64, r))?;
        }
        Ok(header)
    }
}

/// Checks that a batch's offsets belong in a segment based at `base`.
pub(crate) fn check_in_segment(base: Offset, h: &BatchHeader) -> Result<(), FormatError> {
    let rel = h.last_offset() - base.0 as i64;
    if h.base_offset < base.0 as i64 || rel > i64::from(u32::MAX) {
        return Err(FormatError::Inconsistent(format!(
            "batch offsets {}..={} do not belong in the segment based at {base}",
            h.base_offset,
            h.last_offset()
        )));
    }
    Ok(())
}

/// The header of the whole batch at `pos` of `log`; `None` at the end.
pub(crate) fn header_at(log: &[u8], pos: usize) -> Result<Option<BatchHeader>, FormatError> {
    if pos >= log.len() {
        return Ok(None);
    }
    let rest = &log[pos..];
    let header = BatchHeader::parse(rest)?;
    if header.total_size() > rest.len() {
        return Err(FormatError::Truncated {
            needed: header.total_size() as u64,
            available: rest.len() as u64,
        });
    }
    Ok(Some(header))
}

pub(crate) fn map_read_only(path: &Path) -> Result<Arc<SharedMap>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let len = usize::try_from(len).map_err(|_| {
        Error::io(
            "map",
            path,
            std::io::Error::other("file larger than the address space"),
        )
    })?;
    SharedMap::read_only(&file, len).map_err(|e| Error::io("mmap", path, e))
}
