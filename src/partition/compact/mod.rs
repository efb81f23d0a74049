//! Compaction: keep only the latest record of each key in the sealed
//! segments, with its original offset.
//!
//! A pass, as Kafka's log cleaner does it:
//! 1. The cleanable range is the sealed segments wholly below the recovery
//!    point whose newest record is older than `min_compaction_lag`. Its part
//!    from the clean offset on is dirty; the pass runs when dirty bytes are at
//!    least `min_cleanable_dirty_ratio` of it.
//! 2. A key map (exact keys, see `keymap`) records the latest offset of each
//!    key in the dirty segments, up to a memory budget.
//! 3. Every segment from the log start to the end of the mapped range is
//!    rewritten, consecutive ones grouped up to `segment_bytes`: a record is
//!    kept unless a later one has its key, it has no key, or it is a tombstone
//!    older than `delete_retention`. Kept records are copied byte for byte.
//! 4. Each rewritten group replaces its segments crash-safely (`swap`), and
//!    the clean offset moves to the end of the mapped range.
//!
//! Segments are replaced only below the recovery point, which recovery never
//! re-validates, and each rewritten group still ends exactly where the next
//! segment begins (an empty batch holds the place of a removed last batch),
//! so an unclean open never mistakes a compaction gap for a lost tail.

mod keymap;
pub(crate) mod swap;

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use super::retention::millis;
use super::PartitionLog;
use crate::error::{Error, FormatError, Result};
use crate::record::{self, Batch, Retained};
use crate::segment::{Segment, SegmentData};
use crate::types::{Offset, Timestamp};

use keymap::KeyMap;

/// How a compacted partition is cleaned (Kafka's topic settings of the same
/// names, and the cleaner's dedupe buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionSettings {
    /// Clean only when at least this share of the cleanable log is dirty.
    /// Default 0.5 (`min.cleanable.dirty.ratio`); between 0 and 1.
    pub min_cleanable_dirty_ratio: f64,
    /// Leave segments holding records younger than this alone. Default 0
    /// (`min.compaction.lag.ms`).
    pub min_compaction_lag: Duration,
    /// Keep tombstones (records with a null value) for this long, so that
    /// consumers see the deletion. Default 1 day (`delete.retention.ms`).
    pub delete_retention: Duration,
    /// Memory for the key map of one pass. Default 128 MiB (Kafka's
    /// `log.cleaner.dedupe.buffer.size`). A pass maps whole segments until the
    /// map exceeds this (so it may overshoot by one segment's keys) and leaves
    /// the rest dirty for the next pass.
    pub key_map_bytes: usize,
}

impl Default for CompactionSettings {
    fn default() -> Self {
        CompactionSettings {
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag: Duration::ZERO,
            delete_retention: Duration::from_secs(24 * 3600),
            key_map_bytes: 128 << 20,
        }
    }
}

/// What a compaction pass found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompactionOutcome {
    /// Dirty share of the cleanable log before the pass (0 when nothing is
    /// cleanable).
    pub dirty_ratio: f64,
    /// Whether the pass rewrote anything (the ratio may be below the minimum).
    pub cleaned: bool,
    /// Segments replaced.
    pub segments_rewritten: usize,
    /// Bytes of the rewritten segments before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Offsets below this are now compacted.
    pub clean_offset: Offset,
}

impl CompactionOutcome {
    /// Bytes the pass freed.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// What compaction remembers between passes (in memory: after a restart the
/// first pass that finds dirty data catches up).
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// The last pass's outcome.
    pub(crate) last: Option<CompactionOutcome>,
    /// When the first tombstone kept by the last pass may go: a pass then
    /// runs even without dirty data, so deletions do not linger.
    tombstones_due: Option<i64>,
}

/// The sealed segments a pass may touch, with their sizes.
struct Cleanable {
    segments: Vec<Arc<Segment>>,
    sizes: Vec<u64>,
    /// Index of the first dirty segment.
    first_dirty: usize,
    dirty_ratio: f64,
}

