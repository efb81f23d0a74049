//! Appending: records encoded straight into the active segment, already
//! encoded batches stored verbatim, and segment rolls.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::PartitionLog;
use crate::error::{Error, Result};
use crate::record::{self, validate_batch, Record};
use crate::segment::{ActiveSegment, DIRECT_WRITE_BYTES};
use crate::types::{Offset, Timestamp};

/// Records written by [`PartitionLog::append_unsynced`], waiting for
/// [`PartitionLog::finish_append`] to apply the flush policy.
#[derive(Debug)]
#[must_use = "the flush policy is applied by finish_append"]
pub(crate) struct Unsynced {
    first: Offset,
    end: Offset,
    /// Whether `finish_append` will fsync (as the policy stood at the append).
    pub(crate) sync_due: bool,
}

impl PartitionLog {
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
        let unsynced = self.append_unsynced(records)?;
        self.finish_append(unsynced)
    }

    /// The first half of [`PartitionLog::append`]: the records are written
    /// and readable, and the flush policy is not yet applied. The caller
    /// must pass the result to [`PartitionLog::finish_append`] before it
    /// reports the records appended. The producer's combiner uses the two
    /// halves to let the next batch append while this one's fsync runs, so
    /// that group commit can share the fsync between them.
    pub(crate) fn append_unsynced(&self, records: &[Record]) -> Result<Unsynced> {
        let cfg = self.cfg();
        if cfg.compacted && records.iter().any(|r| r.key.is_none()) {
            return Err(self.keyless());
        }
        // A clock read is a large share of a one-record append; records that
        // all carry a timestamp (the producer stamps its own) skip it.
        let now = match records.iter().any(|r| r.timestamp.is_none()) {
            true => cfg.clock.now(),
            // Never used: every record has its own timestamp.
            false => Timestamp(0),
        };
        let max = cfg.max_record_bytes as usize;
        drop(cfg);
        let too_large = |size: usize| Error::RecordTooLarge {
            size: size as u64,
            max: max as u64,
        };
        // A batch of `max` bytes holds at most this many records.
        let max_count = (max / MIN_RECORD_BYTES).max(1);
        self.write_unsynced(|active, roll| {
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
                    let mut room = active.room_for_batch(max);
                    if !active.has_room(room) {
                        // The file must grow: ask for what these records
                        // need, not for a whole `max`-byte batch, so a few
                        // records appended to a new or reopened segment do
                        // not allocate a megabyte each (which closing an
                        // idle segment trims again). It is also the exact
                        // request a nearly full disk can still grant.
                        room = record::plan_batch(rest, now, room).map_or(room, |p| p.size);
                    }
                    let base = active.next_offset;
                    let large =
                        room >= DIRECT_WRITE_BYTES && payload_at_least(rest, DIRECT_WRITE_BYTES);
                    // Disk full surfaces here, before anything is written.
                    active.ensure(room)?;
                    let encoded = match large {
                        // A large batch: encoded aside, then one pwrite.
                        true => active
                            .write_encoded(room, |buf| {
                                record::encode_batch_fitting(buf, base, rest, now)
                                    .map(|e| (e.size, e))
                            })
                            .map_err(|e| self.poison_with(e))?,
                        false => {
                            let buf = active.reserved(room)?;
                            record::encode_batch_fitting(buf, base, rest, now)
                        }
                    };
                    match encoded {
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
        let max = self.cfg().max_record_bytes;
        if batch.len() as u64 > max {
            return Err(Error::RecordTooLarge {
                size: batch.len() as u64,
                max,
            });
        }
        if self.cfg().compacted {
            self.check_keys(batch)?;
        }
        let max_timestamp = Timestamp(header.max_timestamp);
        self.write(|active, roll| {
            let last = active.next_offset.plus(header.last_offset_delta as u64);
            if self.needs_roll(active, batch.len(), last, max_timestamp) {
                roll(active)?;
            }
            let base = active.next_offset;
            let last = base.plus(header.last_offset_delta as u64);
            // Disk full surfaces here, before anything is written.
            active.ensure(batch.len())?;
            if batch.len() >= DIRECT_WRITE_BYTES {
                // The new baseOffset, then the producer's bytes as they are.
                let mut head = [0; 8];
                record::set_base_offset(&mut head, base);
                active
                    .write_parts(&[&head, &batch[head.len()..]])
                    .map_err(|e| self.poison_with(e))?;
            } else {
                let buf = active.reserved(batch.len())?;
                buf.copy_from_slice(batch);
                record::set_base_offset(buf, base);
            }
            active.commit_batch(batch.len(), last, max_timestamp)?;
            Ok(base)
        })
    }

    /// Refuses a batch with a record that has no key (compacted partitions).
    /// Decompresses a compressed batch to see its keys, as Kafka does for
    /// compacted topics.
    fn check_keys(&self, batch: &[u8]) -> Result<()> {
        let batch = record::Batch::parse(bytes::Bytes::copy_from_slice(batch))
            .map_err(|reason| Error::InvalidBatch { reason })?;
        let found = batch
            .for_each_record(|r| match r.key {
                None => ControlFlow::Break(()),
                Some(_) => ControlFlow::Continue(()),
            })
            .map_err(|reason| Error::InvalidBatch { reason })?;
        match found {
            ControlFlow::Break(()) => Err(self.keyless()),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn keyless(&self) -> Error {
        Error::InvalidRecord {
            path: self.dir.clone(),
            reason: "a compacted topic accepts only records with a key".into(),
        }
    }

    /// Runs `fill` under the writer lock, publishes what it wrote, wakes
    /// waiters, and applies the flush policy. `fill` gets the active segment
    /// and a `roll` function that seals it and starts the next. On error, nothing
    /// `fill` wrote to the current segment becomes visible (batches already
    /// sealed into an older segment by a roll during the same call stay).
    /// Applies the flush policy to an append made by
    /// [`PartitionLog::append_unsynced`]; returns its first offset.
    pub(crate) fn finish_append(&self, unsynced: Unsynced) -> Result<Offset> {
        self.apply_flush_policy(unsynced.end, unsynced.sync_due)?;
        Ok(unsynced.first)
    }

    pub(super) fn write<F>(&self, fill: F) -> Result<Offset>
    where
        F: FnOnce(
            &mut ActiveSegment,
            &mut dyn FnMut(&mut ActiveSegment) -> Result<()>,
        ) -> Result<Offset>,
    {
        let unsynced = self.write_unsynced(fill)?;
        self.finish_append(unsynced)
    }

    /// [`PartitionLog::write`] without applying the flush policy.
    fn write_unsynced<F>(&self, fill: F) -> Result<Unsynced>
    where
        F: FnOnce(
            &mut ActiveSegment,
            &mut dyn FnMut(&mut ActiveSegment) -> Result<()>,
        ) -> Result<Offset>,
    {
        // Reports of background fsyncs: a failure is reported by this
        // append, before it writes anything.
        self.take_sealed_syncs()?;
        let (result, end, sync_due) = {
            let mut guard = self.writer.lock();
            self.check_usable()?;
            let Some(active) = guard.as_mut() else {
                return Err(self.closed_error());
            };
            self.open_active(active)?;
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
            let sync_due = self.flush_due(end);
            if rolled && !sync_due {
                // The sealed segments are fsynced in the background; an
                // append that syncs anyway covers them itself.
                self.queue_sealed_sync(active.segment.base);
            }
            (result, end, sync_due)
        };
        self.watchers.notify();
        let first = result?;
        Ok(Unsynced {
            first,
            end,
            sync_due,
        })
    }

    /// Whether a batch of `size` bytes ending at `last`, stamped `ts`, must go
    /// to a new segment. Age is measured in record time, as Kafka does: the
    /// incoming batch's timestamp (an encoded batch's max timestamp; for
    /// records, the first one's, known before encoding) against the
    /// segment's first batch's, so replaying old data does not roll on every
    /// append.
    pub(super) fn needs_roll(
        &self,
        a: &ActiveSegment,
        size: usize,
        last: Offset,
        ts: Timestamp,
    ) -> bool {
        let aged = match (self.cfg().segment_ms, a.first_batch_time) {
            (Some(max_age), Some(first)) => {
                ts.0.saturating_sub(first.0)
                    >= i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX)
            }
            _ => false,
        };
        (aged && a.size() > 0) || a.is_full_for(size, last)
    }

    /// Seals the active segment and starts a new one at the end offset. The
    /// active segment is parked first (trimmed and closed; so creating the
    /// next one never waits for an open-segment slot while holding one),
    /// then the new segment's files are created: if that fails, the parked
    /// segment stays active and the next append reopens it.
    pub(super) fn roll(&self, active: &mut ActiveSegment) -> Result<()> {
        // Trimming a file we own fails only if the file system does; the
        // segment's durability is then unknown.
        active.park_now().map_err(|e| self.poison_with(e))?;
        let cell = Arc::downgrade(&self.writer);
        let new = ActiveSegment::create(&self.dir, active.next_offset, &self.cfg(), &cell)?;
        let old = std::mem::replace(active, new);
        self.dir_dirty.store(true, Ordering::Release);
        {
            let mut segments = self.segments.write();
            segments.push(Arc::clone(&active.segment));
        }
        self.set_active_file(active);
        old.seal().map_err(|e| self.poison_with(e))?;
        Ok(())
    }

    /// Forces a roll to a new segment (if the active one holds any data).
    pub fn roll_segment(&self) -> Result<()> {
        self.roll_if(|active| active.size() > 0).map(|_| ())
    }

    /// Rolls the active segment if `due` says so, checked under the writer
    /// lock; the sealed segment is fsynced before this returns. Returns
    /// whether it rolled.
    pub(super) fn roll_if(&self, due: impl FnOnce(&ActiveSegment) -> bool) -> Result<bool> {
        let rolled = {
            let mut guard = self.writer.lock();
            self.check_usable()?;
            let Some(active) = guard.as_mut() else {
                return Err(self.closed_error());
            };
            if due(active) {
                self.open_active(active)?;
                active.publish();
                self.roll(active)?;
                true
            } else {
                false
            }
        };
        if rolled {
            self.sync_to(self.end_offset())?;
        }
        Ok(rolled)
    }
}

/// The fewest bytes a record takes: length, attributes, timestamp delta,
/// offset delta, key length, value length and header count, one byte each.
const MIN_RECORD_BYTES: usize = 7;

/// Whether the keys and values of `records` (from the first on) add up to
/// at least `bytes`: a batch of them is large. Stops counting there.
fn payload_at_least(records: &[Record], bytes: usize) -> bool {
    let mut sum = 0;
    records.iter().any(|r| {
        sum += r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
        sum >= bytes
    })
}

/// Checks that every record fits a batch of `max` bytes; `Err` carries the
/// size of the first one that does not.
fn check_sizes(mut records: &[Record], now: Timestamp, max: usize) -> Result<(), usize> {
    while !records.is_empty() {
        records = &records[record::plan_batch(records, now, max)?.count..];
    }
    Ok(())
}
