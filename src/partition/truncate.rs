//! Truncation primitives: cutting the tail, moving the log start offset.

use std::fs::{self, File};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::PartitionLog;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::segment::ActiveSegment;
use crate::types::Offset;

impl PartitionLog {
    /// Removes every record at or after `offset`: the log end becomes the base
    /// offset of the batch holding `offset` (batches are never split), which is
    /// returned. If that is below the start offset, the start moves down to it
    /// (the log is then empty). Readers holding older results keep valid bytes: the cut
    /// segment is rewritten into a new file, not shrunk in place.
    pub fn truncate_to(&self, offset: Offset) -> Result<Offset> {
        let _maintenance = self.maintenance.lock();
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
        // The active segment is replaced below: close it first, so that
        // reopening never waits for an open-segment slot while holding one.
        active.park_now().map_err(|e| self.poison_with(e))?;
        let segments = self.segments.read().clone();
        let i = super::segment_holding(&segments, offset);
        let (keep, cut) = segments.split_at(i + 1);
        let target = &keep[i];
        let data =
            target
                .load(&self.cfg())?
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
        let note = fsutil::FileSyncNote::before(|| valid_len as u64);
        write().map_err(|e| self.poison_with(Error::io("write", &tmp, e)))?;
        note.synced(&tmp);
        fs::rename(&tmp, &target.paths.log)
            .map_err(|e| self.poison_with(Error::io("rename", &target.paths.log, e)))?;
        for seg in cut {
            seg.delete()?;
        }
        for path in [&target.paths.index, &target.paths.time] {
            fsutil::remove_if_exists(path)?;
        }
        fsutil::sync_dir(&self.dir)?;
        let cell = Arc::downgrade(&self.writer);
        let reopened =
            ActiveSegment::reopen(&self.dir, target.base, &self.cfg(), valid_len, false, &cell)?;
        {
            let mut list = self.segments.write();
            list.truncate(i);
            list.push(Arc::clone(&reopened.segment));
        }
        *active = reopened;
        self.set_active_file(active);
        // Its file was replaced: readers holding the old segment look again.
        target.retire();
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
}
