//! Flush policies and the syncs behind them (group commit is in `durability`).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::sealed::Taken;
use super::PartitionLog;
use crate::config::FlushPolicy;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::segment::Segment;
use crate::types::Offset;

impl PartitionLog {
    /// Applies the flush policy to an append that ended at `end`, which
    /// [`PartitionLog::flush_due`] found `due` (as the policy stood then).
    pub(super) fn apply_flush_policy(&self, end: Offset, due: bool) -> Result<()> {
        if due {
            self.sync_appended(end)?;
        }
        Ok(())
    }

    /// Whether an append that ended at `end` must fsync before it returns.
    /// A segment the append rolled is fsynced in the background (see
    /// `sealed`) unless this says so; the foreground sync then covers it.
    pub(super) fn flush_due(&self, end: Offset) -> bool {
        match self.cfg().flush {
            FlushPolicy::Always => true,
            // Another appender's sync may already have covered past `end`.
            FlushPolicy::EveryRecords(n) => end.0.saturating_sub(self.durability.flushed().0) >= n,
            FlushPolicy::Interval(d) => self.interval_elapsed(d),
            FlushPolicy::Never => false,
        }
    }

    /// Queues the segments sealed by rolls (the last one ending at `end`)
    /// for the background fsync, with any older one not yet durable or
    /// queued. Called under the writer lock, so jobs queue in offset order.
    pub(super) fn queue_sealed_sync(&self, end: Offset) {
        let from = self.sealed.queued_through(self.durability.flushed());
        let segments: Vec<Arc<Segment>> = {
            let segments = self.segments.read();
            let sealed = segments.len().saturating_sub(1);
            let first = super::segment_holding(&segments, from).min(sealed);
            segments[first..sealed].to_vec()
        };
        self.sealed.queue(segments, end);
    }

    /// Takes what the background fsyncs of rolled segments reported: a
    /// failure poisons the partition (as a failed foreground fsync does); a
    /// success moves the flushed offset and the recovery point to the end of
    /// the segment synced, unless the segment has been truncated or replaced
    /// since (checked under the checkpoint lock, which a truncation takes
    /// after changing the segment list, so it lowers the point after this).
    pub(super) fn take_sealed_syncs(&self) -> Result<()> {
        let synced = match self.sealed.take() {
            Taken::Nothing => return Ok(()),
            Taken::Failed(e) => return Err(self.poison_with(e)),
            Taken::Synced(synced) => synced,
        };
        self.write_checkpoint(|c| {
            // Held while the flushed offset moves, so a truncation cannot
            // change the list (and lower the offset) in between.
            let segments = self.segments.read();
            let still_sealed = |seg: &Arc<Segment>, end: Offset| {
                let i = segments.iter().position(|s| Arc::ptr_eq(s, seg));
                !seg.is_deleted()
                    && i.and_then(|i| segments.get(i + 1))
                        .is_some_and(|next| next.base == end && !next.is_deleted())
            };
            let end = synced
                .iter()
                .filter(|(seg, end)| still_sealed(seg, *end))
                .map(|(_, end)| *end)
                .max();
            if let Some(end) = end {
                self.durability.advance_to(end);
                c.recovery_point = c.recovery_point.max(end.0);
            }
        })
    }

