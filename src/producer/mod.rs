//! The producer: partitioning and batching of sends.
//!
//! A [`Producer`] picks a partition for each record (Kafka's murmur2 of the
//! key, or a sticky partition for keyless records), stamps it, and appends it
//! through the partition's [`Combiner`], which merges concurrent sends into
//! one batch. It caches the topics it sends to, so a send allocates nothing
//! beyond what the append itself needs.

mod cache;
mod combiner;
pub(crate) mod partitioner;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cache::{TopicCache, TopicState};
pub(crate) use combiner::{approx_size, batch_len, BatchLimits, Combiner};
use partitioner::partition_for_key;

use crate::error::{Error, Result};
use crate::log::{Log, Partition, Topic};
use crate::record::{self, Record};
use crate::types::{Offset, PartitionId, Timestamp, TopicName};

/// Configuration of a [`Producer`].
///
/// ```
/// use std::time::Duration;
/// use moldau::ProducerConfig;
/// let config = ProducerConfig { linger: Duration::from_millis(2), ..Default::default() };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// How long a send that finds other sends queued on its partition waits
    /// for more to combine into one batch (Kafka's `linger.ms`).
    ///
    /// Default 0, unlike Kafka 4's 5 ms: [`Producer::send`] returns only once
    /// its record is in the log, so a linger would add its whole length to
    /// every send from a lone thread. With 0, sends are still combined
    /// whenever they arrive while the partition's writer is busy.
    pub linger: Duration,
    /// Most bytes (estimated from keys, values and headers) per batch, and
    /// the bytes of keyless records that go to one sticky partition before
    /// the next is chosen (Kafka's `batch.size`). Default 16384; at least 1.
    pub batch_size: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            linger: Duration::ZERO,
            batch_size: 16384,
        }
    }
}

impl ProducerConfig {
    /// Checks every limit; called by [`Log::producer`].
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidConfig {
                field: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Where a sent record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: TopicName,
    /// The partition the record went to.
    pub partition: PartitionId,
    /// The record's offset in that partition.
    pub offset: Offset,
    /// The record's stored timestamp: the one it was sent with, or the time
    /// of the send (create time).
    pub timestamp: Timestamp,
}

/// Sends records to the topics of a [`Log`]; made by [`Log::producer`].
///
/// `Send + Sync` and cheap to clone (an `Arc` inside): clones share one
/// topic cache and one sticky partition per topic, and threads that send to
/// one partition at once have their records combined into one batch.
///
/// ```
/// use moldau::{Log, LogConfig, ProducerConfig, Record};
/// # let tmp = tempfile::tempdir()?;
/// let log = Log::open(tmp.path(), LogConfig::default())?;
/// log.create_topic("orders", 3, None)?;
/// let producer = log.producer(ProducerConfig::default())?;
/// let sent = producer.send("orders", Record::new("42.00 EUR").with_key("alice"))?;
/// // The partition Kafka's Java client would choose for the key.
/// assert_eq!(Some(sent.partition), moldau::partition_for_key(b"alice", 3));
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    log: Log,
    limits: BatchLimits,
    /// The topics sent to.
    topics: TopicCache,
}

impl Log {
    /// A producer for this log's topics.
    ///
    /// Errors: [`Error::InvalidConfig`], [`Error::Closed`].
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        self.inner.check_open()?;
        Ok(Producer {
            inner: Arc::new(Shared {
                log: self.clone(),
                limits: BatchLimits {
                    batch_size: config.batch_size,
                    linger: config.linger,
                },
                topics: TopicCache::new(config.batch_size),
            }),
        })
    }
}

