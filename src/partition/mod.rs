//! [`PartitionLog`]: one partition's log on disk, an ordered list of segments.
//!
//! Writes: one appender at a time (the `writer` lock) encodes batches straight
//! into the active segment's memory map, publishes the new end with a release
//! store and rings the waiters; fsyncs happen outside that lock (group
//! commit, see `durability`). Reads: a pointer copy of the segment list, then
//! lock-free lookups in the memory maps.

mod append;
mod compact;
mod durability;
mod flush;
mod read;
mod recovery;
mod retention;
mod sealed;
mod truncate;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::config::PartitionConfig;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::notify::Watchers;
use crate::segment::{ActiveSegment, Segment, WriterCell};
use crate::types::Offset;

pub(crate) use append::Unsynced;
pub use compact::{CompactionOutcome, CompactionSettings};
use durability::Durability;
use flush::sync_path;
pub use read::Subscription;
pub use retention::{Retention, RetentionOutcome};

/// Name of the per-partition checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "partition.checkpoint";
const CHECKPOINT_MAGIC: [u8; 4] = *b"MLDP";
/// 2: added `clean_offset`.
const CHECKPOINT_VERSION: u32 = 2;
/// Name of the lock file held while a partition is open.
const LOCK_FILE: &str = ".lock";

/// How a partition is opened: on its own, or as part of a `Log`.
#[derive(Debug, Clone, Copy)]
enum OpenMode {
    /// `PartitionLog::open`: the checkpoint's `clean` flag alone says whether
    /// the last close was clean, so the open rewrites it (`false`) durably
    /// before any append.
    Standalone,
    /// A partition of a `Log`: clean only if the log's clean-shutdown marker
    /// was present too (`log_clean`), and nothing is written at open.
    InLog { log_clean: bool },
}

/// What survives a restart besides the segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionCheckpoint {
    /// First readable offset.
    log_start: u64,
    /// Offsets below this were fsynced.
    recovery_point: u64,
    /// Written `true` only by a clean close, `false` by every other write. A
    /// standalone open writes `false` at once; a partition of a `Log` is
    /// trusted only with the log's clean-shutdown marker (`log::shutdown`).
    clean: bool,
    /// Compaction's progress: offsets below this were compacted (Kafka's
    /// cleaner offset checkpoint); the log from here on is dirty.
    clean_offset: u64,
}

/// Decodes a `partition.checkpoint` (feature `fuzzing`; see `checkpoint::fuzz_decode`).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_decode_checkpoint(
    bytes: &[u8],
    framed: bool,
) -> std::result::Result<(), crate::error::FormatError> {
    checkpoint::fuzz_decode::<PartitionCheckpoint>(
        CHECKPOINT_MAGIC,
        CHECKPOINT_VERSION,
        bytes,
        framed,
    )
    .map(|_| ())
}