    pub(super) fn interval_elapsed(&self, d: Duration) -> bool {
        let since = self.cfg().clock.now().0 - self.durability.last_sync().0;
        since >= i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    /// fsyncs if the flush policy is `Interval` and the interval has passed
    /// (for a maintenance thread). Returns whether it synced.
    pub fn flush_if_due(&self) -> Result<bool> {
        match self.cfg().flush {
            FlushPolicy::Interval(d) if self.interval_elapsed(d) => {
                self.sync_to(self.end_offset())?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Makes every sealed segment durable, so that the recovery point
    /// reaches the active segment: takes what the background fsyncs of
    /// rolled segments reported, and syncs here what they have not covered
    /// yet. Compaction cleans only segments below the recovery point, and
    /// an idle partition would otherwise never take the reports.
    pub(super) fn sync_sealed(&self) -> Result<()> {
        self.take_sealed_syncs()?;
        let active_base = self.segments.read().last().map_or(Offset(0), |s| s.base);
        if self.durability.flushed() < active_base {
            self.sync_to(active_base)?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn flush(&self) -> Result<()> {
        self.check_usable()?;
        self.take_sealed_syncs()?;
        self.sync_to(self.end_offset()).map(|_| ())
    }

    /// Syncs for an appender under `FlushPolicy::Always`, which gathers the
    /// other appenders into its fsync; other policies sync at once.
    fn sync_appended(&self, target: Offset) -> Result<Offset> {
        self.sync_with(target, self.cfg().flush == FlushPolicy::Always)
    }

    /// Makes offsets below `target` durable now.
    pub(super) fn sync_to(&self, target: Offset) -> Result<Offset> {
        self.sync_with(target, false)
    }

    fn sync_with(&self, target: Offset, gather: bool) -> Result<Offset> {
        let flushed = self.durability.sync_to(
            target,
            gather,
            || self.cfg().clock.now(),
            || self.end_offset(),
            |from| self.sync_now(from),
        )?;
        // The recovery point moves once per segment: compared with the
        // checkpoint's (not the flushed offset before this sync, which may
        // already equal a new segment's base and hide the crossing).
        let recovery_point = Offset(self.checkpoint.lock().recovery_point);
        if self.segment_base_of(flushed) > self.segment_base_of(recovery_point) {
            self.write_checkpoint(|c| c.recovery_point = c.recovery_point.max(flushed.0))?;
        }
        Ok(flushed)
    }

    /// fsyncs every segment holding offsets at or after `from`, and the
    /// directory if a segment was created; returns the end offset covered.
    pub(super) fn sync_now(&self, from: Offset) -> Result<Offset> {
        self.check_poison()?;
        self.take_sealed_syncs()?;
        let covered = self.end_offset();
        let (active_segment, active_file) = self.active_file.lock().clone();
        let pending: Vec<Arc<Segment>> = {
            let segments = self.segments.read();
            segments[super::segment_holding(&segments, from)..].to_vec()
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
                    let note =
                        fsutil::FileSyncNote::before(|| published_log_bytes(seg, &self.cfg()));
                    // A parked segment's file was closed; any descriptor of
                    // the file reaches the same dirty pages.
                    let synced = match active_file.upgrade() {
                        Some(f) => f.sync_data(),
                        None => File::open(&*seg.paths.log).and_then(|f| f.sync_data()),
                    };
                    synced.map_err(|e| Error::io("fsync", &seg.paths.log, e))?;
                    note.synced(&seg.paths.log);
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

    pub(super) fn segment_base_of(&self, offset: Offset) -> Offset {
        let segments = self.segments.read();
        segments
            .get(super::segment_holding(&segments, offset))
            .map_or(Offset(0), |s| s.base)
    }
}

/// Bytes of the active segment's log published so far (for the
/// fault-injection observer: what an fsync starting now covers).
fn published_log_bytes(seg: &Arc<Segment>, config: &crate::config::PartitionConfig) -> u64 {
    seg.load(config)
        .ok()
        .flatten()
        .map_or(0, |d| d.log.published() as u64)
}

pub(super) fn sync_path(path: &Path) -> Result<()> {
    match File::open(path) {
        Ok(f) => {
            let note = fsutil::FileSyncNote::before(|| f.metadata().map_or(0, |m| m.len()));
            f.sync_all().map_err(|e| Error::io("fsync", path, e))?;
            note.synced(path);
            Ok(())
        }
        // Removed meanwhile (retention or truncation): nothing left to sync.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("open", path, e)),
    }
}
