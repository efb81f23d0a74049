//! The active segment's write side: the single writer of its three maps.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::{Arc, Weak};

use super::build::{build_indexes, check_indexes, resume_scan};
use super::{
    header_at, IndexCursor, NewEntries, OffsetIndex, ParkedLens, Segment, SegmentData,
    SegmentPaths, TimeIndex, WriterCell,
};
use super::{OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};
use crate::config::PartitionConfig;
use crate::error::{Error, FormatError, Result};
use crate::fsutil;
use crate::mmap::{MapWriter, SharedMap};
use crate::types::{Offset, Timestamp};

/// Growth of the log file: from 64 KiB, doubling, at most 64 MiB per
/// `fallocate`. Small first steps keep a partition with a few records from
/// reserving a megabyte (10,000 such partitions would hold 10 GiB).
const LOG_GROWTH_STEPS: (usize, usize) = (64 << 10, 64 << 20);
/// A parked segment keeps a preallocated tail up to this long (trimmed when
/// it is sealed); a longer one is trimmed when it parks.
const PARK_TRIM_BYTES: usize = 1 << 20;
/// Batches at least this large are written to the log file with one
/// positioned write (`pwrite`) of a scratch buffer rather than encoded into
/// the map: a fresh page written whole through `pwrite` is not zero-filled
/// first, as its first touch through the map is. Smaller batches go into
/// the map, with no system call. Chosen by measurement (BENCHMARKS.md,
/// "Throughput against peers").
pub(crate) const DIRECT_WRITE_BYTES: usize = 128 << 10;
/// A scratch buffer larger than this is freed after use rather than kept
/// for the thread's next large batch.
const SCRATCH_KEEP_BYTES: usize = 8 << 20;

thread_local! {
    /// Where large batches are encoded before their positioned write; one
    /// per appending thread (not per partition, which would cost a batch's
    /// worth of memory for each of thousands of partitions).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Growth of index files: from 4 KiB, doubling, at most 1 MiB per `fallocate`.
const INDEX_GROWTH_STEPS: (usize, usize) = (4 << 10, 1 << 20);

/// A saved writer position; see [`ActiveSegment::mark`].
#[derive(Debug, Clone)]
pub(crate) struct WriteMark {
    lens: ParkedLens,
    cursor: IndexCursor,
    next_offset: Offset,
    first_batch_time: Option<Timestamp>,
}

/// The writers of an open active segment: its three files and maps.
#[derive(Debug)]
struct Writers {
    log: MapWriter,
    index: MapWriter,
    time: MapWriter,
}

impl Writers {
    fn positions(&self) -> ParkedLens {
        [
            self.log.position(),
            self.index.position(),
            self.time.position(),
        ]
    }
}

/// The active segment's write side: the single writer of its three maps.
///
/// Open (files and writable maps held, counted in the segment's
/// [`OpenSegments`](super::OpenSegments)) or parked (nothing held; the files
/// are trimmed to what was written). The budget parks an idle one to make
/// room; [`ensure_open`](Self::ensure_open) reopens it.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub segment: Arc<Segment>,
    /// `None` while parked.
    open: Option<Writers>,
    /// Bytes written to each file while parked (log, index, time).
    parked: ParkedLens,
    /// Map sizes: log, offset index, time index.
    capacities: [usize; 3],
    cursor: IndexCursor,
    /// Offset the next record appended here gets.
    pub next_offset: Offset,
    /// Max timestamp of the first batch, for age-based rolls.
    pub first_batch_time: Option<Timestamp>,
    segment_bytes: usize,
    /// The partition's writer lock, through which the budget parks this.
    cell: Weak<WriterCell>,
    /// A trim that failed while parking, reported by the next write.
    park_error: Option<Error>,
}