impl PartitionLog {
    /// The dirty share of the log compaction may clean as of `now`: bytes
    /// written since the last pass over all bytes of the cleanable segments.
    pub fn dirty_ratio(&self, now: Timestamp, settings: &CompactionSettings) -> Result<f64> {
        let _maintenance = self.maintenance.lock();
        self.check_usable()?;
        self.sync_sealed()?;
        Ok(self.cleanable(now, settings)?.dirty_ratio)
    }

    /// Runs one compaction pass as of `now` (see the module docs): keeps the
    /// latest record of each key in the sealed segments, with its offset,
    /// drops tombstones older than `delete_retention`, and replaces the
    /// rewritten segments crash-safely. Readers holding data of a replaced
    /// segment keep valid bytes. Appends go on meanwhile (only sealed
    /// segments are touched).
    pub fn compact(
        &self,
        now: Timestamp,
        settings: &CompactionSettings,
    ) -> Result<CompactionOutcome> {
        let _maintenance = self.maintenance.lock();
        self.check_usable()?;
        self.sync_sealed()?;
        let clean = self.cleanable(now, settings)?;
        let mut outcome = CompactionOutcome {
            dirty_ratio: clean.dirty_ratio,
            clean_offset: Offset(self.checkpoint.lock().clean_offset),
            ..CompactionOutcome::default()
        };
        let dirty_bytes: u64 = clean.sizes[clean.first_dirty..].iter().sum();
        let dirty_enough =
            dirty_bytes > 0 && clean.dirty_ratio >= settings.min_cleanable_dirty_ratio;
        let tombstones_due = self
            .cleaner
            .lock()
            .tombstones_due
            .is_some_and(|due| now.0 >= due);
        if clean.segments.is_empty() || !(dirty_enough || tombstones_due) {
            return Ok(outcome);
        }
        // The key map of the dirty segments, as far as the budget goes.
        let mut map = KeyMap::default();
        let mut mapped = clean.first_dirty;
        for seg in &clean.segments[clean.first_dirty..] {
            let data = self.load_for_compaction(seg)?;
            for_each_batch(seg, &data, |batch| {
                // The visitor never breaks: every key is mapped.
                let _all = batch.for_each_record(|r| {
                    if let Some(key) = r.key {
                        map.insert(key, r.offset);
                    }
                    std::ops::ControlFlow::Continue(())
                })?;
                Ok(())
            })?;
            mapped += 1;
            if map.memory_bytes() > settings.key_map_bytes {
                break;
            }
        }
        let end = self.segments_end(&clean.segments, mapped);
        let tombstone_ms = millis(settings.delete_retention);
        let horizon = now.0.saturating_sub(tombstone_ms);
        let mut next_due: Option<i64> = None;
        for group in groups(&clean.segments[..mapped], &clean.sizes, end, &self.cfg()) {
            let rewritten = self.clean_group(group, &map, horizon, tombstone_ms)?;
            if let Some(due) = rewritten.tombstones_due {
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
            }
            outcome.segments_rewritten += rewritten.replaced;
            outcome.bytes_before += rewritten.bytes_before;
            outcome.bytes_after += rewritten.bytes_after;
            outcome.records_removed += rewritten.records_removed;
        }
        self.write_checkpoint(|c| c.clean_offset = c.clean_offset.max(end.0))?;
        outcome.cleaned = true;
        outcome.clean_offset = Offset(self.checkpoint.lock().clean_offset);
        let mut state = self.cleaner.lock();
        state.last = Some(outcome);
        state.tombstones_due = next_due;
        Ok(outcome)
    }

