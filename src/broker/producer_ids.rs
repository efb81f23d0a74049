//! Idempotent producers: InitProducerId hands out producer ids, and each
//! partition remembers the last batches of each producer to drop duplicates.
//!
//! The state is in memory only: after a restart a producer's first batch is
//! accepted at whatever sequence it carries (the duplicate window starts
//! over). Producer ids never repeat across restarts: they count up from the
//! start time in milliseconds times 4096, so a restart starts above every id
//! handed out before unless more than 4096 ids per millisecond of uptime
//! were handed out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::errors::{self, Code};
use super::Shared;
use crate::types::{Offset, TopicPartition};

/// Batches remembered per producer and partition (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
const BATCHES_PER_PRODUCER: usize = 5;
/// Producers remembered per partition; the least recently used goes first.
const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;
/// Ids handed out per millisecond before a restart could repeat one.
const IDS_PER_MS: i64 = 4096;

/// Producer ids and the per-partition duplicate windows.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: AtomicI64,
    /// Each partition's producers. Held only to find or add an entry; the
    /// entry's own lock is held across the append it checks (see
    /// [`PartitionProducers`]).
    partitions: Mutex<HashMap<TopicPartition, Arc<Mutex<PartitionProducers>>>>,
}

/// The idempotent producers of one partition. Its lock is held from the
/// duplicate check through the append and the record of the result, so two
/// batches of one producer cannot both pass the check.
#[derive(Debug, Default)]
pub(crate) struct PartitionProducers {
    producers: HashMap<i64, ProducerState>,
}

#[derive(Debug)]
struct ProducerState {
    epoch: i16,
    /// The last batches appended, oldest first.
    batches: VecDeque<BatchSeq>,
    last_used: Instant,
}

#[derive(Debug, Clone, Copy)]
struct BatchSeq {
    first: i32,
    last: i32,
    base: Offset,
}

/// The producer fields of a batch header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchProducer {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
}

/// What to do with an idempotent batch.
#[derive(Debug)]
pub(crate) enum Check {
    /// New: append it, then [`PartitionProducers::record`] it.
    Append,
    /// Already appended at this base offset: acknowledge, do not append.
    Duplicate(Offset),
}

impl ProducerIds {
    pub(crate) fn new() -> ProducerIds {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        ProducerIds {
            next: AtomicI64::new(ms.saturating_mul(IDS_PER_MS).max(1)),
            partitions: Mutex::new(HashMap::new()),
        }
    }

    fn allocate(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The producers of `tp`.
    pub(crate) fn partition(&self, tp: &TopicPartition) -> Arc<Mutex<PartitionProducers>> {
        let mut map = self.partitions.lock();
        Arc::clone(map.entry(tp.clone()).or_default())
    }
}

impl PartitionProducers {
    /// Checks `b` against what its producer appended before.
    pub(crate) fn check(&self, b: &BatchProducer) -> Result<Check, Code> {
        let Some(state) = self.producers.get(&b.id) else {
            // Unknown producer (new, or from before a restart): accepted.
            return Ok(Check::Append);
        };
        if b.epoch < state.epoch {
            return Err(errors::of(ResponseError::InvalidProducerEpoch));
        }
        if b.epoch > state.epoch {
            return match b.first_seq {
                0 => Ok(Check::Append),
                _ => Err(errors::of(ResponseError::OutOfOrderSequenceNumber)),
            };
        }
        if let Some(dup) = state
            .batches
            .iter()
            .find(|s| s.first == b.first_seq && s.last == b.last_seq)
        {
            return Ok(Check::Duplicate(dup.base));
        }
        match state.batches.back() {
            Some(last) if next_seq(last.last) != b.first_seq => {
                Err(errors::of(ResponseError::OutOfOrderSequenceNumber))
            }
            _ => Ok(Check::Append),
        }
    }

    /// Remembers that `b` was appended at `base`.
    pub(crate) fn record(&mut self, b: &BatchProducer, base: Offset) {
        if !self.producers.contains_key(&b.id)
            && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
        {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.producers.remove(&id);
            }
        }
        let state = self.producers.entry(b.id).or_insert_with(|| ProducerState {
            epoch: b.epoch,
            batches: VecDeque::with_capacity(BATCHES_PER_PRODUCER),
            last_used: Instant::now(),
        });
        if b.epoch != state.epoch {
            state.epoch = b.epoch;
            state.batches.clear();
        }
        if state.batches.len() == BATCHES_PER_PRODUCER {
            state.batches.pop_front();
        }
        state.batches.push_back(BatchSeq {
            first: b.first_seq,
            last: b.last_seq,
            base,
        });
        state.last_used = Instant::now();
    }
}

/// The sequence after `seq`: Kafka's sequences wrap from `i32::MAX` to 0.
fn next_seq(seq: i32) -> i32 {
    seq.checked_add(1).unwrap_or(0)
}

/// The sequence of the batch's last record.
pub(crate) fn last_seq(first: i32, last_offset_delta: i32) -> i32 {
    let sum = i64::from(first) + i64::from(last_offset_delta);
    // In range: the remainder of a non-negative i64 by 2^31.
    (sum.rem_euclid(i64::from(i32::MAX) + 1)) as i32
}

/// InitProducerId: a new producer id at epoch 0, or the next epoch of the
/// caller's id when it asks to bump it (v3+). Transactions are not supported.
pub(crate) fn handle(shared: &Arc<Shared>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default();
    // Null (or empty) means an idempotent, non-transactional producer.
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        return resp
            .with_error_code(errors::of(ResponseError::InvalidRequest))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let (id, epoch) = match (req.producer_id.0, req.producer_epoch) {
        (id, epoch) if id >= 0 && (0..i16::MAX - 1).contains(&epoch) => (id, epoch + 1),
        _ => (shared.producers.allocate(), 0),
    };
    resp.with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: i64, epoch: i16, first: i32, n: i32) -> BatchProducer {
        BatchProducer {
            id,
            epoch,
            first_seq: first,
            last_seq: last_seq(first, n - 1),
        }
    }

    #[test]
    fn duplicates_get_their_offset_and_gaps_are_refused() {
        let mut p = PartitionProducers::default();
        for (i, first) in [0, 3, 6].into_iter().enumerate() {
            let b = batch(7, 0, first, 3);
            assert!(matches!(p.check(&b), Ok(Check::Append)));
            p.record(&b, Offset(100 + i as u64 * 3));
        }
        assert!(matches!(
            p.check(&batch(7, 0, 3, 3)),
            Ok(Check::Duplicate(Offset(103)))
        ));
        assert_eq!(p.check(&batch(7, 0, 10, 1)).unwrap_err(), 45);
        assert_eq!(p.check(&batch(7, -1, 9, 1)).unwrap_err(), 47);
        assert!(matches!(p.check(&batch(7, 1, 0, 1)), Ok(Check::Append)));
        assert!(matches!(p.check(&batch(8, 0, 42, 1)), Ok(Check::Append)));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut p = PartitionProducers::default();
        for i in 0..6 {
            let b = batch(1, 0, i, 1);
            p.record(&b, Offset(i as u64));
        }
        // The first batch fell out of the window: it is now out of order.
        assert_eq!(p.check(&batch(1, 0, 0, 1)).unwrap_err(), 45);
        assert!(matches!(
            p.check(&batch(1, 0, 5, 1)),
            Ok(Check::Duplicate(Offset(5)))
        ));
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(last_seq(i32::MAX, 1), 0);
        assert_eq!(next_seq(i32::MAX), 0);
    }
}
