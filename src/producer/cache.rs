//! The producer's cache of the topics it sends to: found by `&str` without
//! a lock, an allocation or a write to memory other threads use, and
//! replaced when its topic is deleted or grows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::partitioner::StickyPartitioner;
use crate::error::{Error, Result};
use crate::log::{Log, Partition, Topic, OFFSETS_TOPIC};
use crate::types::TopicName;

/// A cached topic: the topic, its partitions when the entry was made, and the
/// sticky partition of its keyless records.
#[derive(Debug)]
pub(super) struct TopicState {
    pub(super) topic: Arc<Topic>,
    /// A copy of the topic's partitions, so a send indexes it without
    /// taking the topic's lock. The entry is replaced when the topic grows.
    pub(super) parts: Arc<[Arc<Partition>]>,
    /// Shared with the entry that replaces this one after growth, so the
    /// sticky partition survives it.
    pub(super) sticky: Arc<StickyPartitioner>,
}

impl TopicState {
    /// Whether the topic still exists with the partitions this entry has.
    fn is_current(&self) -> bool {
        self.topic.check_live().is_ok() && self.topic.partition_count() as usize == self.parts.len()
    }
}

type TopicMap = HashMap<TopicName, Arc<TopicState>, BuildHasherDefault<FxHasher>>;

/// Topics by name.
#[derive(Debug)]
pub(super) struct TopicCache {
    /// The cached topics, replaced whole (copy on write) when an entry is
    /// added or replaced. Every send loads it: `ArcSwap` hands out the map
    /// without a lock and without bumping a reference count other threads
    /// also bump (a read lock and an `Arc` copy were the largest cost of a
    /// send; see BENCHMARKS.md).
    topics: ArcSwap<TopicMap>,
    /// Serializes refreshes, so that two senders that find an entry missing
    /// do not both copy the map; held while a topic is looked up in the log.
    refresh: Mutex<()>,
    /// Bytes per sticky partition, for new entries.
    batch_size: usize,
}

impl TopicCache {
    pub(super) fn new(batch_size: usize) -> Self {
        TopicCache {
            topics: ArcSwap::default(),
            refresh: Mutex::new(()),
            batch_size,
        }
    }

    /// Runs `f` with the current entry of `name` in `log`, looked up again
    /// if it is not cached or is out of date.
    ///
    /// Errors: [`Error::InvalidTopic`] for a malformed name or the internal
    /// offsets topic, [`Error::UnknownTopic`], [`Error::Closed`], and those
    /// of `f`.
    pub(super) fn with<R>(
        &self,
        log: &Log,
        name: &str,
        f: impl FnOnce(&Arc<TopicState>) -> Result<R>,
    ) -> Result<R> {
        log.inner.check_open()?;
        {
            let topics = self.topics.load();
            if let Some(state) = topics.get(name).filter(|s| s.is_current()) {
                return f(state);
            }
        }
        f(&self.refresh(log, name)?)
    }

    /// Looks `name` up in `log` and caches it; forgets deleted topics.
    fn refresh(&self, log: &Log, name: &str) -> Result<Arc<TopicState>> {
        let name = TopicName::new(name)?;
        if name.as_str() == OFFSETS_TOPIC {
            return Err(Error::InvalidTopic {
                name: name.to_string(),
                reason: "is internal to moldau".into(),
            });
        }
        let _refreshing = self.refresh.lock();
        let current = self.topics.load_full();
        let (topic, sticky) = match current.get(&name) {
            // Another sender refreshed it while this one waited for the lock.
            Some(state) if state.is_current() => return Ok(Arc::clone(state)),
            // The topic grew.
            Some(state) if state.topic.check_live().is_ok() => {
                (Arc::clone(&state.topic), Arc::clone(&state.sticky))
            }
            _ => (
                log.inner.topic(&name)?,
                Arc::new(StickyPartitioner::new(self.batch_size)),
            ),
        };
        let state = Arc::new(TopicState {
            parts: topic.partitions(),
            topic,
            sticky,
        });
        let mut next: TopicMap = current
            .iter()
            .filter(|(_, s)| s.topic.check_live().is_ok())
            .map(|(n, s)| (n.clone(), Arc::clone(s)))
            .collect();
        next.insert(name, Arc::clone(&state));
        self.topics.store(Arc::new(next));
        Ok(state)
    }

    /// Every cached entry.
    pub(super) fn all(&self) -> Vec<Arc<TopicState>> {
        self.topics.load().values().cloned().collect()
    }
}

/// rustc's FxHash: a multiply and a rotate per 8 bytes. Topic names are
/// short and the map holds only topics that exist, so a keyed hash (std's
/// SipHash, several times slower on a send's path) buys nothing here.
#[derive(Debug, Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
