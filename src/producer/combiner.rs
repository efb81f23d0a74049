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
use crate::partition::{PartitionLog, Unsynced};
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

/// What a combiner appends to: a partition's append in its two halves, so
/// that leadership can be released between the write and the fsync.
pub(crate) trait Appender {
    /// Records written and readable, the flush policy not yet applied.
    type Pending;
    /// Writes `records`; see [`PartitionLog::append_unsynced`].
    fn append_unsynced(&self, records: &[Record]) -> Result<Self::Pending>;
    /// Whether [`Appender::finish_append`] will fsync.
    fn sync_due(pending: &Self::Pending) -> bool;
    /// Applies the flush policy; returns the first offset written.
    fn finish_append(&self, pending: Self::Pending) -> Result<Offset>;
}

impl Appender for PartitionLog {
    type Pending = Unsynced;

    fn append_unsynced(&self, records: &[Record]) -> Result<Unsynced> {
        PartitionLog::append_unsynced(self, records)
    }

    fn sync_due(pending: &Unsynced) -> bool {
        pending.sync_due
    }

    fn finish_append(&self, pending: Unsynced) -> Result<Offset> {
        PartitionLog::finish_append(self, pending)
    }
}

impl Combiner {
    /// Appends `record` to `log`, combined with concurrent sends; returns its offset.
    ///
    /// Panic-safe: if an append unwinds in a leader, the panic goes on in the
    /// leader's thread, the other records of its batch go back to their
    /// senders, which append them alone, and leadership is released, so no
    /// sender waits forever on a batch that never finishes.
    pub(crate) fn send<A: Appender>(
        &self,
        log: &A,
        record: Record,
        limits: BatchLimits,
    ) -> Result<Offset> {
        if limits.linger.is_zero() && self.waiting.load(SeqCst) == 0 && self.acquire() {
            // Idle partition: append now. Released before the fsync (if
            // the flush policy wants one), so the next sender can append
            // while it runs and share the following one. The guard releases
            // even if the append unwinds.
            let result = {
                let _busy = Busy(self);
                log.append_unsynced(std::slice::from_ref(&record))
            };
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
                    let pending = log.append_unsynced(std::slice::from_ref(&record))?;
                    return log.finish_append(pending);
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
    fn lead<'a, A: Appender>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        log: &A,
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
        let mut batch = InFlight {
            combiner: self,
            tickets: Vec::with_capacity(n),
            records: Vec::with_capacity(n),
            released: false,
        };
        for q in st.queue.drain(..n) {
            batch.tickets.push(q.ticket);
            batch.records.push(q.record);
        }
        st.queued_bytes = st.queue.iter().map(|q| q.bytes).sum();
        self.waiting.store(st.queue.len(), SeqCst);
        drop(st);
        // With an fsync to wait for, `busy` goes before it: the next leader
        // appends its batch while this one's fsync runs, and the partition's
        // group commit then covers both batches with one fsync. Held
        // throughout the fsync, no other append could join it, and a syncer
        // gathering appenders would wait for ones that cannot come.
        let result = log.append_unsynced(&batch.records).and_then(|pending| {
            if A::sync_due(&pending) {
                self.release();
                batch.released = true;
            }
            log.finish_append(pending)
        });
        let mut st = self.state.lock();
        // Disarmed: the outcomes are handed out here.
        let tickets = std::mem::take(&mut batch.tickets);
        let records = std::mem::take(&mut batch.records);
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
        self.finish_batch(batch.released);
        st
    }

    /// Frees leadership after a batch (unless `released` before its fsync)
    /// and wakes the senders waiting on it. Called with `state` locked,
    /// after the batch's outcomes are in.
    fn finish_batch(&self, released: bool) {
        if !released {
            self.busy.store(false, SeqCst);
        }
        self.epoch.fetch_add(1, SeqCst);
        self.done.notify_all();
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

/// Holds `busy` for an append outside the queue; releases it when dropped,
/// also when the append unwinds.
struct Busy<'a>(&'a Combiner);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A leader's batch while it is being appended. Emptied when the outcomes
/// are handed out; if the append unwinds instead, dropping it hands each
/// record back to its sender (which appends it alone) and frees leadership.
struct InFlight<'a> {
    combiner: &'a Combiner,
    tickets: Vec<u64>,
    records: Vec<Record>,
    /// Leadership already went before the fsync (another leader may hold
    /// `busy` now).
    released: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let mut st = self.combiner.state.lock();
        // The unwinding leader's own record, if in this batch, leaves an
        // outcome nobody collects: a small leak, only after a panic.
        // If the unwinding happened in the fsync half, the records are in
        // the log but unacknowledged, and their senders' retries append them
        // again: a duplicate, only after a panic, never a hang.
        for (t, r) in self.tickets.drain(..).zip(self.records.drain(..)) {
            st.outcomes.insert(t, Outcome::Failed(r));
        }
        self.combiner.finish_batch(self.released);
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::{Arc, Barrier};

    use super::*;

    /// Numbers records in order; panics on a record "boom", in the write
    /// half, or in the fsync half when `panic_in_sync`.
    #[derive(Default)]
    struct Numbering {
        next: Mutex<u64>,
        panic_in_sync: bool,
    }

    impl Appender for Numbering {
        /// First offset, and whether the batch holds a "boom".
        type Pending = (Offset, bool);

        fn append_unsynced(&self, records: &[Record]) -> Result<(Offset, bool)> {
            let boom = records.iter().any(|r| r.value.as_deref() == Some(b"boom"));
            if boom && !self.panic_in_sync {
                panic!("injected append panic");
            }
            std::thread::yield_now();
            let mut n = self.next.lock();
            let base = *n;
            *n += records.len() as u64;
            Ok((Offset(base), boom))
        }

        fn sync_due(_: &(Offset, bool)) -> bool {
            true
        }

        fn finish_append(&self, (base, boom): (Offset, bool)) -> Result<Offset> {
            if boom {
                panic!("injected fsync panic");
            }
            Ok(base)
        }
    }

    /// A panicking append used to leave `busy` set (and a leader's batch
    /// without outcomes), so every later sender to the partition waited
    /// forever: the hang of a crash-suite run whose appender panicked (seed
    /// 1592590361). Checked with the panic in either half of the append.
    #[test]
    fn a_panicking_append_does_not_strand_other_senders() {
        for panic_in_sync in [false, true] {
            let log = Arc::new(Numbering {
                panic_in_sync,
                ..Numbering::default()
            });
            let combiner = Arc::new(Combiner::default());
            let limits = BatchLimits {
                batch_size: 1 << 20,
                linger: Duration::ZERO,
            };
            let threads = 8;
            let per_thread = 200;
            let start = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (combiner, log, start) =
                        (Arc::clone(&combiner), Arc::clone(&log), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        let mut offsets = Vec::new();
                        let mut panics = 0;
                        for i in 0..per_thread {
                            let boom = t == 0 && i % 50 == 7;
                            let record = Record::new(if boom { "boom" } else { "ok" });
                            let sent = catch_unwind(AssertUnwindSafe(|| {
                                combiner.send(&*log, record, limits)
                            }));
                            match sent {
                                Ok(result) => {
                                    assert!(!boom, "a panicking record was acknowledged");
                                    offsets.push(result.expect("append succeeds"));
                                }
                                Err(_) => panics += 1,
                            }
                        }
                        (offsets, panics)
                    })
                })
                .collect();
            let mut offsets = Vec::new();
            let mut panics = 0;
            for h in handles {
                let (o, p) = h.join().expect("sender thread");
                offsets.extend(o);
                panics += p;
            }
            // Every send returned (none hung): each "boom" send panicked in
            // its own sender (a leader whose batch held one panics too, as
            // the thread that ran the append); every other send got an offset,
            // each a different one.
            assert!(panics >= per_thread / 50);
            assert_eq!(offsets.len() + panics, threads * per_thread);
            offsets.sort();
            offsets.dedup();
            assert_eq!(offsets.len() + panics, threads * per_thread);
            assert!(!combiner.busy.load(SeqCst));
        }
    }
}