impl ActiveSegment {
    /// Creates the files of a new, empty segment at `base`. `cell` is the
    /// partition's writer lock, which will hold it.
    pub(crate) fn create(
        dir: &Path,
        base: Offset,
        cfg: &PartitionConfig,
        cell: &Weak<WriterCell>,
    ) -> Result<ActiveSegment> {
        let segment = Segment::unloaded(dir, base, &cfg.open_segments);
        let paths = segment.paths.clone();
        let capacities = capacities(cfg, 0, 0);
        let open = segment.open_writer(cell, || {
            let log = open_rw(&paths.log, Open::Fresh)?;
            let index = open_rw(&paths.index, Open::Fresh)?;
            let time = open_rw(&paths.time, Open::Fresh)?;
            map_writers(&paths, (log, index, time), capacities, [0; 3])
        })?;
        Ok(ActiveSegment {
            segment,
            open: Some(open),
            parked: [0; 3],
            capacities,
            cursor: IndexCursor::new(base, cfg.index_interval_bytes),
            next_offset: base,
            first_batch_time: None,
            segment_bytes: cfg.segment_bytes as usize,
            cell: cell.clone(),
            park_error: None,
        })
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
        cell: &Weak<WriterCell>,
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
        drop(log_map);
        let lens = [
            valid_len,
            file_len(&index, &paths.index)?,
            file_len(&time, &paths.time)?,
        ];
        let capacities = capacities(cfg, lens[1], lens[2]);
        let segment = Segment::unloaded(dir, base, &cfg.open_segments);
        let open = segment.open_writer(cell, || {
            map_writers(&paths, (log, index, time), capacities, lens)
        })?;
        Ok(ActiveSegment {
            segment,
            open: Some(open),
            parked: lens,
            capacities,
            cursor: scan.cursor,
            next_offset: next,
            first_batch_time: first_time,
            segment_bytes: cfg.segment_bytes as usize,
            cell: cell.clone(),
            park_error: None,
        })
    }

    /// A trim that failed while the segment was parked, once.
    pub(crate) fn take_park_error(&mut self) -> Option<Error> {
        self.park_error.take()
    }

    /// Whether the files are open (not parked).
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Reopens a parked segment's files and maps (taking a slot of the
    /// budget, which may park another); returns whether it did. Called with
    /// the partition's writer lock held.
    pub(crate) fn ensure_open(&mut self) -> Result<bool> {
        if self.open.is_some() {
            self.segment.touch();
            return Ok(false);
        }
        let paths = self.segment.paths.clone();
        let (capacities, lens) = (self.capacities, self.parked);
        let open = self.segment.open_writer(&self.cell, || {
            let log = open_rw(&paths.log, Open::Existing)?;
            let index = open_rw(&paths.index, Open::Existing)?;
            let time = open_rw(&paths.time, Open::Existing)?;
            map_writers(&paths, (log, index, time), capacities, lens)
        })?;
        self.open = Some(open);
        Ok(true)
    }

    /// Parks the segment for the budget (which holds its lock and this
    /// writer's): records the published lengths for readers, drops the maps,
    /// trims the preallocated tails and closes the files. `false` (nothing
    /// changed) if a reader holds the segment's data lock right now.
    pub(super) fn park(&mut self) -> bool {
        let Some(w) = self.open.as_ref() else {
            return false;
        };
        // Every write was published (the writer lock is only released after
        // `publish`), so the positions are the published lengths.
        let lens = w.positions();
        if !self.segment.park_for_eviction(lens) {
            return false;
        }
        if let Err(e) = self.close_writers(lens) {
            // Readers map only the published lengths, so a longer file is
            // harmless to them; the writer reports it.
            self.park_error.get_or_insert(e);
        }
        true
    }

    /// Parks the segment on the writer's own account, before it is replaced
    /// (a roll, a truncation): publishes what was committed, gives up the
    /// slot, trims and closes the files. A roll parks first so that creating
    /// the next segment never waits for a slot while holding one.
    pub(crate) fn park_now(&mut self) -> Result<()> {
        self.publish();
        let Some(w) = self.open.as_ref() else {
            return Ok(());
        };
        let lens = w.positions();
        self.segment.park_and_release(lens);
        self.close_writers(lens)
    }

