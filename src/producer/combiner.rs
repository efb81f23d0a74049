//! Combining concurrent sends to one partition into one batch.
//!
//! The first sender to find the partition idle appends its record at once
//! (no queue, no added latency). Senders that arrive while an append is
//! running queue their records; when it finishes, one of them becomes the
//! leader and appends everything queued (up to `batch_size` bytes) as one
//! batch, then hands each sender its offset. So batching grows with
//! contention, and a lone sender never waits for a batch to fill. With
//! `linger > 0` a leader waits up to that long for more records (Kafka's
//! `linger.ms`) before appending.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::Result;
use crate::partition::PartitionLog;
use crate::record::Record;
use crate::types::Offset;

/// Per-record bytes of a batch besides key, value and headers (length,
/// attributes, deltas, varint lengths), an upper estimate.
const RECORD_OVERHEAD_BYTES: usize = 24;

/// How often a queued sender yields the processor, watching for its batch to
/// complete, before it sleeps until woken.
const YIELDS_BEFORE_SLEEP: usize = 16;

/// How many of the leading records, of the given estimated sizes, make one
/// batch of at most `batch_size` bytes: at least one, so a record larger
/// than `batch_size` still goes (alone).
pub(crate) fn batch_len(sizes: impl IntoIterator<Item = usize>, batch_size: usize) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for size in sizes {
        if n > 0 && bytes + size > batch_size {
            break;
        }
        bytes += size;
        n += 1;
    }
    n
}

/// The approximate encoded size of `r`, for batch-size accounting.
pub(crate) fn approx_size(r: &Record) -> usize {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(0, |b| b.len());
    let headers: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + len(&h.value) + 10)
        .sum();
    RECORD_OVERHEAD_BYTES + len(&r.key) + len(&r.value) + headers
}

/// The sends queued on one partition.
#[derive(Debug, Default)]
pub(crate) struct Combiner {
    /// An append (or a lingering leader) is running. Taken with a
    /// compare-exchange, so an idle partition's sender appends without
    /// taking `state`: the two lock round trips it would cost are a large
    /// share of a one-record append.
    busy: AtomicBool,
    /// Records in `state.queue`, readable without the lock. Stored after
    /// each change of the queue; together with `busy` (both `SeqCst`) it
    /// makes sure a queued record always has a leader: a sender that queues
    /// and then sees `busy` set is woken by the sender that clears it, which
    /// loads `waiting` after clearing.
    waiting: AtomicUsize,
    /// Incremented whenever outcomes are handed out or leadership is
    /// released, so a waiter can watch for its turn without the lock.
    epoch: AtomicU64,
    /// Queued records and outcomes. Held only to push, take or hand out;
    /// never during the append itself.
    state: Mutex<State>,
    /// Wakes senders when a batch completes or leadership is free.
    done: Condvar,
    /// Wakes a lingering leader when a batch's worth of records is queued.
    filled: Condvar,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    next_ticket: u64,
    /// Outcomes of queued records whose batch finished: their offset, or the
    /// record handed back to be appended alone after the batch failed.
    outcomes: HashMap<u64, Outcome>,
}

#[derive(Debug)]
struct Queued {
    ticket: u64,
    bytes: usize,
    record: Record,
}

#[derive(Debug)]
enum Outcome {
    Appended(Offset),
    Failed(Record),
}

/// How a leader gathers a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    /// Most bytes (estimated) per combined batch; at least one record is taken.
    pub(crate) batch_size: usize,
    /// How long a leader waits for `batch_size` bytes to queue up.
    pub(crate) linger: Duration,
}

