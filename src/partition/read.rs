//! Reading: zero-copy batch reads, timestamp lookups, waiting for new data.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PartitionLog;
use crate::batches::Batches;
use crate::error::{Error, Result};
use crate::notify::{Doorbell, Watchers};
use crate::segment::{Segment, TimeIndex};
use crate::types::{Offset, Timestamp};

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

impl PartitionLog {
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
            let Some(data) = segment.load(&self.cfg())? else {
                // Deleted under us: by retention or truncation (the offset is
                // then out of range), or replaced by compaction (the new list
                // holds its replacement, so looking again makes progress).
                if offset < self.start_offset() || offset > self.end_offset() {
                    return Err(out_of_range());
                }
                i = self.segment_index(offset);
                continue;
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
        super::segment_holding(&self.segments.read(), offset)
    }

    pub(super) fn any_path(&self) -> Arc<Path> {
        Arc::clone(&self.active_file.lock().0.paths.log)
    }

    /// The first offset whose record timestamp is at or after `ts`, found
    /// through the time indexes; `None` if every record is older.
    pub fn offset_for_timestamp(&self, ts: Timestamp) -> Result<Option<Offset>> {
        let start = self.start_offset();
        let segments: Vec<Arc<Segment>> = self.segments.read().clone();
        for segment in &segments[super::segment_holding(&segments, start)..] {
            let Some(data) = segment.load(&self.cfg())? else {
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
        let deadline = Instant::now().checked_add(timeout);
        self.watchers.wait_until(deadline, || {
            if self.end_offset() > offset {
                return Ok(true);
            }
            self.check_open().map(|()| false)
        })
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
}
