//! Retention: deleting whole segments from the front of the log, by age and
//! by size, and moving the log start offset on request.
//!
//! Every deletion follows one order: the new start offset is checkpointed,
//! then published, then the segments leave the list, then their files are
//! unlinked. A crash after the checkpoint leaves files that the next open
//! removes (`whole_segments_below`); a reader that copied the list earlier
//! keeps its maps, which outlive the unlinked files.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::PartitionLog;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::segment::Segment;
use crate::types::{Offset, Timestamp};

/// How long and how much a partition keeps (Kafka's `retention.ms` and
/// `retention.bytes`). `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Delete segments whose newest record is older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while the partition would still hold at
    /// least this many bytes without them.
    pub max_bytes: Option<u64>,
}

/// What one retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes of log they held.
    pub bytes_deleted: u64,
    /// The log start offset after the pass.
    pub start_offset: Offset,
}

impl PartitionLog {
    /// Deletes the oldest segments that `retention` no longer keeps, as of
    /// `now`: by age, sealed segments whose largest timestamp is older than
    /// `now - max_age`, oldest first, stopping at the first one still young
    /// (if the active segment's records have all expired too, it is rolled and
    /// deleted, leaving an empty active segment); by size, the oldest sealed
    /// segments while the partition would still hold `max_bytes` or more
    /// without them. The log start offset moves to the first kept segment.
    pub fn apply_retention(
        &self,
        now: Timestamp,
        retention: Retention,
    ) -> Result<RetentionOutcome> {
        let _maintenance = self.maintenance.lock();
        self.check_usable()?;
        let mut doomed = 0;
        if let Some(age) = retention.max_age {
            let horizon = now.0.saturating_sub(millis(age));
            doomed = self.expired_prefix(horizon)?;
        }
        if let Some(limit) = retention.max_bytes {
            doomed = doomed.max(self.oversize_prefix(limit)?);
        }
        let (segments_deleted, bytes_deleted) = match doomed {
            0 => (0, 0),
            n => {
                let next_base = self.segments.read()[n].base;
                self.delete_front(n, next_base)?
            }
        };
        Ok(RetentionOutcome {
            segments_deleted,
            bytes_deleted,
            start_offset: self.start_offset(),
        })
    }

    /// Moves the log start offset forward to `offset` (records below it are no
    /// longer readable) and deletes the segments that lie wholly below it. The
    /// new start is checkpointed before any file is removed. The active segment
    /// is never deleted. Returns the number of segments deleted.
    ///
    /// Errors: [`Error::OffsetOutOfRange`] past the end offset.
    pub fn delete_records_before(&self, offset: Offset) -> Result<usize> {
        let _maintenance = self.maintenance.lock();
        self.check_usable()?;
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        if offset <= start {
            return Ok(0);
        }
        let n = super::whole_segments_below(&self.segments.read(), offset);
        self.delete_front(n, offset).map(|(n, _)| n)
    }

    /// How many segments at the front hold only records older than
    /// `horizon`, rolling the active segment first if all of it expired.
    fn expired_prefix(&self, horizon: i64) -> Result<usize> {
        let segments = self.segments.read().clone();
        let sealed = &segments[..segments.len() - 1];
        let mut expired = 0;
        for seg in sealed {
            // An empty segment (compaction can leave one) holds nothing to keep.
            match seg.max_timestamp(&self.cfg())? {
                Some(ts) if ts.0 >= horizon => return Ok(expired),
                _ => expired += 1,
            }
        }
        // Every sealed segment expired: so may the active one (Kafka rolls it
        // so that it can go too). Checked and rolled under the writer lock, so
        // a record appended meanwhile is never rolled away with it.
        let rolled = self.roll_if(|active| {
            active.size() > 0 && active.max_timestamp().is_none_or(|ts| ts.0 < horizon)
        })?;
        Ok(expired + usize::from(rolled))
    }

    /// How many sealed segments at the front can go while the partition
    /// keeps at least `limit` bytes.
    fn oversize_prefix(&self, limit: u64) -> Result<usize> {
        let segments = self.segments.read().clone();
        let active = self.writer.lock().as_ref().map_or(0, |a| a.size() as u64);
        let sealed = &segments[..segments.len() - 1];
        let sizes = sealed
            .iter()
            .map(|s| s.sealed_size())
            .collect::<Result<Vec<_>>>()?;
        let total = sizes.iter().sum::<u64>() + active;
        let mut excess = total.saturating_sub(limit);
        let mut n = 0;
        for size in sizes {
            if excess < size {
                break;
            }
            excess -= size;
            n += 1;
        }
        Ok(n)
    }

    /// Deletes the first `n` segments (never the active one) and moves the
    /// start offset up to `new_start`, which lies in the first kept segment.
    /// The caller holds the maintenance lock, so nothing else removes
    /// segments meanwhile. Returns the segments and bytes deleted.
    fn delete_front(&self, n: usize, new_start: Offset) -> Result<(usize, u64)> {
        let start = self.start_offset().max(new_start);
        self.write_checkpoint(|c| {
            c.log_start = start.0;
            c.clean_offset = c.clean_offset.max(start.0);
        })?;
        self.start.store(start.0, Ordering::Release);
        let doomed: Vec<Arc<Segment>> = {
            let mut list = self.segments.write();
            // Never the active segment, whatever the caller counted.
            let n = n.min(list.len() - 1);
            list.drain(..n).collect()
        };
        let mut bytes = 0;
        for seg in &doomed {
            bytes += seg.sealed_size()?;
            seg.delete()?;
        }
        if !doomed.is_empty() {
            fsutil::sync_dir(&self.dir)?;
        }
        Ok((doomed.len(), bytes))
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
