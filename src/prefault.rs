//! Background pre-faulting of freshly allocated segment pages.
//!
//! The first write to each new page of a file-backed map takes a page fault in
//! which the kernel allocates and zero-fills the page: about half the time of
//! an append to a fresh segment (measured; see BENCHMARKS.md). When the log
//! file grows, one worker thread per process asks the kernel to fault in the
//! rest of the new chunk (`MADV_POPULATE_WRITE`) while the appender writes at
//! its front, so with a spare core that cost leaves the append path.
//!
//! A segment that takes positioned writes (large batches, see `mmap`) stops
//! being pre-faulted: its pages need no fault, and populating them would
//! zero-fill them for nothing.
//!
//! Advisory only: pre-faulting never changes a byte, and a failure (an old
//! kernel, or a range trimmed off the file meanwhile) just leaves the faults to
//! the appender.

use std::sync::Arc;

use crate::mmap::SharedMap;
use crate::worker::Worker;

struct Job {
    map: Arc<SharedMap>,
    start: usize,
    len: usize,
}

static WORKER: Worker<Job> = Worker::new("moldau-prefault", populate);

/// Advisory: on failure the appender takes the faults itself.
fn populate(job: Job) {
    job.map.populate_write(job.start, job.len).ok();
}

/// Queues `[start, start + len)` of `map` to be faulted in writable.
pub(crate) fn populate_later(map: &Arc<SharedMap>, start: usize, len: usize) {
    if len == 0 {
        return;
    }
    // Without a worker thread the faults are left to the appender.
    WORKER
        .send(Job {
            map: Arc::clone(map),
            start,
            len,
        })
        .ok();
}
