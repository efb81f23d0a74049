//! [`PartitionLog`]: one partition's log on disk, an ordered list of segments.
//!
//! Writes: one appender at a time (the `writer` lock) encodes batches straight
//! into the active segment's memory map, publishes the new end with a release
//! store and rings the waiters; fsyncs happen outside that lock (group
//! commit, see `durability`). Reads: a pointer copy of the segment list, then
//! lock-free lookups in the memory maps.

mod durability;
mod recovery;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::batches::Batches;
use crate::checkpoint;
use crate::config::{FlushPolicy, PartitionConfig};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::notify::{Doorbell, Watchers};
use crate::record::{self, validate_batch, Record};
use crate::segment::{ActiveSegment, Segment, TimeIndex};
use crate::types::{Offset, Timestamp};

use durability::Durability;

/// Name of the per-partition checkpoint file.
const CHECKPOINT_FILE: &str = "partition.checkpoint";
const CHECKPOINT_MAGIC: [u8; 4] = *b"MLDP";
const CHECKPOINT_VERSION: u32 = 1;
/// Name of the lock file held while a partition is open.
const LOCK_FILE: &str = ".lock";

/// What survives a restart besides the segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionCheckpoint {
    /// First readable offset.
    log_start: u64,
    /// Offsets below this were fsynced.
    recovery_point: u64,
    /// Written `true` only by a clean close, `false` as soon as the log opens.
    clean: bool,
}

/// Sizes and offsets of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    /// First readable offset.
    pub start_offset: Offset,
    /// Offset the next record gets.
    pub end_offset: Offset,
    /// Offsets below this are known durable.
    pub flushed_offset: Offset,
    /// Number of segments.
    pub segment_count: usize,
    /// Bytes of record batches in the active segment.
    pub active_segment_bytes: u64,
    /// fsyncs run since the log was opened (each may cover many appends).
    pub syncs: u64,
}

/// A subscription of a [`Doorbell`] to a partition; unsubscribes on drop.
#[derive(Debug)]
pub struct Subscription {
    watchers: Arc<Watchers>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.watchers.unsubscribe(self.id);
    }
}

