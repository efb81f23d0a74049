//! Waiting for new data without spinning: [`Doorbell`]s rung by partitions.
//!
//! A partition keeps a list of subscribed doorbells and rings each when its
//! end offset moves. One doorbell may be subscribed to many partitions, so a
//! consumer of several partitions waits in one place. A doorbell can be waited
//! on by a blocked thread ([`Doorbell::wait_timeout`]) or by async code
//! ([`Doorbell::rung`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

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
        // SeqCst pairs with the fence in `notify`: either the notifier sees this
        // subscription, or the subscriber's next check sees the new end offset.
        self.count.fetch_add(1, Ordering::SeqCst);
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

    /// Rings every subscribed doorbell. Called after the end offset moved.
    pub(crate) fn notify(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        for (_, bell) in self.list.lock().iter() {
            bell.ring();
        }
    }
}