impl Combiner {
    /// Appends `record` to `log`, combined with concurrent sends; returns its offset.
    pub(crate) fn send(
        &self,
        log: &PartitionLog,
        record: Record,
        limits: BatchLimits,
    ) -> Result<Offset> {
        if limits.linger.is_zero() && self.waiting.load(SeqCst) == 0 && self.acquire() {
            // Idle partition: append now. Released before the fsync (if
            // the flush policy wants one), so the next sender can append
            // while it runs and share the following one.
            let result = log.append_unsynced(std::slice::from_ref(&record));
            self.release();
            return log.finish_append(result?);
        }
        let mut st = self.state.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        let bytes = approx_size(&record);
        st.queued_bytes += bytes;
        st.queue.push_back(Queued {
            ticket,
            bytes,
            record,
        });
        self.waiting.store(st.queue.len(), SeqCst);
        if st.queued_bytes >= limits.batch_size {
            self.filled.notify_one();
        }
        loop {
            match st.outcomes.remove(&ticket) {
                Some(Outcome::Appended(offset)) => return Ok(offset),
                Some(Outcome::Failed(record)) => {
                    // The combined batch failed; alone, this record gets its
                    // own answer (an oversized record fails only its sender).
                    drop(st);
                    return log.append(std::slice::from_ref(&record));
                }
                None => {}
            }
            // An empty queue without an outcome means this record is in the
            // running batch, whose leader holds `busy`.
            if !st.queue.is_empty() && self.acquire() {
                st = self.lead(st, log, limits);
                continue;
            }
            // A one-record append takes well under a scheduler time slice:
            // yielding while it runs is much cheaper than sleeping on the
            // condition variable and being woken (two futex calls).
            let epoch = self.epoch.load(SeqCst);
            let changed = MutexGuard::unlocked(&mut st, || {
                (0..YIELDS_BEFORE_SLEEP).any(|_| {
                    std::thread::yield_now();
                    self.epoch.load(SeqCst) != epoch
                })
            });
            if !changed && self.epoch.load(SeqCst) == epoch {
                self.done.wait(&mut st);
            }
        }
    }

    /// Appends one batch of queued records as the leader and records each
    /// outcome. Called with the state locked and `busy` taken by this sender.
    fn lead<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        log: &PartitionLog,
        limits: BatchLimits,
    ) -> MutexGuard<'a, State> {
        if !limits.linger.is_zero() {
            let deadline = Instant::now() + limits.linger;
            while st.queued_bytes < limits.batch_size {
                if self.filled.wait_until(&mut st, deadline).timed_out() {
                    break;
                }
            }
        }
        let n = batch_len(st.queue.iter().map(|q| q.bytes), limits.batch_size);
        let mut tickets = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n);
        for q in st.queue.drain(..n) {
            tickets.push(q.ticket);
            records.push(q.record);
        }
        st.queued_bytes = st.queue.iter().map(|q| q.bytes).sum();
        self.waiting.store(st.queue.len(), SeqCst);
        drop(st);
        // With an fsync to wait for, `busy` goes before it: the next leader
        // appends its batch while this one's fsync runs, and the partition's
        // group commit then covers both batches with one fsync. Held
        // throughout the fsync, no other append could join it, and a syncer
        // gathering appenders would wait for ones that cannot come.
        let mut released = false;
        let result = log.append_unsynced(&records).and_then(|unsynced| {
            if unsynced.sync_due {
                self.release();
                released = true;
            }
            log.finish_append(unsynced)
        });
        let mut st = self.state.lock();
        match result {
            Ok(base) => {
                for (i, t) in tickets.into_iter().enumerate() {
                    st.outcomes
                        .insert(t, Outcome::Appended(base.plus(i as u64)));
                }
            }
            Err(_) => {
                // Each sender retries alone and reports its own error.
                for (t, r) in tickets.into_iter().zip(records) {
                    st.outcomes.insert(t, Outcome::Failed(r));
                }
            }
        }
        if !released {
            self.busy.store(false, SeqCst);
        }
        self.epoch.fetch_add(1, SeqCst);
        self.done.notify_all();
        st
    }

    /// Takes `busy`; false if another sender has it.
    fn acquire(&self) -> bool {
        self.busy
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_ok()
    }

    /// Ends an append run outside the queue; wakes queued senders to lead.
    fn release(&self) {
        self.busy.store(false, SeqCst);
        if self.waiting.load(SeqCst) > 0 {
            self.epoch.fetch_add(1, SeqCst);
            // Under the lock: a sender that saw `busy` set is then already
            // waiting on `done`, and gets this notification.
            let _st = self.state.lock();
            self.done.notify_all();
        }
    }
}
