//! Waiting for data without spinning: `wait_for` and `Doorbell`s wake on
//! appends (from any subscribed partition, sync or async) and on close.

use std::future::Future;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use moldau::{Doorbell, Error, Offset, PartitionConfig, PartitionLog, Record};

const LONG: Duration = Duration::from_secs(30);
/// A woken waiter must return well before `LONG`.
const PROMPT: Duration = Duration::from_secs(10);

fn open(dir: &std::path::Path) -> Arc<PartitionLog> {
    Arc::new(PartitionLog::open(dir, PartitionConfig::default()).unwrap())
}

#[test]
fn returns_at_once_when_data_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.append(&[Record::new("a")]).unwrap();
    let t = Instant::now();
    assert!(log.wait_for(Offset(0), LONG).unwrap());
    assert!(t.elapsed() < PROMPT);
}

#[test]
fn times_out_without_data() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let t = Instant::now();
    assert!(!log.wait_for(Offset(0), Duration::from_millis(50)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn append_wakes_many_waiters() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let ready = Arc::new(Barrier::new(9));
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let (log, ready) = (Arc::clone(&log), Arc::clone(&ready));
            thread::spawn(move || {
                ready.wait();
                let t = Instant::now();
                let woke = log.wait_for(Offset(0), LONG).unwrap();
                (woke, t.elapsed())
            })
        })
        .collect();
    ready.wait();
    log.append(&[Record::new("wake up")]).unwrap();
    for w in waiters {
        let (woke, took) = w.join().unwrap();
        assert!(woke);
        assert!(took < PROMPT, "{took:?}");
    }
}

#[test]
fn one_doorbell_watches_three_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let logs: Vec<_> = (0..3)
        .map(|i| open(&tmp.path().join(format!("p-{i}"))))
        .collect();
    let bell = Doorbell::new();
    let _subs: Vec<_> = logs.iter().map(|l| l.subscribe(&bell)).collect();
    for (i, log) in logs.iter().enumerate() {
        bell.reset();
        let (b, l) = (bell.clone(), Arc::clone(log));
        let appender = thread::spawn(move || {
            l.append(&[Record::new(format!("to {i}"))]).unwrap();
            drop(b);
        });
        let t = Instant::now();
        assert!(bell.wait_timeout(LONG), "partition {i}");
        assert!(t.elapsed() < PROMPT);
        appender.join().unwrap();
    }
    // No append: no ring.
    bell.reset();
    assert!(!bell.wait_timeout(Duration::from_millis(20)));
}

/// A minimal executor: polls the future, parking the thread until its waker
/// unparks it.
fn block_on<F: Future>(fut: F, timeout: Duration) -> Option<F::Output> {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::park_timeout(left);
    }
}

#[test]
fn async_rung_completes_after_append() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let bell = Doorbell::new();
    let _sub = log.subscribe(&bell);
    let appender = {
        let log = Arc::clone(&log);
        thread::spawn(move || {
            // The main thread is (or will be) parked in `block_on`.
            log.append(&[Record::new("async")]).unwrap();
        })
    };
    let t = Instant::now();
    assert_eq!(block_on(bell.rung(), LONG), Some(()));
    assert!(t.elapsed() < PROMPT);
    appender.join().unwrap();
    assert_eq!(log.end_offset(), Offset(1));
    // Without another append the future stays pending.
    assert_eq!(block_on(bell.rung(), Duration::from_millis(20)), None);
}

#[test]
fn close_wakes_blocked_waiters() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let ready = Arc::new(Barrier::new(5));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (log, ready) = (Arc::clone(&log), Arc::clone(&ready));
            thread::spawn(move || {
                ready.wait();
                let t = Instant::now();
                let r = log.wait_for(Offset(0), LONG);
                (r, t.elapsed())
            })
        })
        .collect();
    ready.wait();
    log.close().unwrap();
    for w in waiters {
        let (r, took) = w.join().unwrap();
        assert!(matches!(r, Err(Error::Closed { .. }) | Ok(false)), "{r:?}");
        assert!(took < PROMPT, "{took:?}");
    }
}
