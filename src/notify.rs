//! Waiting for new data without spinning: [`Doorbell`]s rung by partitions.
//!
//! A partition keeps a list of subscribed doorbells and rings each when its
//! end offset moves. One doorbell may be subscribed to many partitions, so a
//! consumer of several partitions waits in one place. A doorbell can be waited
//! on by a blocked thread ([`Doorbell::wait_timeout`]) or by async code
//! ([`Doorbell::rung`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Default)]
struct Bell {
    /// Whether the bell rang since the last wait consumed it, and the waker of
    /// an async waiter. Held only to flip the flag or swap the waker.
    state: Mutex<BellState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct BellState {
    rung: bool,
    waker: Option<Waker>,
}

/// A wake-up signal shared between waiters and the partitions they watch.
///
/// Cheap to clone; clones ring and wait together. A ring that happens while
/// nobody waits is remembered until the next wait consumes it, so a waiter
/// that checks for data and then waits never misses a ring in between.
#[derive(Debug, Clone, Default)]
pub struct Doorbell {
    bell: Arc<Bell>,
}

impl Doorbell {
    /// A new doorbell, not rung.
    pub fn new() -> Doorbell {
        Doorbell::default()
    }

    /// Rings: wakes the waiter, or lets the next wait return at once.
    pub fn ring(&self) {
        let waker = {
            let mut s = self.bell.state.lock();
            s.rung = true;
            s.waker.take()
        };
        self.bell.cv.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Blocks until the bell rings or `timeout` passes; returns whether it rang.
    /// Consumes the ring.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut s = self.bell.state.lock();
        while !s.rung {
            match deadline {
                Some(d) => {
                    if self.bell.cv.wait_until(&mut s, d).timed_out() {
                        break;
                    }
                }
                None => self.bell.cv.wait(&mut s),
            }
        }
        std::mem::take(&mut s.rung)
    }

    /// Clears a pending ring without waiting.
    pub fn reset(&self) {
        self.bell.state.lock().rung = false;
    }

    /// A future that completes when the bell rings (consuming the ring).
    pub fn rung(&self) -> Rung<'_> {
        Rung { bell: self }
    }
}

/// Future returned by [`Doorbell::rung`].
#[derive(Debug)]
pub struct Rung<'a> {
    bell: &'a Doorbell,
}

impl Future for Rung<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.bell.bell.state.lock();
        if std::mem::take(&mut s.rung) {
            return Poll::Ready(());
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Unsubscribes on drop (also when `ready` fails or panics).
struct Subscribed<'a> {
    watchers: &'a Watchers,
    id: u64,
}

impl Drop for Subscribed<'_> {
    fn drop(&mut self) {
        self.watchers.unsubscribe(self.id);
    }
}

/// The doorbells subscribed to one partition.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    /// Number of subscriptions; lets the append path skip the lock when zero.
    count: AtomicUsize,
    /// Subscribed bells. Held to add, remove, or ring them all (no I/O).
    list: Mutex<Vec<(u64, Doorbell)>>,
    next_id: AtomicUsize,
}

impl Watchers {
    /// Subscribes `bell`; it is rung on every change until the returned id is
    /// passed to [`Watchers::unsubscribe`].
    pub(crate) fn subscribe(&self, bell: &Doorbell) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        self.list.lock().push((id, bell.clone()));
        // Pairs with the fence in `notify` (a store-load handshake): either the
        // notifier sees this subscription, or the subscriber's next check sees
        // the new end offset. The fence after the increment is needed: the
        // check is an acquire load, not SeqCst, and without a fence on this
        // side the language's memory model allows both sides to miss each
        // other (found by the loom model check, `loom_a_waiter_never_misses_*`).
        self.count.fetch_add(1, Ordering::SeqCst);
        crate::sync::atomic::fence(Ordering::SeqCst);
        id
    }

    /// Removes a subscription.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut list = self.list.lock();
        if let Some(i) = list.iter().position(|(x, _)| *x == id) {
            list.swap_remove(i);
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The waiter's half of the protocol: blocks until `ready` holds (or
    /// fails), or `deadline` passes; returns whether it held. Checks, then
    /// subscribes a doorbell, then checks again before each wait, so a change
    /// published (and [`notify`](Self::notify)d) at any moment is never
    /// missed: either the notifier sees the subscription, or the check after
    /// subscribing sees the change. Model-checked by the loom tests below.
    pub(crate) fn wait_until<E>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Result<bool, E>,
    ) -> Result<bool, E> {
        if ready()? {
            return Ok(true);
        }
        let bell = Doorbell::new();
        let sub = Subscribed {
            watchers: self,
            id: self.subscribe(&bell),
        };
        loop {
            if ready()? {
                return Ok(true);
            }
            let remaining = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if remaining.is_zero() {
                drop(sub);
                return Ok(false);
            }
            bell.wait_timeout(remaining);
        }
    }

    /// Rings every subscribed doorbell. Called after the end offset moved.
    pub(crate) fn notify(&self) {
        crate::sync::atomic::fence(Ordering::SeqCst);
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        for (_, bell) in self.list.lock().iter() {
            bell.ring();
        }
    }
}