impl Producer {
    /// Sends `record` to `topic` and returns where it was stored.
    ///
    /// A keyed record goes to [`partition_for_key`] of its key, as with
    /// Kafka's Java client; a keyless one to the topic's sticky partition,
    /// which changes after [`ProducerConfig::batch_size`] bytes. A record
    /// without a timestamp is stamped with the log's clock.
    ///
    /// Returns once the record is in the log: readable, and durable if the
    /// topic's flush policy says so (see [`Producer::flush`] otherwise).
    ///
    /// Errors: [`Error::InvalidTopic`] for a malformed name or the internal
    /// `__consumer_offsets`; [`Error::UnknownTopic`] for a topic that does
    /// not exist (or was deleted); [`Error::RecordTooLarge`]; [`Error::Closed`]
    /// after [`Log::close`]; [`Error::Io`] and [`Error::Poisoned`] from the
    /// partition. On error nothing is appended.
    pub fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        let shared = &self.inner;
        shared.topics.with(&shared.log, topic, |state| {
            let p = state.pick(&record)?;
            shared.send_one(&state.topic, state.nth(p)?, record)
        })
    }

    /// Sends `record` to partition `partition` of `topic`.
    ///
    /// Errors: as [`Producer::send`], and [`Error::UnknownPartition`] if the
    /// topic has no such partition.
    pub fn send_to(
        &self,
        topic: &str,
        partition: PartitionId,
        record: Record,
    ) -> Result<RecordMetadata> {
        let shared = &self.inner;
        shared.topics.with(&shared.log, topic, |state| {
            shared.send_one(&state.topic, state.nth(partition)?, record)
        })
    }

    /// Sends `records` to `topic`, partitioned as by [`Producer::send`], and
    /// returns their metadata in input order.
    ///
    /// The records of each partition are appended in input order, in batches
    /// of at most [`ProducerConfig::batch_size`] bytes (at least one record
    /// each). Every record is checked against the topic's `max_record_bytes`
    /// before anything is appended, so [`Error::RecordTooLarge`] appends
    /// nothing; an I/O failure or a deletion of the topic midway leaves the
    /// batches appended before it in the log.
    pub fn send_batch(&self, topic: &str, records: Vec<Record>) -> Result<Vec<RecordMetadata>> {
        self.send_batch_as(topic, None, records)
    }

    /// Sends `records` to partition `partition` of `topic`, in input order,
    /// as [`Producer::send_batch`] does (batches of at most
    /// [`ProducerConfig::batch_size`] bytes, every record checked against
    /// `max_record_bytes` first).
    ///
    /// Errors: as [`Producer::send_batch`], and [`Error::UnknownPartition`]
    /// if the topic has no such partition (then nothing is appended).
    pub fn send_batch_to(
        &self,
        topic: &str,
        partition: PartitionId,
        records: Vec<Record>,
    ) -> Result<Vec<RecordMetadata>> {
        self.send_batch_as(topic, Some(partition), records)
    }

    /// `send_batch` to `partition`, or partitioned by key if `None`.
    fn send_batch_as(
        &self,
        topic: &str,
        partition: Option<PartitionId>,
        mut records: Vec<Record>,
    ) -> Result<Vec<RecordMetadata>> {
        let state = self.inner.topic_state(topic)?;
        if let Some(p) = partition {
            state.nth(p)?;
        }
        let now = self.inner.log.inner.config.clock.now();
        let max = state.topic.max_record_bytes();
        for r in &mut records {
            r.timestamp.get_or_insert(now);
            check_fits_alone(r, max)?;
        }
        // One partition for the whole batch is the common case (a
        // 1-partition topic, an explicit partition, or keyless records that
        // stick): it appends straight from `records`, with no regrouping.
        let one = match partition {
            Some(p) => Ok(p),
            None if state.parts.len() == 1 => Ok(PartitionId(0)),
            None => {
                let picks = records
                    .iter()
                    .map(|r| state.pick(r))
                    .collect::<Result<Vec<_>>>()?;
                match picks.first() {
                    Some(&p) if picks.iter().all(|&q| q == p) => Ok(p),
                    _ => Err(picks),
                }
            }
        };
        match one {
            Ok(p) => {
                let mut out = Vec::with_capacity(records.len());
                self.append_chunks(&state, p, &records, |r, offset| {
                    out.push(state.metadata(p, offset, r));
                })?;
                Ok(out)
            }
            Err(picks) => self.send_grouped(&state, records, picks),
        }
    }

    /// Appends records bound for several partitions: each partition's
    /// records in input order, one partition after another.
    fn send_grouped(
        &self,
        state: &TopicState,
        records: Vec<Record>,
        picks: Vec<PartitionId>,
    ) -> Result<Vec<RecordMetadata>> {
        // Each partition's records with their input positions, in input order.
        let mut groups: BTreeMap<PartitionId, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
        for (i, (r, p)) in records.into_iter().zip(&picks).enumerate() {
            let (idx, recs) = groups.entry(*p).or_default();
            idx.push(i);
            recs.push(r);
        }
        let mut out: Vec<Option<RecordMetadata>> = vec![None; picks.len()];
        for (p, (idx, recs)) in groups {
            let mut idx = idx.into_iter();
            self.append_chunks(state, p, &recs, |r, offset| {
                if let Some(i) = idx.next() {
                    out[i] = Some(state.metadata(p, offset, r));
                }
            })?;
        }
        // Every input position belongs to exactly one group, filled above.
        Ok(out.into_iter().flatten().collect())
    }

    /// Appends `records` to partition `p` in batches of at most the
    /// producer's `batch_size`, calling `appended` with each record and its
    /// offset, in order, once its batch is in the log.
    fn append_chunks(
        &self,
        state: &TopicState,
        p: PartitionId,
        records: &[Record],
        mut appended: impl FnMut(&Record, Offset),
    ) -> Result<()> {
        let part = state.nth(p)?;
        for chunk in Chunks::new(records, self.inner.limits.batch_size) {
            let base = part.log.append(chunk).map_err(|e| state.topic.map_err(e))?;
            for (k, r) in chunk.iter().enumerate() {
                appended(r, base.plus(k as u64));
            }
        }
        Ok(())
    }

    /// fsyncs every partition of the topics this producer has sent to, so
    /// that sends become durable under a flush policy that does not make them
    /// so by itself ([`FlushPolicy::Never`](crate::FlushPolicy::Never), the
    /// default). Sends have already put their records in the log, readable;
    /// this adds only durability. Deleted topics are skipped.
    pub fn flush(&self) -> Result<()> {
        self.inner.log.inner.check_open()?;
        for state in self.inner.topics.all() {
            let topic = &state.topic;
            if topic.check_live().is_err() {
                continue;
            }
            for p in topic.partitions().iter() {
                match p.log.flush().map_err(|e| topic.map_err(e)) {
                    Err(Error::UnknownTopic { .. }) => break,
                    other => other?,
                }
            }
        }
        Ok(())
    }
}

