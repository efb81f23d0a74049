//! One segment: a `.log` file of record batches with its `.index` and `.timeindex`.
//!
//! Sealed segments are loaded lazily (mapped read-only on first use) so that
//! opening a large log touches no segment data. The active segment is written
//! through [`ActiveSegment`], the only writer of its maps.

mod index;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::PartitionConfig;
use crate::error::{Error, FormatError, Result};
use crate::fsutil;
use crate::mmap::{MapWriter, SharedMap};
use crate::record::BatchHeader;
use crate::types::{Offset, Timestamp};

pub(crate) use index::{
    IndexCursor, NewEntries, OffsetIndex, TimeEntry, TimeIndex, OFFSET_ENTRY_BYTES,
    TIME_ENTRY_BYTES,
};

/// Growth of the log file: at least 1 MiB, at most 64 MiB per `fallocate`.
const LOG_GROWTH_STEPS: (usize, usize) = (1 << 20, 64 << 20);
/// Growth of index files: at least 64 KiB, at most 1 MiB per `fallocate`.
const INDEX_GROWTH_STEPS: (usize, usize) = (64 << 10, 1 << 20);

/// File name of a segment file: the base offset as 20 digits, then `ext`.
pub(crate) fn file_name(base: Offset, ext: &str) -> String {
    format!("{:020}.{ext}", base.0)
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
    /// Set when the segment's files are removed; it can no longer be loaded.
    deleted: AtomicBool,
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
        })
    }

    fn with_data(dir: &Path, base: Offset, data: Arc<SegmentData>) -> Arc<Segment> {
        Arc::new(Segment {
            base,
            paths: SegmentPaths::new(dir, base),
            data: Mutex::new(Some(data)),
            deleted: AtomicBool::new(false),
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
        let index = map_read_only(&self.paths.index).ok();
        let time = map_read_only(&self.paths.time).ok();
        let consistent = match (&index, &time) {
            (Some(i), Some(t)) => {
                check_indexes(self.base, log_bytes, i.readable(), t.readable()).is_ok()
            }
            _ => false,
        };
        let (index, time) = match (index, time) {
            (Some(i), Some(t)) if consistent => (i, t),
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

/// Kafka-style sanity check of a segment's indexes against its log, reading
/// only the indexes and the batch header the last offset entry points at.
fn check_indexes(base: Offset, log: &[u8], index: &[u8], time: &[u8]) -> Result<(), String> {
    if !index.len().is_multiple_of(OFFSET_ENTRY_BYTES)
        || !time.len().is_multiple_of(TIME_ENTRY_BYTES)
    {
        return Err("index length is not a whole number of entries".into());
    }
    let oi = OffsetIndex::new(index);
    oi.check(log.len())?;
    if let Some(last) = oi.last() {
        let h = header_at(log, last.position as usize)
            .map_err(|e| e.to_string())?
            .ok_or("last index entry points at the end of the log")?;
        if h.last_offset() != base.0 as i64 + i64::from(last.relative_offset) {
            return Err("last index entry disagrees with the log".into());
        }
    }
    let ti = TimeIndex::new(time);
    ti.check(u32::MAX)?;
    if log.is_empty() {
        return Ok(());
    }
    // The last time entry names the batch that holds the segment's largest
    // timestamp (by its last offset): that batch must agree, and no later
    // batch may be newer (a cut-short time index would hide them). With
    // increasing timestamps the named batch is the last one, so this reads
    // one or two headers.
    let t = ti.last().ok_or("time index is empty but the log is not")?;
    let target = base.0 as i64 + i64::from(t.relative_offset);
    let mut pos = oi
        .floor(t.relative_offset)
        .map_or(0, |e| e.position as usize);
    let mut found = false;
    while let Some(h) = header_at(log, pos).map_err(|e| e.to_string())? {
        if !found && h.last_offset() >= target {
            if h.last_offset() != target || h.max_timestamp != t.timestamp.0 {
                return Err("last time entry disagrees with the log".into());
            }
            found = true;
        } else if found && h.max_timestamp > t.timestamp.0 {
            return Err("a batch after the last time entry is newer".into());
        }
        pos += h.total_size();
    }
    if !found {
        return Err("last time entry names an offset past the log".into());
    }
    Ok(())
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

fn map_read_only(path: &Path) -> Result<Arc<SharedMap>> {
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

/// Indexes rebuilt by scanning a log's batch headers.
#[derive(Debug)]
pub(crate) struct BuiltIndexes {
    pub offset_index: Vec<u8>,
    pub time_index: Vec<u8>,
    /// Bytes of the log made of whole, well-formed batch headers (CRC unchecked).
    pub valid_len: usize,
    /// Offset after the last batch, if any batch.
    pub next_offset: Option<Offset>,
    pub cursor: IndexCursor,
}

/// Scans `log` from the start, producing the entries the append path would
/// have written; stops at the first malformed header.
pub(crate) fn build_indexes(base: Offset, log: &[u8], interval: u64) -> BuiltIndexes {
    let mut cursor = IndexCursor::new(base, interval);
    let mut built = BuiltIndexes {
        offset_index: Vec::new(),
        time_index: Vec::new(),
        valid_len: 0,
        next_offset: None,
        cursor: cursor.clone(),
    };
    let mut pos = 0;
    while let Ok(Some(h)) = header_at(log, pos) {
        if check_in_segment(base, &h).is_err()
            || built
                .next_offset
                .is_some_and(|n| (h.base_offset as u64) < n.0)
        {
            break;
        }
        let entries = cursor.observe(
            pos as u32,
            h.total_size() as u64,
            Offset(h.last_offset() as u64),
            Timestamp(h.max_timestamp),
        );
        push_entries(&mut built, entries);
        pos += h.total_size();
        built.next_offset = Some(Offset(h.last_offset() as u64 + 1));
    }
    built.valid_len = pos;
    // A rebuilt segment's time index ends with its max timestamp, as a sealed one does.
    if let Some(t) = cursor.time_entry() {
        built.time_index.extend_from_slice(&t.encode());
    }
    built.cursor = cursor;
    built
}

/// Scans batch headers from `from` (an indexed batch) to the end, restoring
/// the index cursor as the append path left it; writes no entries.
fn resume_scan(
    base: Offset,
    log: &[u8],
    from: usize,
    interval: u64,
    last_time_entry: Option<TimeEntry>,
) -> BuiltIndexes {
    let mut cursor = IndexCursor::new(base, interval);
    cursor.resume(last_time_entry);
    let mut next_offset = None;
    let mut pos = from;
    while let Ok(Some(h)) = header_at(log, pos) {
        if check_in_segment(base, &h).is_err() {
            break;
        }
        // Entries for these batches were written before the shutdown (or were
        // not due); the cursor only needs their sizes and timestamps.
        cursor.observe(
            pos as u32,
            h.total_size() as u64,
            Offset(h.last_offset() as u64),
            Timestamp(h.max_timestamp),
        );
        pos += h.total_size();
        next_offset = Some(Offset(h.last_offset() as u64 + 1));
    }
    BuiltIndexes {
        offset_index: Vec::new(),
        time_index: Vec::new(),
        valid_len: pos,
        next_offset,
        cursor,
    }
}

fn push_entries(built: &mut BuiltIndexes, e: NewEntries) {
    if let Some(o) = e.offset {
        built.offset_index.extend_from_slice(&o.encode());
    }
    if let Some(t) = e.time {
        built.time_index.extend_from_slice(&t.encode());
    }
}

/// A saved writer position; see [`ActiveSegment::mark`].
#[derive(Debug, Clone)]
pub(crate) struct WriteMark {
    log: usize,
    index: usize,
    time: usize,
    cursor: IndexCursor,
    next_offset: Offset,
    first_batch_time: Option<Timestamp>,
}

/// The active segment's write side: the single writer of its three maps.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub segment: Arc<Segment>,
    log: MapWriter,
    index: MapWriter,
    time: MapWriter,
    cursor: IndexCursor,
    /// Offset the next record appended here gets.
    pub next_offset: Offset,
    /// Max timestamp of the first batch, for age-based rolls.
    pub first_batch_time: Option<Timestamp>,
    segment_bytes: usize,
}

impl ActiveSegment {
    /// Creates the files of a new, empty segment at `base`.
    pub(crate) fn create(dir: &Path, base: Offset, cfg: &PartitionConfig) -> Result<ActiveSegment> {
        let paths = SegmentPaths::new(dir, base);
        let log = open_rw(&paths.log, true)?;
        let index = open_rw(&paths.index, true)?;
        let time = open_rw(&paths.time, true)?;
        Self::from_files(
            dir,
            base,
            cfg,
            (log, index, time),
            0,
            IndexCursor::new(base, cfg.index_interval_bytes),
            None,
            base,
        )
    }

    /// Opens an existing segment for appending after `valid_len` bytes of log,
    /// truncating anything past them. With `trust_indexes` (a clean shutdown),
    /// indexes that pass the sanity check are kept and only the log after the
    /// last index entry is scanned; otherwise both are rebuilt from the log.
    pub(crate) fn reopen(
        dir: &Path,
        base: Offset,
        cfg: &PartitionConfig,
        valid_len: usize,
        trust_indexes: bool,
    ) -> Result<ActiveSegment> {
        let paths = SegmentPaths::new(dir, base);
        let log = open_rw(&paths.log, false)?;
        if file_len(&log, &paths.log)? != valid_len {
            log.set_len(valid_len as u64)
                .map_err(|e| Error::io("truncate", &paths.log, e))?;
        }
        let index = open_rw(&paths.index, true_if_missing(&paths.index))?;
        let time = open_rw(&paths.time, true_if_missing(&paths.time))?;
        let log_map =
            SharedMap::read_only(&log, valid_len).map_err(|e| Error::io("mmap", &paths.log, e))?;
        let log_bytes = log_map.readable();
        let mut kept = None;
        if trust_indexes {
            let i = SharedMap::read_only(&index, file_len(&index, &paths.index)?)
                .map_err(|e| Error::io("mmap", &paths.index, e))?;
            let t = SharedMap::read_only(&time, file_len(&time, &paths.time)?)
                .map_err(|e| Error::io("mmap", &paths.time, e))?;
            if check_indexes(base, log_bytes, i.readable(), t.readable()).is_ok() {
                let from = OffsetIndex::new(i.readable())
                    .last()
                    .map_or(0, |e| e.position as usize);
                let last_time = TimeIndex::new(t.readable()).last();
                let scan = resume_scan(base, log_bytes, from, cfg.index_interval_bytes, last_time);
                kept = Some(scan).filter(|s| s.valid_len == valid_len);
            }
        }
        let scan = match kept {
            Some(scan) => scan,
            None => {
                let scan = build_indexes(base, log_bytes, cfg.index_interval_bytes);
                for (f, bytes, path) in [
                    (&index, &scan.offset_index, &paths.index),
                    (&time, &scan.time_index, &paths.time),
                ] {
                    write_whole(f, bytes).map_err(|e| Error::io("write", path, e))?;
                }
                scan
            }
        };
        if scan.valid_len != valid_len {
            return Err(Error::corrupt(
                &paths.log,
                scan.valid_len as u64,
                FormatError::Inconsistent("batch headers end before the valid length".into()),
            ));
        }
        let first_time = header_at(log_bytes, 0)
            .map_err(|r| Error::corrupt(&paths.log, 0, r))?
            .map(|h| Timestamp(h.max_timestamp));
        let next = scan.next_offset.unwrap_or(base);
        Self::from_files(
            dir,
            base,
            cfg,
            (log, index, time),
            valid_len,
            scan.cursor,
            first_time,
            next,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_files(
        dir: &Path,
        base: Offset,
        cfg: &PartitionConfig,
        (log, index, time): (File, File, File),
        log_len: usize,
        cursor: IndexCursor,
        first_batch_time: Option<Timestamp>,
        next_offset: Offset,
    ) -> Result<ActiveSegment> {
        let paths = SegmentPaths::new(dir, base);
        let segment_bytes = cfg.segment_bytes as usize;
        let log_capacity = segment_bytes + cfg.max_record_bytes as usize;
        let index_len = file_len(&index, &paths.index)?;
        let time_len = file_len(&time, &paths.time)?;
        let index_capacity =
            whole_entries(cfg.segment_index_bytes as usize, OFFSET_ENTRY_BYTES).max(index_len);
        let time_capacity =
            whole_entries(cfg.segment_index_bytes as usize, TIME_ENTRY_BYTES).max(time_len);
        let (log_map, mut log) = SharedMap::writable(log, log_capacity.max(log_len), log_len)
            .map_err(|e| Error::io("mmap", &paths.log, e))?;
        log.prefault_growth();
        let (index_map, index) = SharedMap::writable(index, index_capacity, index_len)
            .map_err(|e| Error::io("mmap", &paths.index, e))?;
        let (time_map, time) = SharedMap::writable(time, time_capacity, time_len)
            .map_err(|e| Error::io("mmap", &paths.time, e))?;
        let data = Arc::new(SegmentData {
            log: log_map,
            index: index_map,
            time: time_map,
        });
        Ok(ActiveSegment {
            segment: Segment::with_data(dir, base, data),
            log,
            index,
            time,
            cursor,
            next_offset,
            first_batch_time,
            segment_bytes,
        })
    }

    /// Bytes of log written.
    pub(crate) fn size(&self) -> usize {
        self.log.position()
    }

    /// Whether a batch of `size` bytes ending at `last_offset` belongs in a new
    /// segment: this one is non-empty and the batch would overflow its size, its
    /// indexes, or its 32-bit relative offsets.
    pub(crate) fn is_full_for(&self, size: usize, last_offset: Offset) -> bool {
        let empty = self.log.position() == 0;
        let rel_overflow = last_offset.0 - self.segment.base.0 > u64::from(u32::MAX);
        let size_overflow = !empty && self.log.position() + size > self.segment_bytes;
        let index_full = self.index.position() + OFFSET_ENTRY_BYTES > self.index.capacity()
            || self.time.position() + 2 * TIME_ENTRY_BYTES > self.time.capacity();
        (!empty && index_full) || rel_overflow || size_overflow
    }

    /// Bytes the next batch may take: `max`, or less if the segment is not
    /// empty and has less than that left before `segment_bytes`.
    pub(crate) fn room_for_batch(&self, max: usize) -> usize {
        match self.log.position() {
            0 => max,
            used => max.min(self.segment_bytes.saturating_sub(used)),
        }
    }

    /// Reserves `size` bytes of log for the next batch; the caller fills them
    /// and then calls [`ActiveSegment::commit_batch`].
    pub(crate) fn reserve(&mut self, size: usize) -> Result<&mut [u8]> {
        let cap = self.log.capacity();
        let path = &self.segment.paths.log;
        self.log
            .reserve(size, |f, cur, need| {
                fsutil::grow_file(f, cur, need, LOG_GROWTH_STEPS, cap)
            })
            .map_err(|e| Error::io("fallocate", path, e))
    }

    /// Accounts for the batch just written into the reserved bytes: indexes it
    /// when due and moves the end. Not visible to readers until [`publish`](Self::publish).
    pub(crate) fn commit_batch(
        &mut self,
        size: usize,
        last_offset: Offset,
        max_timestamp: Timestamp,
    ) -> Result<()> {
        let position = self.log.position() as u32;
        let entries = self
            .cursor
            .observe(position, size as u64, last_offset, max_timestamp);
        self.write_entries(entries)?;
        self.log.advance(size);
        self.next_offset = Offset(last_offset.0 + 1);
        if self.first_batch_time.is_none() {
            self.first_batch_time = Some(max_timestamp);
        }
        Ok(())
    }

    fn write_entries(&mut self, e: NewEntries) -> Result<()> {
        if let Some(o) = e.offset {
            append_entry(&mut self.index, &o.encode(), &self.segment.paths.index)?;
        }
        if let Some(t) = e.time {
            append_entry(&mut self.time, &t.encode(), &self.segment.paths.time)?;
        }
        Ok(())
    }

    /// Makes every committed batch visible to readers (indexes first).
    pub(crate) fn publish(&self) {
        self.index.publish();
        self.time.publish();
        self.log.publish();
    }

    /// The log file (for fsync).
    pub(crate) fn log_file(&self) -> &Arc<File> {
        self.log.file()
    }

    /// Where the writers stand, to undo an append that fails half-way.
    pub(crate) fn mark(&self) -> WriteMark {
        WriteMark {
            log: self.log.position(),
            index: self.index.position(),
            time: self.time.position(),
            cursor: self.cursor.clone(),
            next_offset: self.next_offset,
            first_batch_time: self.first_batch_time,
        }
    }

    /// Forgets everything committed (not published) since `mark`.
    pub(crate) fn rewind(&mut self, mark: WriteMark) {
        self.log.rewind(mark.log);
        self.index.rewind(mark.index);
        self.time.rewind(mark.time);
        self.cursor = mark.cursor;
        self.next_offset = mark.next_offset;
        self.first_batch_time = mark.first_batch_time;
    }

    /// Closes the segment for writing: writes the final time-index entry and
    /// trims the preallocated tails of all three files. The maps stay readable.
    pub(crate) fn seal(mut self) -> Result<Arc<Segment>> {
        if let Some(t) = self.cursor.time_entry() {
            append_entry(&mut self.time, &t.encode(), &self.segment.paths.time)?;
        }
        let paths = self.segment.paths.clone();
        self.log
            .seal()
            .map_err(|e| Error::io("truncate", &paths.log, e))?;
        self.index
            .seal()
            .map_err(|e| Error::io("truncate", &paths.index, e))?;
        self.time
            .seal()
            .map_err(|e| Error::io("truncate", &paths.time, e))?;
        Ok(self.segment)
    }
}

fn append_entry(w: &mut MapWriter, entry: &[u8], path: &Path) -> Result<()> {
    let cap = w.capacity();
    let buf = w
        .reserve(entry.len(), |f, cur, need| {
            fsutil::grow_file(f, cur, need, INDEX_GROWTH_STEPS, cap)
        })
        .map_err(|e| Error::io("fallocate", path, e))?;
    buf.copy_from_slice(entry);
    w.advance(entry.len());
    Ok(())
}

fn true_if_missing(path: &Path) -> bool {
    !path.exists()
}

fn whole_entries(bytes: usize, entry: usize) -> usize {
    bytes - bytes % entry
}

fn open_rw(path: &Path, create_new: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if create_new {
        o.create(true).truncate(true);
    }
    o.open(path).map_err(|e| Error::io("open", path, e))
}

fn file_len(f: &File, path: &Path) -> Result<usize> {
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    Ok(len as usize)
}

fn write_whole(f: &File, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.set_len(0)?;
    f.write_all_at(bytes, 0)
}