    /// The segments a pass may clean: sealed, wholly below the recovery
    /// point, newest record older than the compaction lag.
    fn cleanable(&self, now: Timestamp, settings: &CompactionSettings) -> Result<Cleanable> {
        let all = self.segments.read().clone();
        let ckpt = *self.checkpoint.lock();
        let lag_horizon = now.0.saturating_sub(millis(settings.min_compaction_lag));
        let mut segments = Vec::new();
        for pair in all.windows(2) {
            let (seg, next) = (&pair[0], &pair[1]);
            if next.base.0 > ckpt.recovery_point {
                break;
            }
            if seg
                .max_timestamp(&self.cfg())?
                .is_some_and(|ts| ts.0 > lag_horizon)
            {
                break;
            }
            segments.push(Arc::clone(seg));
        }
        let sizes = segments
            .iter()
            .map(|s| s.sealed_size())
            .collect::<Result<Vec<_>>>()?;
        // Segments ending at or below the clean offset are clean.
        let first_dirty = (0..segments.len())
            .find(|&i| all[i + 1].base.0 > ckpt.clean_offset)
            .unwrap_or(segments.len());
        let total: u64 = sizes.iter().sum();
        let dirty: u64 = sizes[first_dirty..].iter().sum();
        let dirty_ratio = match total {
            0 => 0.0,
            t => dirty as f64 / t as f64,
        };
        Ok(Cleanable {
            segments,
            sizes,
            first_dirty,
            dirty_ratio,
        })
    }

    /// The offset where `segments[..n]` end: the base of the segment after
    /// them (there is one: only sealed segments are cleaned).
    fn segments_end(&self, segments: &[Arc<Segment>], n: usize) -> Offset {
        let all = self.segments.read();
        let last = &segments[n - 1];
        let i = all
            .iter()
            .position(|s| Arc::ptr_eq(s, last))
            .map_or(all.len() - 1, |i| i + 1);
        all[i].base
    }

    fn load_for_compaction(&self, seg: &Arc<Segment>) -> Result<Arc<SegmentData>> {
        // Only maintenance removes sealed segments, and it is us.
        seg.load(&self.cfg())?
            .ok_or_else(|| Error::io("load", &seg.paths.log, std::io::ErrorKind::NotFound.into()))
    }

    /// Rewrites one group of consecutive segments into one, keeping the
    /// records `map` and `horizon` say to keep, and swaps it in.
    fn clean_group(
        &self,
        group: Group<'_>,
        map: &KeyMap,
        horizon: i64,
        tombstone_ms: i64,
    ) -> Result<Rewritten> {
        let base = group.segments[0].base;
        let (files, file) = swap::Cleaned::create(&self.dir, base)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut stats = Rewritten {
            bytes_before: group.sizes.iter().sum(),
            ..Rewritten::default()
        };
        let mut last_dropped: Option<Batch> = None;
        let mut changed = group.segments.len() > 1;
        let log_path = files.log_path().to_path_buf();
        let write_err = |e| Error::io("write", &log_path, e);
        for seg in group.segments {
            let data = self.load_for_compaction(seg)?;
            // Tombstones go once the segment holding them is old enough.
            let seg_max = seg.max_timestamp(&self.cfg())?;
            let tombstones_expire = seg_max.is_none_or(|ts| ts.0 < horizon);
            let tombstone_due =
                seg_max.map(|ts| ts.0.saturating_add(tombstone_ms).saturating_add(1));
            for_each_batch(seg, &data, |batch| {
                let retained = match batch.header().is_control() {
                    // Transaction markers are not keyed data; kept as they are.
                    true => Retained::All,
                    false => record::retain_records(&batch, |r| {
                        let keep = match r.key {
                            None => false,
                            Some(key) => {
                                map.latest(key).is_none_or(|latest| latest <= r.offset)
                                    && (r.value.is_some() || !tombstones_expire)
                            }
                        };
                        stats.records_removed += u64::from(!keep);
                        if keep && r.value.is_none() {
                            stats.tombstones_due =
                                stats.tombstones_due.min(tombstone_due).or(tombstone_due);
                        }
                        keep
                    })?,
                };
                let bytes: &[u8] = match &retained {
                    Retained::All => batch.bytes(),
                    Retained::Some(v) => v,
                    Retained::Nothing => {
                        changed = true;
                        last_dropped = Some(batch);
                        return Ok(());
                    }
                };
                changed |= !matches!(retained, Retained::All);
                last_dropped = None;
                stats.bytes_after += bytes.len() as u64;
                out.write_all(bytes).map_err(|e| write_err(e).into())
            })?;
        }
        // The group must still end where the next segment begins.
        if let Some(batch) = last_dropped {
            let empty = record::empty_batch_like(&batch);
            stats.bytes_after += empty.len() as u64;
            out.write_all(&empty).map_err(write_err)?;
        }
        let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
        if !changed {
            // One segment, every record kept: nothing to replace.
            drop(file);
            files.discard()?;
            stats.bytes_after = stats.bytes_before;
            return Ok(stats);
        }
        let data = files.commit(file, self.cfg().index_interval_bytes)?;
        let replacement = Segment::with_data(&self.dir, base, data, &self.cfg().open_segments);
        // Readers that copied the list before this keep the old segments (and
        // their maps); ones that look later find the replacement. An old
        // segment not yet loaded by its holder can no longer be: its reader
        // looks the offset up again.
        {
            let mut list = self.segments.write();
            let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, &group.segments[0])) else {
                return Err(Error::Corrupt {
                    path: self.dir.clone(),
                    position: base.0,
                    reason: FormatError::Inconsistent(
                        "a segment being compacted left the list".into(),
                    ),
                });
            };
            list.splice(i..i + group.segments.len(), [replacement]);
        }
        group.segments[0].retire();
        for old in &group.segments[1..] {
            old.delete()?;
        }
        swap::install(&self.dir, base)?;
        stats.replaced = group.segments.len();
        Ok(stats)
    }
}