/// Model checks of the waiting protocol with loom:
/// `RUSTFLAGS="--cfg moldau_loom" cargo test --release --lib loom`. Every
/// interleaving (up to loom's preemption bound) of a publisher and a waiter
/// is run; a lost wake-up is a deadlock loom reports, and a read of data the
/// publication did not make visible is a causality violation it reports.
#[cfg(all(test, moldau_loom))]
#[allow(
    unsafe_code,
    reason = "loom's UnsafeCell, to check what the publication makes visible"
)]
mod loom_tests {
    use super::*;
    use crate::sync::atomic::AtomicU64;
    use loom::cell::UnsafeCell;
    use loom::thread;

    /// A partition's published end, reduced to what the protocol touches: a
    /// record written before the end moves, the end (stored with release,
    /// loaded with acquire, as `PartitionLog` does), and its watchers.
    #[derive(Default)]
    struct Partition {
        record: UnsafeCell<u64>,
        end: AtomicU64,
        watchers: Watchers,
    }

    impl Partition {
        /// What `PartitionLog::write` does: write, publish the end
        /// (release), then notify outside the writer's lock.
        fn append(&self, end: u64, value: u64) {
            // SAFETY: only this writer writes, before publishing; loom
            // reports any read not ordered after the write.
            self.record.with_mut(|r| unsafe { *r = value });
            self.end.store(end, Ordering::Release);
            self.watchers.notify();
        }

        /// What `PartitionLog::wait_for` does, then a read of the record.
        fn wait_and_read(&self, past: u64) -> u64 {
            let ok: Result<bool, ()> = self
                .watchers
                .wait_until(None, || Ok(self.end.load(Ordering::Acquire) > past));
            assert_eq!(ok, Ok(true));
            // SAFETY: read after the acquire load that saw the end the
            // write was published with; loom checks that ordering.
            self.record.with(|r| unsafe { *r })
        }
    }

    #[test]
    fn loom_a_ring_is_never_lost() {
        loom::model(|| {
            let bell = Doorbell::new();
            let ringer = bell.clone();
            let t = thread::spawn(move || ringer.ring());
            assert!(bell.wait_timeout(Duration::MAX));
            t.join().unwrap();
        });
    }

    /// Regression: without a SeqCst fence after the subscription count's
    /// increment in `Watchers::subscribe`, loom found an interleaving where
    /// the notifier read a count of 0 and the waiter the old end: a lost
    /// wake-up (the waiter slept until its timeout).
    #[test]
    fn loom_a_waiter_never_misses_the_published_end_and_sees_its_record() {
        loom::model(|| {
            let p = Arc::new(Partition::default());
            let writer = Arc::clone(&p);
            let t = thread::spawn(move || writer.append(1, 42));
            assert_eq!(p.wait_and_read(0), 42);
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_two_appends_wake_a_waiter_for_the_second() {
        loom::model(|| {
            let p = Arc::new(Partition::default());
            let writer = Arc::clone(&p);
            let t = thread::spawn(move || {
                writer.append(1, 1);
                writer.append(2, 2);
            });
            assert_eq!(p.wait_and_read(1), 2);
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_an_async_waiter_is_woken() {
        loom::model(|| {
            let bell = Doorbell::new();
            let ringer = bell.clone();
            let t = thread::spawn(move || ringer.ring());
            loom::future::block_on(bell.rung());
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_unsubscribing_while_notifying_leaves_nothing_behind() {
        loom::model(|| {
            let w = Arc::new(Watchers::default());
            let bell = Doorbell::new();
            let id = w.subscribe(&bell);
            let notifier = Arc::clone(&w);
            let t = thread::spawn(move || notifier.notify());
            w.unsubscribe(id);
            t.join().unwrap();
            assert_eq!(w.count.load(Ordering::SeqCst), 0);
            assert!(w.list.lock().is_empty());
        });
    }
}
