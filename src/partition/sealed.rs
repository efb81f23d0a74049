//! Background fsync of rolled segments.
//!
//! Under every flush policy but `Always`, the appender that rolls a segment
//! does not fsync it: it queues the sealed segment (and any older one not yet
//! known durable) for one worker thread per process, as Kafka flushes a
//! rolled segment from a background thread. A 1 GiB segment's fsync took
//! the appending thread's time otherwise (see BENCHMARKS.md).
//!
//! The worker holds only a `Weak` to the partition's [`SealedSyncs`], so a
//! dropped partition is skipped. It reports to the partition, which takes
//! the report at its next append, flush or close (before touching the
//! writer lock): a failed fsync poisons the partition, as a failed
//! foreground fsync does; a successful one moves the recovery point (and the
//! flushed offset) to the end of the synced segment. The recovery point thus
//! moves only after the fsync, and recovery after a crash validates every
//! segment past it, however many rolls were still waiting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex};

use super::flush::sync_path;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::segment::Segment;
use crate::types::Offset;
use crate::worker::Worker;

/// A partition's side of the background syncs.
#[derive(Debug)]
pub(super) struct SealedSyncs {
    dir: PathBuf,
    /// Results waiting for the partition. Held to push or take them.
    reports: Mutex<Reports>,
    /// Whether `reports` holds anything, so an append checks with one load.
    reported: AtomicBool,
    /// Signalled when a job finishes.
    finished: Condvar,
    /// The end offset of the last segment queued (segments below it need no
    /// new job). Only the writer (under the partition's writer lock) sets it.
    queued_through: Mutex<Offset>,
}

#[derive(Debug, Default)]
struct Reports {
    /// Sealed segments synced, each with the base of the segment after it.
    synced: Vec<(Arc<Segment>, Offset)>,
    /// The first failure, until the partition takes it.
    failed: Option<Error>,
    /// A job failed: later jobs are skipped (the partition is poisoned).
    stopped: bool,
    /// Jobs queued and jobs finished (run or skipped), for tests to wait on.
    queued: u64,
    finished: u64,
}

/// The outcome of [`SealedSyncs::take`].
pub(super) enum Taken {
    /// Nothing new.
    Nothing,
    /// A background fsync failed.
    Failed(Error),
    /// These sealed segments (each with its end) are durable.
    Synced(Vec<(Arc<Segment>, Offset)>),
}

struct Job {
    syncs: Weak<SealedSyncs>,
    /// Segments to fsync, oldest first; the last one ends at `end`.
    segments: Vec<Arc<Segment>>,
    end: Offset,
}

impl SealedSyncs {
    pub(super) fn new(dir: PathBuf, flushed: Offset) -> Arc<SealedSyncs> {
        Arc::new(SealedSyncs {
            dir,
            reports: Mutex::new(Reports::default()),
            reported: AtomicBool::new(false),
            finished: Condvar::new(),
            queued_through: Mutex::new(flushed),
        })
    }

    /// Where the next job's segments start: past what is queued or flushed.
    pub(super) fn queued_through(&self, flushed: Offset) -> Offset {
        (*self.queued_through.lock()).max(flushed)
    }

    /// Queues `segments` (sealed, oldest first, ending at `end`) to be
    /// fsynced in the background.
    pub(super) fn queue(self: &Arc<Self>, segments: Vec<Arc<Segment>>, end: Offset) {
        if segments.is_empty() {
            return;
        }
        *self.queued_through.lock() = end;
        self.reports.lock().queued += 1;
        let job = Job {
            syncs: Arc::downgrade(self),
            segments,
            end,
        };
        // Without a worker thread, sync here rather than not at all.
        if let Err(job) = WORKER.send(job) {
            job.run();
        }
    }

    /// Takes the reports the worker left since the last call.
    pub(super) fn take(&self) -> Taken {
        if !self.reported.load(Ordering::Acquire) {
            return Taken::Nothing;
        }
        let mut r = self.reports.lock();
        self.reported.store(false, Ordering::Release);
        if let Some(e) = r.failed.take() {
            return Taken::Failed(e);
        }
        Taken::Synced(std::mem::take(&mut r.synced))
    }

    /// Records a job's outcome (`None`: it had nothing to do).
    fn report(&self, result: Option<Result<(Arc<Segment>, Offset)>>) {
        let mut r = self.reports.lock();
        r.finished += 1;
        match result {
            None => {}
            Some(Ok(synced)) => r.synced.push(synced),
            Some(Err(e)) => {
                r.failed.get_or_insert(e);
                r.stopped = true;
            }
        }
        self.reported.store(true, Ordering::Release);
        self.finished.notify_all();
    }

    /// Waits until every job queued so far has finished; `false` if
    /// `timeout` passed first.
    #[cfg(test)]
    pub(super) fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut r = self.reports.lock();
        while r.finished < r.queued {
            if self.finished.wait_until(&mut r, deadline).timed_out() {
                return r.finished >= r.queued;
            }
        }
        true
    }

    fn has_failed(&self) -> bool {
        self.reports.lock().stopped
    }
}

impl Job {
    fn run(self) {
        let Some(syncs) = self.syncs.upgrade() else {
            return; // The partition is gone.
        };
        let outcome = self.sync(&syncs);
        syncs.report(outcome);
    }

    /// fsyncs the directory and the job's segments; `None` if there was
    /// nothing to do.
    fn sync(&self, syncs: &SealedSyncs) -> Option<Result<(Arc<Segment>, Offset)>> {
        let last = self.segments.last()?;
        // After a failure the partition is poisoned: nothing more to sync.
        if syncs.has_failed() {
            return None;
        }
        let result = (|| {
            // The new segment's file (and any created since) must survive a
            // crash with the directory.
            fsutil::sync_dir(&syncs.dir)?;
            for seg in &self.segments {
                if !seg.is_deleted() {
                    for path in [&*seg.paths.log, &seg.paths.index, &seg.paths.time] {
                        sync_path(path)?;
                    }
                }
            }
            Ok(())
        })();
        // A partition whose directory was removed meanwhile (its topic
        // deleted) has nothing left to make durable.
        if result.is_err() && !syncs.dir.exists() {
            return None;
        }
        Some(result.map(|()| (Arc::clone(last), self.end)))
    }
}

static WORKER: Worker<Job> = Worker::new("moldau-sealed-sync", Job::run);