/// One partition's log: append-only segment files of Kafka record batches at
/// increasing offsets, with sparse memory-mapped indexes.
///
/// `Send + Sync`: share it with an `Arc`. One appender at a time (others
/// queue on a lock held only while bytes are copied), any number of readers
/// that never wait for an appender or an fsync.
///
/// ```
/// use moldau::{Offset, PartitionConfig, PartitionLog, Record};
/// # let dir = tempfile::tempdir()?;
/// let log = PartitionLog::open(dir.path().join("events-0"), PartitionConfig::default())?;
/// let first = log.append(&[Record::new("hello"), Record::new("world")])?;
/// assert_eq!(first, Offset(0));
/// let values: Vec<_> = log
///     .read(Offset(0), 1 << 20)?
///     .records()
///     .map(|r| r.map(|r| r.value))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(values, [Some("hello".into()), Some("world".into())]);
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: PartitionConfig,
    /// The active segment's writer: serializes appends, rolls and truncation.
    /// Held while batches are encoded into the map and while a segment rolls
    /// (file creation and trimming); never across an fsync of appended data.
    /// `None` once closed.
    writer: Mutex<Option<ActiveSegment>>,
    /// Segments in offset order, the active one last. Write-locked only to add
    /// or remove a segment; readers hold the read lock for an `Arc` copy.
    segments: RwLock<Vec<Arc<Segment>>>,
    /// Log end offset: the offset the next record gets. Stored (release) after
    /// the bytes below it are published; loaded (acquire) by readers.
    end: AtomicU64,
    /// Log start offset: the first readable offset.
    start: AtomicU64,
    /// The active segment and its log file, so a sync needs no writer lock.
    /// Replaced on roll; held for an `Arc` copy.
    active_file: Mutex<(Arc<Segment>, Arc<File>)>,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: AtomicBool,
    durability: Durability,
    watchers: Arc<Watchers>,
    /// The first write or fsync failure; once set, writes are refused.
    poison: OnceLock<Arc<Error>>,
    /// Serializes checkpoint writes and remembers the last one written.
    checkpoint: Mutex<PartitionCheckpoint>,
    closed: AtomicBool,
    /// The file holding the advisory lock on `dir/.lock`; closing drops it,
    /// so the directory can be reopened while this handle still exists.
    lock: Mutex<Option<File>>,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition log in `dir`.
    ///
    /// After a clean close this reads no sealed segment data. After an unclean
    /// stop it validates every batch from the recovery point on, truncates a
    /// torn or zero-filled tail, and rebuilds the indexes it touched.
    ///
    /// Errors: [`Error::InvalidConfig`], [`Error::Locked`] if another handle has
    /// the directory open, [`Error::Io`], and [`Error::Corrupt`] where no
    /// documented repair applies.
    pub fn open(dir: impl AsRef<Path>, config: PartitionConfig) -> Result<PartitionLog> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        create_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let ckpt_path = dir.join(CHECKPOINT_FILE);
        // A damaged checkpoint is repaired by a full recovery (it is a hint
        // about what is durable; the segments are the truth).
        let ckpt: Option<PartitionCheckpoint> =
            match checkpoint::read(&ckpt_path, CHECKPOINT_MAGIC, CHECKPOINT_VERSION) {
                Ok(c) => c,
                Err(Error::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            };
        let bases = recovery::list_segments(&dir)?;
        let clean = ckpt.is_some_and(|c| c.clean);
        let opened = match clean {
            true => recovery::open_clean(&dir, &config, &bases)?,
            false => None,
        };
        let opened = match opened {
            Some(o) => o,
            None => {
                let rp = ckpt.map_or(Offset(0), |c| Offset(c.recovery_point));
                let start_base = ckpt.map_or(Offset(0), |c| Offset(c.log_start));
                recovery::recover(&dir, &config, &bases, rp, start_base)?
            }
        };
        let end = opened.active.next_offset;
        let first_base = opened
            .sealed
            .first()
            .map_or(opened.active.segment.base, |s| s.base);
        let log_start = ckpt
            .map_or(first_base, |c| Offset(c.log_start))
            .clamp(first_base, end);
        let recovery_point = match clean && opened.truncated_at.is_none() {
            true => ckpt.map_or(end, |c| Offset(c.recovery_point)).min(end),
            // Recovery validated everything and fsynced the cut.
            false => end,
        };
        let mut segments = opened.sealed;
        segments.push(Arc::clone(&opened.active.segment));
        let active_file = (
            Arc::clone(&opened.active.segment),
            Arc::clone(opened.active.log_file()),
        );
        let now = config.clock.now();
        let state = PartitionCheckpoint {
            log_start: log_start.0,
            recovery_point: recovery_point.0,
            clean: false,
        };
        // Written before any append: a crash from now on is seen as unclean.
        checkpoint::write(&ckpt_path, CHECKPOINT_MAGIC, CHECKPOINT_VERSION, &state)?;
        Ok(PartitionLog {
            dir,
            writer: Mutex::new(Some(opened.active)),
            segments: RwLock::new(segments),
            end: AtomicU64::new(end.0),
            start: AtomicU64::new(log_start.0),
            active_file: Mutex::new(active_file),
            dir_dirty: AtomicBool::new(false),
            durability: Durability::new(recovery_point, now),
            watchers: Arc::new(Watchers::default()),
            poison: OnceLock::new(),
            checkpoint: Mutex::new(state),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
            config,
        })
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &PartitionConfig {
        &self.config
    }

    /// The first readable offset (log start offset).
    pub fn start_offset(&self) -> Offset {
        Offset(self.start.load(Ordering::Acquire))
    }

    /// The offset the next appended record gets (log end offset).
    pub fn end_offset(&self) -> Offset {
        Offset(self.end.load(Ordering::Acquire))
    }

    /// Offsets below this are known to be on stable storage.
    pub fn flushed_offset(&self) -> Offset {
        self.durability.flushed()
    }

    /// Appends `records` and returns the offset of the first one. The records
    /// are readable by the time this returns, and durable if the flush policy
    /// says so. On error none of them is appended, with one exception: when
    /// the records fill a segment and a later write fails for lack of disk
    /// space, those in the filled segment stay.
    ///
    /// Records with no timestamp get the clock's current time. Records are
    /// packed into batches of at most `max_record_bytes`; a record that alone
    /// exceeds it is refused with [`Error::RecordTooLarge`]. An empty slice
    /// appends nothing and returns the end offset.
    pub fn append(&self, records: &[Record]) -> Result<Offset> {
        let now = self.config.clock.now();
        let max = self.config.max_record_bytes as usize;
        let too_large = |size: usize| Error::RecordTooLarge {
            size: size as u64,
            max: max as u64,
        };
        // A batch of `max` bytes holds at most this many records.
        let max_count = (max / MIN_RECORD_BYTES).max(1);
        self.write(|active, roll| {
            let first = active.next_offset;
            let mut rest = records;
            while let Some(head) = rest.first() {
                let last = active
                    .next_offset
                    .plus(rest.len().min(max_count) as u64 - 1);
                let ts = head.timestamp.unwrap_or(now);
                let mut due = self.needs_roll(active, 0, last, ts);
                loop {
                    if due {
                        // Past a roll nothing can be undone: make sure every
                        // remaining record fits a batch first.
                        if rest.len() < records.len() {
                            check_sizes(rest, now, max).map_err(too_large)?;
                        }
                        roll(active)?;
                    }
                    // Encode straight into the map, as many records as fit
                    // in one batch and in what the segment has left.
                    let room = active.room_for_batch(max);
                    let base = active.next_offset;
                    let buf = active.reserve(room)?;
                    match record::encode_batch_fitting(buf, base, rest, now) {
                        Ok(encoded) => {
                            let count = encoded.last_offset_delta as usize + 1;
                            let last = base.plus(count as u64 - 1);
                            active.commit_batch(encoded.size, last, encoded.max_timestamp)?;
                            rest = &rest[count..];
                            break;
                        }
                        // Fits a batch, not this segment's remainder.
                        Err(size) if size <= max && active.size() > 0 && !due => due = true,
                        Err(size) => return Err(too_large(size)),
                    }
                }
            }
            Ok(first)
        })
    }

    /// Appends one already-encoded Kafka record batch (magic 2), as a broker
    /// receives it from a producer: the header, length and CRC are validated
    /// (without decompressing), the base offset is assigned, and the bytes are
    /// stored verbatim. Returns the assigned base offset.
    pub fn append_batch(&self, batch: &[u8]) -> Result<Offset> {
        let header = validate_batch(batch).map_err(|reason| Error::InvalidBatch { reason })?;
        let max = self.config.max_record_bytes;
        if batch.len() as u64 > max {
            return Err(Error::RecordTooLarge {
                size: batch.len() as u64,
                max,
            });
        }
        let max_timestamp = Timestamp(header.max_timestamp);
        self.write(|active, roll| {
            let last = active.next_offset.plus(header.last_offset_delta as u64);
            if self.needs_roll(active, batch.len(), last, max_timestamp) {
                roll(active)?;
            }
            let base = active.next_offset;
            let last = base.plus(header.last_offset_delta as u64);
            let buf = active.reserve(batch.len())?;
            buf.copy_from_slice(batch);
            record::set_base_offset(buf, base);
            active.commit_batch(batch.len(), last, max_timestamp)?;
            Ok(base)
        })
    }

    /// Runs `fill` under the writer lock, publishes what it wrote, wakes
    /// waiters, and applies the flush policy. `fill` gets the active segment
    /// and a `roll` function that seals it and starts the next. On error, nothing
    /// `fill` wrote to the current segment becomes visible (batches already
    /// sealed into an older segment by a roll during the same call stay).
    fn write<F>(&self, fill: F) -> Result<Offset>
    where
        F: FnOnce(
            &mut ActiveSegment,
            &mut dyn FnMut(&mut ActiveSegment) -> Result<()>,
        ) -> Result<Offset>,
    {
        let (result, end, rolled) = {
            let mut guard = self.writer.lock();
            self.check_usable()?;
            let Some(active) = guard.as_mut() else {
                return Err(self.closed_error());
            };
            let mut mark = active.mark();
            let mut rolled = false;
            let mut roll = |a: &mut ActiveSegment| -> Result<()> {
                self.roll(a)?;
                mark = a.mark();
                rolled = true;
                Ok(())
            };
            let result = fill(active, &mut roll);
            if result.is_err() {
                active.rewind(mark);
            }
            active.publish();
            let end = active.next_offset;
            self.end.store(end.0, Ordering::Release);
            (result, end, rolled)
        };
        self.watchers.notify();
        let first = result?;
        self.apply_flush_policy(end, rolled)?;
        Ok(first)
    }

    /// Whether a batch of `size` bytes ending at `last`, whose largest
    /// timestamp is `ts`, must go to a new segment. Age is measured in record
    /// time, as Kafka does: the batch's timestamp against the segment's first
    /// batch's, so replaying old data does not roll on every append.
    fn needs_roll(&self, a: &ActiveSegment, size: usize, last: Offset, ts: Timestamp) -> bool {
        let aged = match (self.config.segment_ms, a.first_batch_time) {
            (Some(max_age), Some(first)) => {
                ts.0.saturating_sub(first.0)
                    >= i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX)
            }
            _ => false,
        };
        (aged && a.size() > 0) || a.is_full_for(size, last)
    }

    /// Seals the active segment and starts a new one at the end offset. The new
    /// segment's files are created first: if that fails, nothing changes.
    fn roll(&self, active: &mut ActiveSegment) -> Result<()> {
        let new = ActiveSegment::create(&self.dir, active.next_offset, &self.config)?;
        let old = std::mem::replace(active, new);
        self.dir_dirty.store(true, Ordering::Release);
        {
            let mut segments = self.segments.write();
            segments.push(Arc::clone(&active.segment));
        }
        *self.active_file.lock() = (Arc::clone(&active.segment), Arc::clone(active.log_file()));
        // Trimming a file we own fails only if the file system does; the
        // segment's durability is then unknown.
        old.seal().map_err(|e| self.poison_with(e))?;
        Ok(())
    }

    /// Forces a roll to a new segment (if the active one holds any data).
    pub fn roll_segment(&self) -> Result<()> {
        let rolled = {
            let mut guard = self.writer.lock();
            self.check_usable()?;
            let Some(active) = guard.as_mut() else {
                return Err(self.closed_error());
            };
            if active.size() == 0 {
                false
            } else {
                active.publish();
                self.roll(active)?;
                true
            }
        };
        if rolled {
            self.sync_to(self.end_offset())?;
        }
        Ok(())
    }

    fn apply_flush_policy(&self, end: Offset, rolled: bool) -> Result<()> {
        let due = match self.config.flush {
            FlushPolicy::Always => true,
            FlushPolicy::EveryRecords(n) => end.0 - self.durability.flushed().0 >= n,
            FlushPolicy::Interval(d) => self.interval_elapsed(d),
            FlushPolicy::Never => false,
        };
        if due || rolled {
            // A rolled segment is fsynced once, by the appender that rolled it
            // (outside the writer lock), which also moves the recovery point.
            self.sync_to(end)?;
        }
        Ok(())
    }

    fn interval_elapsed(&self, d: Duration) -> bool {
        let since = self.config.clock.now().0 - self.durability.last_sync().0;
        since >= i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    /// fsyncs if the flush policy is `Interval` and the interval has passed
    /// (for a maintenance thread). Returns whether it synced.
    pub fn flush_if_due(&self) -> Result<bool> {
        match self.config.flush {
            FlushPolicy::Interval(d) if self.interval_elapsed(d) => {
                self.sync_to(self.end_offset())?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Makes everything appended so far durable.
    pub fn flush(&self) -> Result<()> {
        self.check_usable()?;
        self.sync_to(self.end_offset()).map(|_| ())
    }

    fn sync_to(&self, target: Offset) -> Result<Offset> {
        let before = self.durability.flushed();
        let flushed = self.durability.sync_to(
            target,
            || self.config.clock.now(),
            || self.end_offset(),
            |from| self.sync_now(from),
        )?;
        if self.segment_base_of(flushed) > self.segment_base_of(before) {
            self.write_checkpoint(|c| c.recovery_point = c.recovery_point.max(flushed.0))?;
        }
        Ok(flushed)
    }

    /// fsyncs every segment holding offsets at or after `from`, and the
    /// directory if a segment was created; returns the end offset covered.
    fn sync_now(&self, from: Offset) -> Result<Offset> {
        self.check_poison()?;
        let covered = self.end_offset();
        let (active_segment, active_file) = self.active_file.lock().clone();
        let pending: Vec<Arc<Segment>> = {
            let segments = self.segments.read();
            let first = segments
                .partition_point(|s| s.base <= from)
                .saturating_sub(1);
            segments[first..].to_vec()
        };
        let result = (|| {
            if self.dir_dirty.swap(false, Ordering::AcqRel) {
                if let Err(e) = fsutil::sync_dir(&self.dir) {
                    self.dir_dirty.store(true, Ordering::Release);
                    return Err(e);
                }
            }
            for seg in &pending {
                if Arc::ptr_eq(seg, &active_segment) {
                    active_file
                        .sync_data()
                        .map_err(|e| Error::io("fsync", &seg.paths.log, e))?;
                } else if !seg.is_deleted() {
                    for path in [&*seg.paths.log, &seg.paths.index, &seg.paths.time] {
                        sync_path(path)?;
                    }
                }
            }
            Ok(covered)
        })();
        result.map_err(|e| self.poison_with(e))
    }

    fn segment_base_of(&self, offset: Offset) -> Offset {
        let segments = self.segments.read();
        let i = segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1);
        segments.get(i).map_or(Offset(0), |s| s.base)
    }

    /// Reads whole batches starting with the one that holds `offset`, up to
    /// `max_bytes` (but always at least one batch, however large), from one
    /// segment. Zero-copy: the result shares the segment's memory map.
    ///
    /// `offset` equal to the end offset gives an empty result; below the start
    /// offset or past the end it is [`Error::OffsetOutOfRange`].
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Result<Batches> {
        let end = self.end_offset();
        let start = self.start_offset();
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        let out_of_range = || Error::OffsetOutOfRange {
            offset,
            start: self.start_offset(),
            end: self.end_offset(),
        };
        let mut i = self.segment_index(offset);
        loop {
            let (segment, upper) = {
                let segments = self.segments.read();
                match segments.get(i) {
                    Some(s) => (Arc::clone(s), segments.get(i + 1).map(|n| n.base)),
                    // Only compaction gaps at the very end can get here.
                    None => return Ok(Batches::empty(self.any_path(), offset)),
                }
            };
            let Some(data) = segment.load(&self.config)? else {
                // Deleted under us (retention or truncation).
                return Err(out_of_range());
            };
            let Some(found) = segment.locate(&data, offset)? else {
                i += 1;
                continue;
            };
            let stop = segment.extend_run(&data, found, max_bytes, upper)?;
            let bytes = data
                .log
                .bytes(found.position, stop)
                .ok_or_else(out_of_range)?;
            return Ok(Batches::new(
                bytes,
                Arc::clone(&segment.paths.log),
                found.position as u64,
                offset,
            ));
        }
    }

    fn segment_index(&self, offset: Offset) -> usize {
        self.segments
            .read()
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1)
    }

    fn any_path(&self) -> Arc<Path> {
        Arc::clone(&self.active_file.lock().0.paths.log)
    }

    /// The first offset whose record timestamp is at or after `ts`, found
    /// through the time indexes; `None` if every record is older.
    pub fn offset_for_timestamp(&self, ts: Timestamp) -> Result<Option<Offset>> {
        let start = self.start_offset();
        let segments: Vec<Arc<Segment>> = self.segments.read().clone();
        let first = segments
            .partition_point(|s| s.base <= start)
            .saturating_sub(1);
        for segment in &segments[first..] {
            let Some(data) = segment.load(&self.config)? else {
                continue;
            };
            // A sealed segment's last time entry is its largest timestamp.
            let sealed = !Arc::ptr_eq(segment, &self.active_file.lock().0);
            if sealed
                && TimeIndex::new(data.time.readable())
                    .last()
                    .is_some_and(|e| e.timestamp < ts)
            {
                continue;
            }
            let Some(found) = segment.locate_time(&data, ts)? else {
                continue;
            };
            // From that batch on, the first record at or after the start with
            // a timestamp at or after `ts` (that batch holds one unless the
            // start offset cut it off).
            let mut next = Offset(found.header.base_offset as u64).max(start);
            while next < self.end_offset() {
                let batches = self.read(next, 1 << 20)?;
                for r in batches.records() {
                    let r = r?;
                    if r.timestamp >= ts {
                        return Ok(Some(r.offset));
                    }
                }
                next = batches.next_offset().unwrap_or_else(|| self.end_offset());
            }
            return Ok(None);
        }
        Ok(None)
    }

    /// Blocks until the end offset passes `offset` (a record at `offset`
    /// exists) or `timeout` elapses; returns whether it did. Does not spin.
    pub fn wait_for(&self, offset: Offset, timeout: Duration) -> Result<bool> {
        if self.end_offset() > offset {
            return Ok(true);
        }
        let bell = Doorbell::new();
        let _sub = self.subscribe(&bell);
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.end_offset() > offset {
                return Ok(true);
            }
            self.check_open()?;
            let remaining = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if remaining.is_zero() {
                return Ok(false);
            }
            bell.wait_timeout(remaining);
        }
    }

    /// Rings `bell` whenever the end offset moves (and when the log closes),
    /// until the returned subscription is dropped. One doorbell may watch many
    /// partitions; it can be awaited from async code ([`Doorbell::rung`]).
    pub fn subscribe(&self, bell: &Doorbell) -> Subscription {
        let id = self.watchers.subscribe(bell);
        Subscription {
            watchers: Arc::clone(&self.watchers),
            id,
        }
    }

    /// Removes every record at or after `offset`: the log end becomes the base
    /// offset of the batch holding `offset` (batches are never split), which is
    /// returned. If that is below the start offset, the start moves down to it
    /// (the log is then empty). Readers holding older results keep valid bytes: the cut
    /// segment is rewritten into a new file, not shrunk in place.
    pub fn truncate_to(&self, offset: Offset) -> Result<Offset> {
        let mut guard = self.writer.lock();
        self.check_usable()?;
        let Some(active) = guard.as_mut() else {
            return Err(self.closed_error());
        };
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset >= end {
            return Ok(end);
        }
        if offset < start {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        let segments = self.segments.read().clone();
        let i = segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1);
        let (keep, cut) = segments.split_at(i + 1);
        let target = &keep[i];
        let data =
            target
                .load(&self.config)?
                .ok_or(Error::OffsetOutOfRange { offset, start, end })?;
        let (valid_len, new_end) = match target.locate(&data, offset)? {
            Some(found) => (
                found.position,
                Offset(found.header.base_offset as u64).max(target.base),
            ),
            None => (data.log.published(), offset),
        };
        // Rewrite the kept prefix into a fresh file so mapped readers of the old
        // one are undisturbed, then reopen it as the active segment.
        let tmp = target.paths.log.with_extension("log.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = File::create(&tmp)?;
            f.write_all(&data.log.readable()[..valid_len])?;
            f.sync_all()
        };
        write().map_err(|e| self.poison_with(Error::io("write", &tmp, e)))?;
        fs::rename(&tmp, &target.paths.log)
            .map_err(|e| self.poison_with(Error::io("rename", &target.paths.log, e)))?;
        for seg in cut {
            seg.delete()?;
        }
        for path in [&target.paths.index, &target.paths.time] {
            fsutil::remove_if_exists(path)?;
        }
        fsutil::sync_dir(&self.dir)?;
        let reopened =
            ActiveSegment::reopen(&self.dir, target.base, &self.config, valid_len, false)?;
        {
            let mut list = self.segments.write();
            list.truncate(i);
            list.push(Arc::clone(&reopened.segment));
        }
        *self.active_file.lock() = (
            Arc::clone(&reopened.segment),
            Arc::clone(reopened.log_file()),
        );
        *active = reopened;
        debug_assert_eq!(active.next_offset, new_end);
        let new_end = active.next_offset;
        self.end.store(new_end.0, Ordering::Release);
        // A cut inside the batch holding the start offset empties the log.
        let start = self
            .start
            .fetch_min(new_end.0, Ordering::AcqRel)
            .min(new_end.0);
        self.durability.truncated_to(new_end);
        drop(guard);
        self.write_checkpoint(|c| {
            c.recovery_point = c.recovery_point.min(new_end.0);
            c.log_start = start;
        })?;
        self.watchers.notify();
        Ok(new_end)
    }

    /// Moves the log start offset forward to `offset` (records below it are no
    /// longer readable) and deletes the segments that lie wholly below it. The
    /// new start is checkpointed before any file is removed. The active segment
    /// is never deleted. Returns the number of segments deleted.
    pub fn delete_records_before(&self, offset: Offset) -> Result<usize> {
        let guard = self.writer.lock();
        self.check_usable()?;
        if guard.is_none() {
            return Err(self.closed_error());
        }
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        if offset <= start {
            return Ok(0);
        }
        self.write_checkpoint(|c| c.log_start = offset.0)?;
        self.start.store(offset.0, Ordering::Release);
        let doomed: Vec<Arc<Segment>> = {
            let mut list = self.segments.write();
            // Segment k lies wholly below `offset` when segment k+1 starts at or below it.
            let n = list.windows(2).take_while(|w| w[1].base <= offset).count();
            list.drain(..n).collect()
        };
        drop(guard);
        for seg in &doomed {
            seg.delete()?;
        }
        if !doomed.is_empty() {
            fsutil::sync_dir(&self.dir)?;
        }
        Ok(doomed.len())
    }

    /// Offsets, sizes and segment count.
    pub fn stats(&self) -> PartitionStats {
        let active_segment_bytes = self.writer.lock().as_ref().map_or(0, |a| a.size() as u64);
        PartitionStats {
            start_offset: self.start_offset(),
            end_offset: self.end_offset(),
            flushed_offset: self.flushed_offset(),
            segment_count: self.segments.read().len(),
            active_segment_bytes,
            syncs: self.durability.syncs(),
        }
    }

    /// Flushes everything, trims the active segment's preallocated space, and
    /// writes the clean-shutdown checkpoint, so the next open skips recovery.
    /// Later calls on this handle return [`Error::Closed`]. Dropping the log
    /// closes it too, but only `close` reports errors.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.close_inner();
        // Waiters wake up and find the log closed.
        self.watchers.notify();
        *self.lock.lock() = None;
        result
    }

    fn close_inner(&self) -> Result<()> {
        let mut guard = self.writer.lock();
        let Some(active) = guard.take() else {
            return Ok(());
        };
        if let Some(cause) = self.poison.get() {
            return Err(self.poisoned(cause));
        }
        let end = active.next_offset;
        active.publish();
        let file = Arc::clone(active.log_file());
        let segment = active.seal()?;
        file.sync_all()
            .map_err(|e| Error::io("fsync", &segment.paths.log, e))?;
        for path in [&segment.paths.index, &segment.paths.time] {
            sync_path(path)?;
        }
        // Sealed segments not yet covered by a sync.
        self.sync_now(self.durability.flushed())?;
        self.write_checkpoint(|c| {
            c.recovery_point = end.0;
            c.clean = true;
        })
    }

    fn write_checkpoint(&self, change: impl FnOnce(&mut PartitionCheckpoint)) -> Result<()> {
        let mut c = self.checkpoint.lock();
        let mut next = *c;
        change(&mut next);
        if next != *c {
            checkpoint::write(
                &self.dir.join(CHECKPOINT_FILE),
                CHECKPOINT_MAGIC,
                CHECKPOINT_VERSION,
                &next,
            )?;
            *c = next;
        }
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        self.check_open()?;
        self.check_poison()
    }

    fn check_poison(&self) -> Result<()> {
        match self.poison.get() {
            Some(cause) => Err(self.poisoned(cause)),
            None => Ok(()),
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed {
            path: self.dir.clone(),
        }
    }

    fn poisoned(&self, cause: &Arc<Error>) -> Error {
        Error::Poisoned {
            path: self.dir.clone(),
            cause: Arc::clone(cause),
        }
    }

    /// Records `e` as the partition's first failure (if it is the first) and
    /// returns it. Every later write is refused.
    fn poison_with(&self, e: Error) -> Error {
        let first = self.poison.get_or_init(|| Arc::new(e));
        self.poisoned(first)
    }

    /// Simulates a crash for tests: drops the handle without the clean close.
    #[cfg(test)]
    pub(crate) fn crash(self) {
        self.closed.store(true, Ordering::Release);
        drop(self);
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        // Errors here have no caller to go to; `close` reports them.
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.close();
        }
    }
}

/// The fewest bytes a record takes: length, attributes, timestamp delta,
/// offset delta, key length, value length and header count, one byte each.
const MIN_RECORD_BYTES: usize = 7;

/// Checks that every record fits a batch of `max` bytes; `Err` carries the
/// size of the first one that does not.
fn check_sizes(mut records: &[Record], now: Timestamp, max: usize) -> Result<(), usize> {
    while !records.is_empty() {
        records = &records[record::plan_batch(records, now, max)?.count..];
    }
    Ok(())
}

fn sync_path(path: &Path) -> Result<()> {
    match File::open(path) {
        Ok(f) => f.sync_all().map_err(|e| Error::io("fsync", path, e)),
        // Removed meanwhile (retention or truncation): nothing left to sync.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    if let Some(parent) = dir.parent() {
        fsutil::sync_dir(parent)?;
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

#[cfg(test)]
mod tests;
