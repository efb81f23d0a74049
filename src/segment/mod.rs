//! One segment: a `.log` file of record batches with its `.index` and `.timeindex`.
//!
//! Sealed segments are loaded lazily (mapped read-only on first use) so that
//! opening a large log touches no segment data. The active segment is written
//! through [`ActiveSegment`], the only writer of its maps.

mod active;
mod budget;
mod build;
mod index;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use crate::config::PartitionConfig;
use crate::error::{Error, FormatError, Result};
use crate::fsutil;
use crate::mmap::SharedMap;
use crate::record::BatchHeader;
use crate::types::{Offset, Timestamp};

pub(crate) use active::{ActiveSegment, DIRECT_WRITE_BYTES};
pub use budget::OpenSegments;
pub(crate) use budget::WriterCell;
use budget::NO_SLOT;
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

/// Published lengths of a parked active segment's three files (log, offset
/// index, time index): what a reader maps while its writer is closed. The
/// files may be longer (a failed trim), never shorter.
pub(crate) type ParkedLens = [usize; 3];

/// A segment's maps, if loaded, and how to load them.
#[derive(Debug, Default)]
struct DataSlot {
    maps: Option<Arc<SegmentData>>,
    /// Set while the segment is an active segment whose writer was parked.
    parked: Option<ParkedLens>,
}