    /// Drops the writers (publishing what was written). A preallocated tail
    /// longer than [`PARK_TRIM_BYTES`] is trimmed; a shorter one is left for
    /// the seal, since trimming frees blocks, which costs a journal commit
    /// (and a discard on a file system mounted with `discard`): with many
    /// small partitions that made every eviction cost milliseconds.
    fn close_writers(&mut self, lens: ParkedLens) -> Result<()> {
        self.parked = lens;
        let Some(w) = self.open.take() else {
            return Ok(());
        };
        let paths = &self.segment.paths;
        let mut first = None;
        for (writer, path) in [
            (w.log, &*paths.log),
            (w.index, &paths.index),
            (w.time, &paths.time),
        ] {
            writer.publish();
            if writer.allocated() - writer.position() > PARK_TRIM_BYTES {
                if let Err(e) = writer.seal() {
                    first.get_or_insert(Error::io("truncate", path, e));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    // Writing needs the files open: the partition calls `ensure_open` under
    // its writer lock before any write, so these errors mean a missed call.
    fn w(&self) -> Result<&Writers> {
        self.open
            .as_ref()
            .ok_or_else(|| parked_error(&self.segment.paths.log))
    }

    fn w_mut(&mut self) -> Result<&mut Writers> {
        match self.open.as_mut() {
            Some(w) => Ok(w),
            None => Err(parked_error(&self.segment.paths.log)),
        }
    }

    fn positions(&self) -> ParkedLens {
        self.open.as_ref().map_or(self.parked, Writers::positions)
    }

    /// The largest timestamp of the records in this segment.
    pub(crate) fn max_timestamp(&self) -> Option<Timestamp> {
        self.cursor.max_timestamp()
    }

    /// Bytes of log written.
    pub(crate) fn size(&self) -> usize {
        self.positions()[0]
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
        let [log, index, time] = self.positions();
        let [_, index_cap, time_cap] = self.capacities;
        let empty = log == 0;
        let rel_overflow = last_offset.0 - self.segment.base.0 > u64::from(u32::MAX);
        let size_overflow = !empty && log + size > self.segment_bytes;
        let index_full =
            index + OFFSET_ENTRY_BYTES > index_cap || time + 2 * TIME_ENTRY_BYTES > time_cap;
        (!empty && index_full) || rel_overflow || size_overflow
    }

    /// Bytes the next batch may take: `max`, or less if the segment is not
    /// empty and has less than that left before `segment_bytes`.
    pub(crate) fn room_for_batch(&self, max: usize) -> usize {
        match self.size() {
            0 => max,
            used => max.min(self.segment_bytes.saturating_sub(used)),
        }
    }

    /// Whether `size` bytes of log past the end are already allocated (false
    /// for a parked segment).
    pub(crate) fn has_room(&self, size: usize) -> bool {
        self.w().is_ok_and(|w| w.log.has_room(size))
    }

    /// Makes sure `size` bytes of log past the end are allocated (the
    /// disk-full error surfaces here).
    pub(crate) fn ensure(&mut self, size: usize) -> Result<()> {
        let path = Arc::clone(&self.segment.paths.log);
        let w = self.w_mut()?;
        let cap = w.log.capacity();
        w.log
            .ensure(size, |f, cur, need, exact| {
                fsutil::grow_file(f, cur, need, exact, LOG_GROWTH_STEPS, cap)
            })
            .map_err(|e| Error::io("fallocate", &path, e))
    }

    /// The `size` bytes past the end, which [`ensure`](Self::ensure) has
    /// already allocated.
    pub(crate) fn reserved(&mut self, size: usize) -> Result<&mut [u8]> {
        let path = Arc::clone(&self.segment.paths.log);
        self.w_mut()?
            .log
            .slice(size)
            .map_err(|e| Error::io("fallocate", &path, e))
    }

    /// Encodes a batch with `encode` into a scratch buffer of `room` bytes
    /// and writes the `size` bytes it reports (with its result `T`) to the
    /// log with one positioned write, at the end; the caller then calls
    /// [`commit_batch`](Self::commit_batch). For batches of
    /// [`DIRECT_WRITE_BYTES`] or more. An `Err` from `encode` is returned
    /// inside `Ok`, with nothing written. [`ensure`](Self::ensure) must have
    /// allocated `room` bytes: an `Err` here is a failed write (the caller
    /// poisons the partition), never a full disk.
    pub(crate) fn write_encoded<T, E>(
        &mut self,
        room: usize,
        encode: impl FnOnce(&mut [u8]) -> std::result::Result<(usize, T), E>,
    ) -> Result<std::result::Result<T, E>> {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            if scratch.len() < room {
                scratch.resize(room, 0);
            }
            let result = match encode(&mut scratch[..room]) {
                Ok((size, encoded)) => self.write_parts(&[&scratch[..size]]).map(|()| Ok(encoded)),
                Err(e) => Ok(Err(e)),
            };
            if scratch.len() > SCRATCH_KEEP_BYTES {
                *scratch = Vec::new();
            }
            result
        })
    }

    /// Writes `parts` (one batch, in pieces) past the end of the log with
    /// one positioned write; the caller then calls
    /// [`commit_batch`](Self::commit_batch). [`ensure`](Self::ensure) must
    /// have allocated the bytes (see [`write_encoded`](Self::write_encoded)).
    pub(crate) fn write_parts(&mut self, parts: &[&[u8]]) -> Result<()> {
        let path = Arc::clone(&self.segment.paths.log);
        self.w_mut()?
            .log
            .write_direct(parts)
            .map_err(|e| Error::io("write", &path, e))
    }

    /// Replaces the log file the positioned writes go to (tests).
    #[cfg(test)]
    pub(crate) fn swap_log_file(&mut self, file: Arc<File>) -> Result<Arc<File>> {
        Ok(self.w_mut()?.log.swap_file(file))
    }

    /// Accounts for the batch just written into the reserved bytes: indexes it
    /// when due and moves the end. Not visible to readers until [`publish`](Self::publish).
    pub(crate) fn commit_batch(
        &mut self,
        size: usize,
        last_offset: Offset,
        max_timestamp: Timestamp,
    ) -> Result<()> {
        let position = self.w()?.log.position() as u32;
        let entries = self
            .cursor
            .observe(position, size as u64, last_offset, max_timestamp);
        self.write_entries(entries)?;
        self.w_mut()?.log.advance(size);
        self.next_offset = Offset(last_offset.0 + 1);
        if self.first_batch_time.is_none() {
            self.first_batch_time = Some(max_timestamp);
        }
        Ok(())
    }

    fn write_entries(&mut self, e: NewEntries) -> Result<()> {
        let paths = self.segment.paths.clone();
        let w = self.w_mut()?;
        if let Some(o) = e.offset {
            append_entry(&mut w.index, &o.encode(), &paths.index)?;
        }
        if let Some(t) = e.time {
            append_entry(&mut w.time, &t.encode(), &paths.time)?;
        }
        Ok(())
    }

    /// Makes every committed batch visible to readers (indexes first).
    pub(crate) fn publish(&self) {
        if let Some(w) = self.open.as_ref() {
            w.index.publish();
            w.time.publish();
            w.log.publish();
        }
    }

    /// The log file (for fsync), while open.
    pub(crate) fn log_file(&self) -> Option<&Arc<File>> {
        self.open.as_ref().map(|w| w.log.file())
    }

    /// Where the writers stand, to undo an append that fails half-way.
    pub(crate) fn mark(&self) -> WriteMark {
        WriteMark {
            lens: self.positions(),
            cursor: self.cursor.clone(),
            next_offset: self.next_offset,
            first_batch_time: self.first_batch_time,
        }
    }

    /// Forgets everything committed (not published) since `mark`.
    pub(crate) fn rewind(&mut self, mark: WriteMark) {
        if let Some(w) = self.open.as_mut() {
            w.log.rewind(mark.lens[0]);
            w.index.rewind(mark.lens[1]);
            w.time.rewind(mark.lens[2]);
        }
        self.cursor = mark.cursor;
        self.next_offset = mark.next_offset;
        self.first_batch_time = mark.first_batch_time;
    }

    /// Closes the segment for writing: writes the final time-index entry and
    /// trims the preallocated tails of all three files. The maps stay readable.
    /// A parked segment (already trimmed) gets its final entry written to
    /// the file, and is loaded afresh by its next reader.
    pub(crate) fn seal(mut self) -> Result<Arc<Segment>> {
        if let Some(e) = self.park_error.take() {
            return Err(e);
        }
        let paths = self.segment.paths.clone();
        let Some(mut w) = self.open.take() else {
            // Parked: write the final time entry and trim what parking left.
            let [log_len, index_len, mut time_len] = self.parked;
            if let Some(t) = self.cursor.time_entry() {
                use std::os::unix::fs::FileExt;
                let f = open_rw(&paths.time, Open::Existing)?;
                f.write_all_at(&t.encode(), time_len as u64)
                    .map_err(|e| Error::io("write", &paths.time, e))?;
                time_len += TIME_ENTRY_BYTES;
            }
            for (path, len) in [
                (&*paths.log, log_len),
                (&paths.index, index_len),
                (&paths.time, time_len),
            ] {
                let f = open_rw(path, Open::Existing)?;
                if file_len(&f, path)? != len {
                    f.set_len(len as u64)
                        .map_err(|e| Error::io("truncate", path, e))?;
                }
            }
            self.segment.reset_after_seal();
            return Ok(self.segment);
        };
        if let Some(t) = self.cursor.time_entry() {
            append_entry(&mut w.time, &t.encode(), &paths.time)?;
        }
        w.log
            .seal()
            .map_err(|e| Error::io("truncate", &paths.log, e))?;
        w.index
            .seal()
            .map_err(|e| Error::io("truncate", &paths.index, e))?;
        w.time
            .seal()
            .map_err(|e| Error::io("truncate", &paths.time, e))?;
        Ok(self.segment)
    }
}

/// Map sizes of an active segment: log, offset index and time index (at
/// least what the index files already hold).
fn capacities(cfg: &PartitionConfig, index_len: usize, time_len: usize) -> [usize; 3] {
    let log = cfg.segment_bytes as usize + cfg.max_record_bytes as usize;
    let index = whole_entries(cfg.segment_index_bytes as usize, OFFSET_ENTRY_BYTES).max(index_len);
    let time = whole_entries(cfg.segment_index_bytes as usize, TIME_ENTRY_BYTES).max(time_len);
    [log, index, time]
}

/// Maps the three files for writing, `lens` bytes of each already written.
fn map_writers(
    paths: &SegmentPaths,
    (log, index, time): (File, File, File),
    [log_cap, index_cap, time_cap]: [usize; 3],
    [log_len, index_len, time_len]: ParkedLens,
) -> Result<(Writers, Arc<SegmentData>)> {
    let (log_map, mut log) = SharedMap::writable(log, log_cap.max(log_len), log_len)
        .map_err(|e| Error::io("mmap", &paths.log, e))?;
    log.prefault_growth();
    let (index_map, index) = SharedMap::writable(index, index_cap, index_len)
        .map_err(|e| Error::io("mmap", &paths.index, e))?;
    let (time_map, time) = SharedMap::writable(time, time_cap, time_len)
        .map_err(|e| Error::io("mmap", &paths.time, e))?;
    let data = Arc::new(SegmentData {
        log: log_map,
        index: index_map,
        time: time_map,
    });
    Ok((Writers { log, index, time }, data))
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

fn parked_error(path: &Path) -> Error {
    Error::io(
        "write",
        path,
        std::io::Error::other("the active segment is parked (not reopened)"),
    )
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
