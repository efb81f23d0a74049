//! Group commit: appenders that need durability share fsyncs.
//!
//! An appender that needs offsets below `target` durable either finds them
//! flushed already, waits for the fsync in progress (and re-checks), or runs
//! the next fsync itself. A sync covers everything published before it
//! started, so one fsync serves every append that finished before it.
//!
//! Gathering: appenders that shared the last sync are likely to come back
//! together. The next syncer waits until as many records as the last sync
//! covered have been published, for at most half the last fsync's duration
//! (and 1 ms), before it fsyncs. Without it, the first appender back syncs alone and the
//! rest wait a whole fsync for the next one, so groups alternate between 1
//! and N-1. A lone appender's own records satisfy the wait at once.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::types::{Offset, Timestamp};

/// Longest a syncer waits for other appenders to join its fsync.
const MAX_GATHER: Duration = Duration::from_millis(1);

#[derive(Debug)]
struct State {
    /// Offsets below this are durable.
    flushed: Offset,
    /// A sync is running (by some appender, outside the lock).
    syncing: bool,
    /// When the last sync finished, for `FlushPolicy::Interval`.
    last_sync: Timestamp,
    /// How long the last sync took.
    last_sync_duration: Duration,
    /// Records the last sync covered.
    last_covered: u64,
    /// Syncs run so far.
    syncs: u64,
}

/// Tracks what is durable and runs syncs one at a time.
#[derive(Debug)]
pub(crate) struct Durability {
    /// Held only to read or flip the fields, never across an fsync.
    state: Mutex<State>,
    /// Signalled when a sync finishes.
    synced: Condvar,
    /// Signalled when an appender arrives (having published), for a
    /// gathering syncer.
    arrivals: Condvar,
}

impl Durability {
    pub(crate) fn new(flushed: Offset, now: Timestamp) -> Self {
        Durability {
            state: Mutex::new(State {
                flushed,
                syncing: false,
                last_sync: now,
                last_sync_duration: Duration::ZERO,
                last_covered: 0,
                syncs: 0,
            }),
            synced: Condvar::new(),
            arrivals: Condvar::new(),
        }
    }

    /// Offsets below this are durable.
    pub(crate) fn flushed(&self) -> Offset {
        self.state.lock().flushed
    }

    /// Syncs run so far.
    pub(crate) fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// When the last sync finished.
    pub(crate) fn last_sync(&self) -> Timestamp {
        self.state.lock().last_sync
    }

    /// Raises the durable mark to `to`: a background fsync made the offsets
    /// below it durable.
    pub(crate) fn advance_to(&self, to: Offset) {
        let mut s = self.state.lock();
        s.flushed = s.flushed.max(to);
    }

    /// Lowers the durable mark after a truncation below it.
    pub(crate) fn truncated_to(&self, end: Offset) {
        let mut s = self.state.lock();
        s.flushed = s.flushed.min(end);
    }

    /// Makes offsets below `target` durable. `sync` fsyncs everything
    /// published so far and returns the end offset it covered; it runs at most
    /// once at a time, outside the lock. `published` is the end offset
    /// readers can see, and `target` must not exceed it. With `gather`
    /// (appenders that each wait for their own sync), a new syncer first
    /// waits briefly for the others, as the module comment explains.
    pub(crate) fn sync_to(
        &self,
        target: Offset,
        gather: bool,
        now: impl Fn() -> Timestamp,
        published: impl Fn() -> Offset,
        sync: impl Fn(Offset) -> Result<Offset>,
    ) -> Result<Offset> {
        let mut s = self.state.lock();
        self.arrivals.notify_one();
        loop {
            if s.flushed >= target {
                return Ok(s.flushed);
            }
            if s.syncing {
                self.synced.wait(&mut s);
                continue;
            }
            s.syncing = true;
            let from = s.flushed;
            let wait = (s.last_sync_duration / 2).min(MAX_GATHER);
            let deadline = Instant::now() + wait;
            while gather && published().0 < from.0 + s.last_covered {
                if self.arrivals.wait_until(&mut s, deadline).timed_out() {
                    break;
                }
            }
            let started = Instant::now();
            let result = parking_lot::MutexGuard::unlocked(&mut s, || sync(from));
            s.last_sync_duration = started.elapsed();
            s.syncs += 1;
            s.syncing = false;
            self.synced.notify_all();
            let covered = result?;
            if gather {
                s.last_covered = covered.0.saturating_sub(from.0);
            }
            s.flushed = s.flushed.max(covered);
            s.last_sync = now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_syncs() {
        let d = Arc::new(Durability::new(Offset(0), Timestamp(0)));
        let end = Arc::new(AtomicU64::new(0));
        let syncs = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (d, end, syncs) = (Arc::clone(&d), Arc::clone(&end), Arc::clone(&syncs));
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let target = Offset(end.fetch_add(1, Ordering::SeqCst) + 1);
                        d.sync_to(
                            target,
                            true,
                            || Timestamp(0),
                            || Offset(end.load(Ordering::SeqCst)),
                            |_| {
                                syncs.fetch_add(1, Ordering::SeqCst);
                                std::thread::yield_now();
                                Ok(Offset(end.load(Ordering::SeqCst)))
                            },
                        )
                        .unwrap();
                        assert!(d.flushed() >= target);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(d.flushed(), Offset(1600));
        assert!(syncs.load(Ordering::SeqCst) <= 1600);
    }
}