impl Shared {
    /// The cached state of topic `name`.
    fn topic_state(&self, name: &str) -> Result<Arc<TopicState>> {
        self.topics
            .with(&self.log, name, |state| Ok(Arc::clone(state)))
    }

    /// Stamps `record` and appends it to `part` of `topic` through the
    /// partition's combiner.
    fn send_one(
        &self,
        topic: &Topic,
        part: &Partition,
        mut record: Record,
    ) -> Result<RecordMetadata> {
        // Stamped here rather than by the append, so the caller learns the
        // stored timestamp.
        let timestamp = *record
            .timestamp
            .get_or_insert_with(|| self.log.inner.config.clock.now());
        let offset = part
            .combiner
            .send(&part.log, record, self.limits)
            .map_err(|e| topic.map_err(e))?;
        Ok(RecordMetadata {
            topic: topic.name.clone(),
            partition: part.tp.partition,
            offset,
            timestamp,
        })
    }
}

impl TopicState {
    /// The partition for `record`: by key, or sticky.
    fn pick(&self, record: &Record) -> Result<PartitionId> {
        let count = u32::try_from(self.parts.len()).unwrap_or(u32::MAX);
        let p = match record.key.as_deref() {
            Some(key) => partition_for_key(key, count),
            None if count > 0 => Some(self.sticky.partition(count, approx_size(record))),
            None => None,
        };
        // Topics have at least one partition; were one to have none, that
        // is an unknown partition, not a panic.
        p.ok_or_else(|| self.unknown_partition(PartitionId(0)))
    }