/// A segment of a partition, loaded or not.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: Offset,
    pub paths: SegmentPaths,
    /// The maps once loaded. Locked to load them or to copy the `Arc`; loading a
    /// sealed segment (open, map, check indexes) happens under it, so readers of
    /// the same segment wait for one load instead of racing. Eviction only
    /// tries it (see `budget`).
    data: Mutex<DataSlot>,
    /// The bound this segment's maps count against.
    budget: OpenSegments,
    /// The slot of `budget` held while the maps are loaded (`NO_SLOT` if
    /// none); changed only under the budget's lock.
    slot: AtomicUsize,
    /// Used since the budget's clock hand last passed.
    referenced: AtomicBool,
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
    pub(crate) fn unloaded(dir: &Path, base: Offset, budget: &OpenSegments) -> Arc<Segment> {
        Arc::new(Segment {
            base,
            paths: SegmentPaths::new(dir, base),
            data: Mutex::new(DataSlot::default()),
            budget: budget.clone(),
            slot: AtomicUsize::new(NO_SLOT),
            referenced: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            size: OnceLock::new(),
        })
    }

    /// A sealed segment whose maps are already loaded (a compacted segment,
    /// mapped before its files take their final names). It takes a slot of
    /// `budget` like any load.
    pub(crate) fn with_data(
        dir: &Path,
        base: Offset,
        data: Arc<SegmentData>,
        budget: &OpenSegments,
    ) -> Arc<Segment> {
        let segment = Segment::unloaded(dir, base, budget);
        {
            let mut slot = segment.data.lock();
            budget.admit(&segment, None);
            slot.maps = Some(data);
        }
        segment
    }

    /// Whether the maps are in memory.
    #[cfg(test)]
    pub(crate) fn is_loaded(&self) -> bool {
        self.data.lock().maps.is_some()
    }

    /// Notes a use, for the budget's choice of what to close.
    pub(crate) fn touch(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }

    /// Clears the "used" mark, returning whether it was set.
    fn take_referenced(&self) -> bool {
        self.referenced.load(Ordering::Relaxed) && self.referenced.swap(false, Ordering::Relaxed)
    }

    /// Drops the maps to free the segment's slot, unless someone holds the
    /// `data` lock right now. For the budget, which holds its own lock and
    /// clears `slot` itself.
    fn unload_for_eviction(&self) -> bool {
        match self.data.try_lock() {
            Some(mut slot) => {
                slot.maps = None;
                true
            }
            None => false,
        }
    }

    /// Drops the maps of this segment (whose writer has been parked with
    /// `lens` published), for the budget, which holds its own lock and clears
    /// `slot` itself. `false` if someone holds the `data` lock right now.
    fn park_for_eviction(&self, lens: ParkedLens) -> bool {
        match self.data.try_lock() {
            Some(mut slot) => {
                slot.maps = None;
                slot.parked = Some(lens);
                true
            }
            None => false,
        }
    }

    /// Drops the maps of an active segment whose writer is parking itself
    /// (with `lens` published) and frees its slot.
    fn park_and_release(&self, lens: ParkedLens) {
        let mut slot = self.data.lock();
        slot.maps = None;
        slot.parked = Some(lens);
        self.budget.release(self);
    }

    /// Opens an active segment's writer with `open` (files and writable
    /// maps), after taking a slot of the budget that the writer lock `cell`
    /// can reclaim by parking it. Readers see the new maps from then on. The
    /// data lock is held throughout, so the budget cannot take the slot back
    /// before the maps are in place.
    pub(crate) fn open_writer<T>(
        self: &Arc<Self>,
        cell: &Weak<WriterCell>,
        open: impl FnOnce() -> Result<(T, Arc<SegmentData>)>,
    ) -> Result<T> {
        let mut slot = self.data.lock();
        self.budget.admit(self, Some(cell.clone()));
        match open() {
            Ok((writers, data)) => {
                slot.maps = Some(data);
                slot.parked = None;
                Ok(writers)
            }
            Err(e) => {
                slot.maps = None;
                self.budget.release(self);
                Err(e)
            }
        }
    }

    /// Forgets the maps of a segment that was sealed while parked (its time
    /// index gained its final entry), so the next reader maps the whole files.
    fn reset_after_seal(&self) {
        let mut slot = self.data.lock();
        slot.maps = None;
        slot.parked = None;
        self.budget.release(self);
    }

    /// Drops the maps (under the data lock) and frees the slot.
    fn unload(&self) {
        let mut slot = self.data.lock();
        slot.maps = None;
        self.budget.release(self);
    }

    /// Whether the segment's files were removed.
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The segment's maps, loading a sealed segment on first use (checking its
    /// indexes, rebuilding them from the log if they are missing or inconsistent).
    /// `None` if the segment was deleted.
    ///
    /// Loading takes a slot of the segment's [`OpenSegments`] first, which
    /// may close the least recently used segment of any partition.
    pub(crate) fn load(
        self: &Arc<Self>,
        cfg: &PartitionConfig,
    ) -> Result<Option<Arc<SegmentData>>> {
        let mut slot = self.data.lock();
        if let Some(d) = slot.maps.as_ref() {
            self.touch();
            return Ok(Some(Arc::clone(d)));
        }
        if self.is_deleted() {
            return Ok(None);
        }
        self.budget.admit(self, None);
        match self.load_sealed(cfg, slot.parked) {
            Ok(data) => {
                let data = Arc::new(data);
                slot.maps = Some(Arc::clone(&data));
                Ok(Some(data))
            }
            Err(e) => {
                self.budget.release(self);
                Err(e)
            }
        }
    }

    /// Maps a sealed segment's files, or a parked active segment's published
    /// prefixes (`parked`).
    fn load_sealed(
        &self,
        cfg: &PartitionConfig,
        parked: Option<ParkedLens>,
    ) -> Result<SegmentData> {
        if let Some([log, index, time]) = parked {
            // The writer published these lengths and checked its indexes.
            return Ok(SegmentData {
                log: map_prefix(&self.paths.log, log)?,
                index: map_prefix(&self.paths.index, index)?,
                time: map_prefix(&self.paths.time, time)?,
            });
        }
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
        let size = match self.data.lock().maps.as_ref() {
            Some(d) => d.log.published() as u64,
            None => fs::metadata(&self.paths.log)
                .map_err(|e| Error::io("stat", &self.paths.log, e))?
                .len(),
        };
        Ok(*self.size.get_or_init(|| size))
    }

    /// The largest record timestamp of this sealed segment (its time index
    /// ends with it); `None` if it holds no record.
    pub(crate) fn max_timestamp(
        self: &Arc<Self>,
        cfg: &PartitionConfig,
    ) -> Result<Option<Timestamp>> {
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
        self.unload();
    }

    /// Marks the segment deleted and removes its files. Readers holding its maps
    /// keep valid memory (an unlinked file stays mapped until unmapped).
    pub(crate) fn delete(&self) -> Result<()> {
        self.deleted.store(true, Ordering::Release);
        self.unload();
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

/// Maps the first `len` bytes of the file at `path` read-only (the file is
/// at least that long).
fn map_prefix(path: &Path, len: usize) -> Result<Arc<SharedMap>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    if (file_len as u128) < len as u128 {
        return Err(Error::corrupt(
            path,
            file_len,
            FormatError::Truncated {
                needed: len as u64,
                available: file_len,
            },
        ));
    }
    SharedMap::read_only(&file, len).map_err(|e| Error::io("mmap", path, e))
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