/// Sizes and offsets of a partition.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Offsets below this have been compacted; the log above it is dirty.
    pub clean_offset: Offset,
    /// What the last compaction pass did, if one ran since the log opened.
    pub last_compaction: Option<CompactionOutcome>,
    /// Whether opening the log ran recovery (validated the tail written
    /// since the last recovery point) rather than trusting a clean close.
    /// `false` for a new, empty partition.
    pub recovered: bool,
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
    /// Replaced whole when the topic's config is altered; appenders load it
    /// once per call.
    config: ArcSwap<PartitionConfig>,
    /// The active segment's writer: serializes appends, rolls and truncation.
    /// Held while batches are encoded into the map and while a segment rolls
    /// (file creation and trimming); never across an fsync of appended data.
    /// Also held whenever an active segment is created or reopened, which
    /// the segment budget relies on (see `segment::budget`); the budget
    /// only ever tries it, to park an idle active segment. `None` once closed.
    writer: Arc<WriterCell>,
    /// Segments in offset order, the active one last. Write-locked only to add
    /// or remove a segment; readers hold the read lock for an `Arc` copy.
    segments: RwLock<Vec<Arc<Segment>>>,
    /// Log end offset: the offset the next record gets. Stored (release) after
    /// the bytes below it are published; loaded (acquire) by readers.
    end: AtomicU64,
    /// Log start offset: the first readable offset.
    start: AtomicU64,
    /// The active segment and its log file, so a sync needs no writer lock.
    /// Replaced on roll; held for a copy. The file is weak so that parking
    /// the segment closes it; a sync of a parked segment opens it again.
    active_file: Mutex<(Arc<Segment>, Weak<File>)>,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: AtomicBool,
    /// Whether the open ran recovery over existing segments (an unclean
    /// stop, or a clean one whose files did not match the checkpoint).
    recovered: bool,
    durability: Durability,
    /// Rolled segments waiting for their background fsync, and its reports.
    sealed: Arc<sealed::SealedSyncs>,
    watchers: Arc<Watchers>,
    /// The first write or fsync failure; once set, writes are refused.
    poison: OnceLock<Arc<Error>>,
    /// Serializes the work that removes or replaces sealed segments:
    /// retention, compaction, `delete_records_before` and truncation. Held
    /// for a whole pass (compaction reads and writes segment files under it);
    /// appends never take it. Taken before `writer` when both are needed.
    maintenance: Mutex<()>,
    /// What the last compaction pass did and when a tombstone it kept
    /// expires; written at the end of a pass.
    cleaner: Mutex<compact::CleanerState>,
    /// Serializes checkpoint writes and remembers the last one written.
    checkpoint: Mutex<PartitionCheckpoint>,
    closed: AtomicBool,
    /// Set (under the checkpoint lock) when the partition's files are about
    /// to be removed: no checkpoint is written after it.
    removed: AtomicBool,
    /// The file holding the advisory lock on `dir/.lock`; closing drops it,
    /// so the directory can be reopened while this handle still exists.
    /// `None` for a partition of a `Log`, whose directory lock covers it (a
    /// descriptor per partition would not fit the open-file limit).
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
        let dir = dir.as_ref().to_path_buf();
        config.validate()?;
        create_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        Self::open_locked(dir, config, Some(lock), OpenMode::Standalone)
    }

    /// Opens a partition of a `Log`, whose directory lock (held by the
    /// caller) keeps other processes out; no lock file of its own is held.
    ///
    /// `log_clean` says whether the log found its clean-shutdown marker:
    /// the partition's own clean checkpoint is trusted only then, and no
    /// checkpoint is written here (the removed marker is what makes a crash
    /// from now on unclean; see `log::shutdown`). A directory created here
    /// is not fsynced into the data directory: the caller does that once for
    /// all the partitions it opens (the returned `bool` says whether this
    /// one was created).
    pub(crate) fn open_in_log(
        dir: PathBuf,
        config: PartitionConfig,
        log_clean: bool,
    ) -> Result<(PartitionLog, bool)> {
        config.validate()?;
        let created = !dir.is_dir();
        if created {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        }
        let log = Self::open_locked(dir, config, None, OpenMode::InLog { log_clean })?;
        Ok((log, created))
    }

    fn open_locked(
        dir: PathBuf,
        config: PartitionConfig,
        lock: Option<File>,
        mode: OpenMode,
    ) -> Result<PartitionLog> {
        let cell: Arc<WriterCell> = Arc::new(Mutex::new(None));
        // Held while the active segment is built (the budget relies on it).
        let mut writer = cell.lock();
        let weak = Arc::downgrade(&cell);
        let ckpt_path = dir.join(CHECKPOINT_FILE);
        // A damaged checkpoint is repaired by a full recovery (it is a hint
        // about what is durable; the segments are the truth).
        let ckpt: Option<PartitionCheckpoint> =
            match checkpoint::read(&ckpt_path, CHECKPOINT_MAGIC, CHECKPOINT_VERSION) {
                Ok(c) => c,
                Err(Error::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            };
        compact::swap::finish_interrupted(&dir, config.index_interval_bytes)?;
        let bases = recovery::list_segments(&dir)?;
        let clean = ckpt.is_some_and(|c| c.clean)
            && match mode {
                OpenMode::Standalone => true,
                OpenMode::InLog { log_clean } => log_clean,
            };
        // A clean close checkpoints its end as the recovery point. A clean
        // open that finds another end (a damaged baseOffset past the last
        // index entry, which the CRC does not cover, moves it) does not trust
        // the files, and recovers instead, which cuts at the damage.
        let opened = match (clean, ckpt) {
            (true, Some(c)) => recovery::open_clean(&dir, &config, &bases, &weak)?
                .filter(|o| o.active.next_offset == Offset(c.recovery_point)),
            _ => None,
        };
        let opened = match opened {
            Some(o) => o,
            None => {
                let rp = ckpt.map_or(Offset(0), |c| Offset(c.recovery_point));
                let start_base = ckpt.map_or(Offset(0), |c| Offset(c.log_start));
                recovery::recover(&dir, &config, &bases, rp, start_base, &weak)?
            }
        };
        let end = opened.active.next_offset;
        let recovered = opened.recovered;
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
        // Finish a deletion a crash interrupted: segments wholly below the
        // checkpointed start offset go (the start was made durable first).
        let below = whole_segments_below(&segments, log_start);
        if below > 0 {
            for seg in segments.drain(..below) {
                seg.delete()?;
            }
            fsutil::sync_dir(&dir)?;
        }
        let active_file = (
            Arc::clone(&opened.active.segment),
            opened
                .active
                .log_file()
                .map_or_else(Weak::new, Arc::downgrade),
        );
        let now = config.clock.now();
        let state = PartitionCheckpoint {
            log_start: log_start.0,
            recovery_point: recovery_point.0,
            clean: false,
            clean_offset: ckpt.map_or(0, |c| c.clean_offset).clamp(log_start.0, end.0),
        };
        let state = match mode {
            // Written before any append: a crash from now on is seen as unclean.
            OpenMode::Standalone => {
                checkpoint::write(&ckpt_path, CHECKPOINT_MAGIC, CHECKPOINT_VERSION, &state)?;
                state
            }
            // The log removed its marker before opening any partition, so a
            // crash from now on is unclean whatever this file says; it is
            // rewritten only if the open moved the start or clean offset
            // (recovery cut the log below them), which must not come back.
            OpenMode::InLog { .. } => match ckpt {
                // What the file says stays what is remembered as written.
                Some(c)
                    if (c.log_start, c.clean_offset) == (state.log_start, state.clean_offset)
                        && c.recovery_point <= end.0 =>
                {
                    c
                }
                Some(_) => {
                    checkpoint::write(&ckpt_path, CHECKPOINT_MAGIC, CHECKPOINT_VERSION, &state)?;
                    state
                }
                // Nothing to keep: a crash recovers from the start again.
                None => state,
            },
        };
        *writer = Some(opened.active);
        drop(writer);
        let sealed = sealed::SealedSyncs::new(dir.clone(), recovery_point);
        Ok(PartitionLog {
            dir,
            writer: cell,
            segments: RwLock::new(segments),
            end: AtomicU64::new(end.0),
            start: AtomicU64::new(log_start.0),
            active_file: Mutex::new(active_file),
            // A segment created here is fsynced into the directory by the
            // first sync (an append under `FlushPolicy::Always`, or close).
            dir_dirty: AtomicBool::new(opened.created),
            recovered,
            durability: Durability::new(recovery_point, now),
            sealed,
            watchers: Arc::new(Watchers::default()),
            poison: OnceLock::new(),
            maintenance: Mutex::new(()),
            cleaner: Mutex::new(compact::CleanerState::default()),
            checkpoint: Mutex::new(state),
            closed: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            lock: Mutex::new(lock),
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<PartitionConfig> {
        self.config.load_full()
    }

    /// Replaces the configuration (after validating it). Appends, rolls and
    /// flushes from now on follow the new one (a smaller `segment_bytes`
    /// applies to the active segment too); sealed segments stay as they are.
    /// The clock and the open-segment bound are kept: time stays on one
    /// source, and segments already open count against the bound they took.
    pub fn set_config(&self, config: PartitionConfig) -> Result<()> {
        config.validate()?;
        let clock = Arc::clone(&self.cfg().clock);
        let open_segments = self.cfg().open_segments.clone();
        // Under the writer lock: no append runs with half of the change.
        let mut writer = self.writer.lock();
        if let Some(active) = writer.as_mut() {
            let limit = usize::try_from(config.segment_bytes).unwrap_or(usize::MAX);
            active.limit_segment_bytes(limit);
        }
        self.config.store(Arc::new(PartitionConfig {
            clock,
            open_segments,
            ..config
        }));
        Ok(())
    }

    fn cfg(&self) -> arc_swap::Guard<Arc<PartitionConfig>> {
        self.config.load()
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
            clean_offset: Offset(self.checkpoint.lock().clean_offset),
            last_compaction: self.cleaner.lock().last,
            recovered: self.recovered,
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
        // Sealing publishes and trims; the sync then covers the trimmed log
        // (still the one `active_file` names) and any segment sealed since
        // the last sync. The active segment's indexes are synced here only.
        let segment = active.seal()?;
        self.sync_now(self.durability.flushed())?;
        for path in [&segment.paths.index, &segment.paths.time] {
            sync_path(path)?;
        }
        self.write_checkpoint(|c| {
            c.recovery_point = end.0;
            c.clean = true;
        })
    }

    /// Closes the handle without flushing or checkpointing, for a partition
    /// whose files are about to be removed (its topic is being deleted).
    ///
    /// Once this returns the handle writes nothing more under its directory
    /// path, which a topic created again under the same name may soon own:
    /// a compaction or retention pass in progress finishes first (the
    /// maintenance lock), an append or roll finishes first (the writer lock),
    /// and a checkpoint write either finished or will refuse (`removed`,
    /// set under the checkpoint lock).
    pub(crate) fn close_for_removal(&self) {
        let _maintenance = self.maintenance.lock();
        {
            let _checkpoint = self.checkpoint.lock();
            self.removed.store(true, Ordering::Release);
        }
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.writer.lock() = None;
        self.watchers.notify();
        *self.lock.lock() = None;
    }

    /// Bytes of record batches in all segments.
    pub fn size_bytes(&self) -> Result<u64> {
        let active = self.writer.lock().as_ref().map_or(0, |a| a.size() as u64);
        let sealed: Vec<_> = {
            let segments = self.segments.read();
            let n = segments.len().saturating_sub(1);
            segments[..n].iter().map(Arc::clone).collect()
        };
        let mut total = active;
        for seg in sealed {
            // Sealed logs are trimmed to their data, so the file size is it.
            match fs::metadata(&seg.paths.log) {
                Ok(m) => total += m.len(),
                // Removed by retention or truncation since the list was copied.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("stat", &seg.paths.log, e)),
            }
        }
        Ok(total)
    }

    /// Reopens the active segment if the budget parked it, and points
    /// `active_file` at its file. A trim that failed while parking poisons.
    fn open_active(&self, active: &mut ActiveSegment) -> Result<()> {
        if let Some(e) = active.take_park_error() {
            return Err(self.poison_with(e));
        }
        if active.ensure_open()? {
            self.set_active_file(active);
        }
        Ok(())
    }

    fn set_active_file(&self, active: &ActiveSegment) {
        *self.active_file.lock() = (
            Arc::clone(&active.segment),
            active.log_file().map_or_else(Weak::new, Arc::downgrade),
        );
    }

    fn write_checkpoint(&self, change: impl FnOnce(&mut PartitionCheckpoint)) -> Result<()> {
        let mut c = self.checkpoint.lock();
        if self.removed.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        let mut next = *c;
        // Only a clean close writes `clean`; `c` may hold the clean
        // checkpoint a partition of a `Log` found at open.
        next.clean = false;
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
        self.crash_in_place();
        drop(self);
    }

    /// Simulates a crash for tests of a handle others share (a partition of
    /// a `Log`): marks it closed, so that dropping it closes nothing.
    #[cfg(test)]
    pub(crate) fn crash_in_place(&self) {
        self.closed.store(true, Ordering::Release);
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

/// Index of the segment that holds `offset`: the last one based at or below
/// it (the first one if `offset` is below every base).
fn segment_holding(segments: &[Arc<Segment>], offset: Offset) -> usize {
    segments
        .partition_point(|s| s.base <= offset)
        .saturating_sub(1)
}

/// How many segments at the front of `segments` hold only offsets below
/// `offset` (segment k does when segment k+1 starts at or below it). The last
/// (active) segment is never counted.
fn whole_segments_below(segments: &[Arc<Segment>], offset: Offset) -> usize {
    segments
        .windows(2)
        .take_while(|w| w[1].base <= offset)
        .count()
}

pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    fsutil::sync_dir(fsutil::parent_dir(dir))?;
    Ok(())
}

pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
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
