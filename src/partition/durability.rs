//! Group commit: appenders that need durability share fsyncs.
//!
//! An appender that needs offsets below `target` durable either finds them
//! flushed already, waits for the fsync in progress (and re-checks), or runs
//! the next fsync itself. A sync covers everything published before it
//! started, so one fsync serves every append that finished before it.

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::types::{Offset, Timestamp};

#[derive(Debug)]
struct State {
    /// Offsets below this are durable.
    flushed: Offset,
    /// A sync is running (by some appender, outside the lock).
    syncing: bool,
    /// When the last sync finished, for `FlushPolicy::Interval`.
    last_sync: Timestamp,
}

/// Tracks what is durable and runs syncs one at a time.
#[derive(Debug)]
pub(crate) struct Durability {
    /// Held only to read or flip the fields, never across an fsync.
    state: Mutex<State>,
    synced: Condvar,
}

impl Durability {
    pub(crate) fn new(flushed: Offset, now: Timestamp) -> Self {
        Durability {
            state: Mutex::new(State {
                flushed,
                syncing: false,
                last_sync: now,
            }),
            synced: Condvar::new(),
        }
    }

    /// Offsets below this are durable.
    pub(crate) fn flushed(&self) -> Offset {
        self.state.lock().flushed
    }

    /// When the last sync finished.
    pub(crate) fn last_sync(&self) -> Timestamp {
        self.state.lock().last_sync
    }

    /// Lowers the durable mark after a truncation below it.
    pub(crate) fn truncated_to(&self, end: Offset) {
        let mut s = self.state.lock();
        s.flushed = s.flushed.min(end);
    }

    /// Makes offsets below `target` durable. `sync` fsyncs everything
    /// published so far and returns the end offset it covered; it runs at most
    /// once at a time, outside the lock.
    pub(crate) fn sync_to(
        &self,
        target: Offset,
        now: impl Fn() -> Timestamp,
        sync: impl Fn(Offset) -> Result<Offset>,
    ) -> Result<Offset> {
        let mut s = self.state.lock();
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
            let result = parking_lot::MutexGuard::unlocked(&mut s, || sync(from));
            s.syncing = false;
            self.synced.notify_all();
            let covered = result?;
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
                            || Timestamp(0),
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