    /// What a send reports for `record`, stored at `offset` of `partition`
    /// (its timestamp was stamped before the append).
    fn metadata(&self, partition: PartitionId, offset: Offset, record: &Record) -> RecordMetadata {
        RecordMetadata {
            topic: self.topic.name.clone(),
            partition,
            offset,
            timestamp: record.timestamp.unwrap_or_default(),
        }
    }

    /// Partition `p`, or [`Error::UnknownPartition`].
    fn nth(&self, p: PartitionId) -> Result<&Partition> {
        self.parts
            .get(p.0 as usize)
            .map(|part| &**part)
            .ok_or_else(|| self.unknown_partition(p))
    }

    fn unknown_partition(&self, p: PartitionId) -> Error {
        Error::UnknownPartition {
            topic: self.topic.name.to_string(),
            partition: p.0,
            partitions: u32::try_from(self.parts.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Refuses a record that alone makes a batch larger than `max` bytes (a
/// record that fits a batch alone fits some batch of `append`). The
/// estimate `approx_size` over-counts a lone record's framing, so only a
/// record near the limit is planned exactly.
fn check_fits_alone(r: &Record, max: u64) -> Result<()> {
    let max_bytes = usize::try_from(max).unwrap_or(usize::MAX);
    if record::RECORDS_OFFSET.saturating_add(approx_size(r)) <= max_bytes {
        return Ok(());
    }
    match record::plan_batch(std::slice::from_ref(r), Timestamp(0), max_bytes) {
        Ok(_) => Ok(()),
        Err(size) => Err(Error::RecordTooLarge {
            size: size as u64,
            max,
        }),
    }
}

/// Splits records into runs of at most `batch_size` estimated bytes, each
/// holding at least one record.
struct Chunks<'a> {
    rest: &'a [Record],
    batch_size: usize,
}

impl<'a> Chunks<'a> {
    fn new(records: &'a [Record], batch_size: usize) -> Self {
        Chunks {
            rest: records,
            batch_size,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [Record];

    fn next(&mut self) -> Option<&'a [Record]> {
        if self.rest.is_empty() {
            return None;
        }
        let n = batch_len(self.rest.iter().map(approx_size), self.batch_size);
        let (chunk, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_size_check_agrees_with_the_exact_plan() {
        for len in [0usize, 1, 100, 127, 128, 1000, 16_383, 16_384, 70_000] {
            let plain = Record::new(vec![0u8; len]).with_timestamp(Timestamp(5));
            let keyed = plain.clone().with_key(vec![2u8; len / 2]);
            let headed = keyed.clone().with_header("h", vec![1u8; 300]);
            for r in [plain, keyed, headed] {
                let exact = record::plan_batch(std::slice::from_ref(&r), Timestamp(0), usize::MAX)
                    .unwrap()
                    .size;
                for max in [exact - 1, exact, exact + 1, exact + 40] {
                    assert_eq!(
                        check_fits_alone(&r, max as u64).is_ok(),
                        exact <= max,
                        "value {len} bytes, max {max}, exact {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunks_respect_batch_size_and_take_at_least_one() {
        let small = Record::new(vec![0u8; 10]);
        let big = Record::new(vec![0u8; 1000]);
        let records = vec![small.clone(), small.clone(), big, small.clone()];
        let each = approx_size(&small);
        let sizes: Vec<usize> = Chunks::new(&records, 2 * each).map(<[_]>::len).collect();
        assert_eq!(sizes, [2, 1, 1]);
        assert_eq!(Chunks::new(&[], 1).count(), 0);
    }

    #[test]
    fn zero_batch_size_is_refused() {
        let config = ProducerConfig {
            batch_size: 0,
            ..ProducerConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "batch_size",
                ..
            })
        ));
    }
}