/// What rewriting one group did.
#[derive(Debug, Default)]
struct Rewritten {
    /// When the first tombstone kept may go.
    tombstones_due: Option<i64>,
    replaced: usize,
    bytes_before: u64,
    bytes_after: u64,
    records_removed: u64,
}

/// Consecutive segments rewritten into one.
struct Group<'a> {
    segments: &'a [Arc<Segment>],
    sizes: &'a [u64],
}

/// Splits `segments` (ending at `end`) into groups of consecutive segments
/// whose total size fits a segment and whose offsets fit its relative index.
fn groups<'a>(
    segments: &'a [Arc<Segment>],
    sizes: &'a [u64],
    end: Offset,
    config: &crate::config::PartitionConfig,
) -> Vec<Group<'a>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base.0;
        let mut total = sizes[start];
        let mut stop = start + 1;
        while stop < segments.len() {
            let after = segments.get(stop + 1).map_or(end.0, |s| s.base.0);
            let fits_size = total + sizes[stop] <= config.segment_bytes;
            let fits_offsets = after - 1 - base <= u64::from(u32::MAX);
            if !(fits_size && fits_offsets) {
                break;
            }
            total += sizes[stop];
            stop += 1;
        }
        out.push(Group {
            segments: &segments[start..stop],
            sizes: &sizes[start..stop],
        });
        start = stop;
    }
    out
}

/// Calls `f` with each batch of a sealed segment, in order.
fn for_each_batch(
    seg: &Segment,
    data: &Arc<SegmentData>,
    mut f: impl FnMut(Batch) -> std::result::Result<(), BatchError>,
) -> Result<()> {
    let log = data.log.readable();
    let mut pos = 0;
    while let Some(h) = seg.header_at(log, pos)? {
        let end = pos + h.total_size();
        let bytes = data
            .log
            .bytes(pos, end)
            .ok_or_else(|| Error::corrupt(&seg.paths.log, pos as u64, truncated(end, log.len())))?;
        let batch =
            Batch::parse(bytes).map_err(|r| Error::corrupt(&seg.paths.log, pos as u64, r))?;
        f(batch).map_err(|e| match e {
            BatchError::Format(r) => Error::corrupt(&seg.paths.log, pos as u64, r),
            BatchError::Other(e) => e,
        })?;
        pos = end;
    }
    Ok(())
}

fn truncated(needed: usize, available: usize) -> FormatError {
    FormatError::Truncated {
        needed: needed as u64,
        available: available as u64,
    }
}

/// An error while handling one batch: a format error is reported with the
/// batch's position.
enum BatchError {
    Format(FormatError),
    Other(Error),
}

impl From<FormatError> for BatchError {
    fn from(e: FormatError) -> Self {
        BatchError::Format(e)
    }
}

impl From<Error> for BatchError {
    fn from(e: Error) -> Self {
        BatchError::Other(e)
    }
}
