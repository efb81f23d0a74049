//! The active segment's write side: the single writer of its three maps.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use super::build::{build_indexes, check_indexes, resume_scan};
use super::{
    header_at, IndexCursor, NewEntries, OffsetIndex, Segment, SegmentData, SegmentPaths, TimeIndex,
};
use super::{OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};
use crate::config::PartitionConfig;
use crate::error::{Error, FormatError, Result};
use crate::fsutil;
use crate::mmap::{MapWriter, SharedMap};
use crate::types::{Offset, Timestamp};

/// Growth of the log file: at least 1 MiB, at most 64 MiB per `fallocate`.
const LOG_GROWTH_STEPS: (usize, usize) = (1 << 20, 64 << 20);
/// Growth of index files: at least 64 KiB, at most 1 MiB per `fallocate`.
const INDEX_GROWTH_STEPS: (usize, usize) = (64 << 10, 1 << 20);

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
        let log = open_rw(&paths.log, Open::Fresh)?;
        let index = open_rw(&paths.index, Open::Fresh)?;
        let time = open_rw(&paths.time, Open::Fresh)?;
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
        let log = open_rw(&paths.log, Open::Existing)?;
        if file_len(&log, &paths.log)? != valid_len {
            log.set_len(valid_len as u64)
                .map_err(|e| Error::io("truncate", &paths.log, e))?;
        }
        // Indexes are derived data: a missing one is created and rebuilt.
        let index = open_rw(&paths.index, Open::OrCreate)?;
        let time = open_rw(&paths.time, Open::OrCreate)?;
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
    /// The largest timestamp of the records in this segment.
    pub(crate) fn max_timestamp(&self) -> Option<Timestamp> {
        self.cursor.max_timestamp()
    }

    pub(crate) fn size(&self) -> usize {
        self.log.position()
    }

    /// Lowers the size at which this segment rolls (a topic's
    /// `segment_bytes` was altered). Never raised: the map was sized for the
    /// limit it was created with.
    pub(crate) fn limit_segment_bytes(&mut self, segment_bytes: usize) {
        self.segment_bytes = self.segment_bytes.min(segment_bytes);
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

    /// Makes sure `size` bytes of log past the end are allocated (the
    /// disk-full error surfaces here).
    pub(crate) fn ensure(&mut self, size: usize) -> Result<()> {
        let cap = self.log.capacity();
        let path = &self.segment.paths.log;
        self.log
            .ensure(size, |f, cur, need, exact| {
                fsutil::grow_file(f, cur, need, exact, LOG_GROWTH_STEPS, cap)
            })
            .map_err(|e| Error::io("fallocate", path, e))
    }

    /// Reserves `size` bytes of log for the next batch; the caller fills them
    /// and then calls [`ActiveSegment::commit_batch`].
    pub(crate) fn reserve(&mut self, size: usize) -> Result<&mut [u8]> {
        self.ensure(size)?;
        self.reserved(size)
    }

    /// The `size` bytes past the end, which [`ensure`](Self::ensure) has
    /// already allocated.
    pub(crate) fn reserved(&mut self, size: usize) -> Result<&mut [u8]> {
        let path = &self.segment.paths.log;
        self.log
            .slice(size)
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
    w.ensure(entry.len(), |f, cur, need, exact| {
        fsutil::grow_file(f, cur, need, exact, INDEX_GROWTH_STEPS, cap)
    })
    .map_err(|e| Error::io("fallocate", path, e))?;
    let buf = w
        .slice(entry.len())
        .map_err(|e| Error::io("fallocate", path, e))?;
    buf.copy_from_slice(entry);
    w.advance(entry.len());
    Ok(())
}

fn whole_entries(bytes: usize, entry: usize) -> usize {
    bytes - bytes % entry
}

/// How [`open_rw`] treats the file.
#[derive(Clone, Copy)]
enum Open {
    /// It must exist.
    Existing,
    /// Created if missing, kept if present.
    OrCreate,
    /// Created, or emptied if present.
    Fresh,
}

fn open_rw(path: &Path, how: Open) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    match how {
        Open::Existing => {}
        Open::OrCreate => {
            o.create(true).truncate(false);
        }
        Open::Fresh => {
            o.create(true).truncate(true);
        }
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
