//! Committed offsets: kept in memory, stored durably as records of the
//! internal topic `__consumer_offsets` in Kafka's own format, reloaded on open.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::offset_codec::{self, CommitKey, CommitValue};
use crate::error::{Error, Result};
use crate::log::Topic;
use crate::record::Record;
use crate::types::{Offset, Timestamp, TopicName, TopicPartition};

/// Bytes read per step while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// A committed offset: the next offset the group will read, with the
/// metadata the committer attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to read (one past the last processed record).
    pub offset: Offset,
    /// Free-form text stored with the commit.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// A commit of `offset` with no metadata.
    pub fn new(offset: Offset) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset,
            metadata: String::new(),
        }
    }
}

/// The committed offsets of every group.
#[derive(Debug)]
pub(crate) struct OffsetStore {
    topic: Arc<Topic>,
    /// Committed offsets by group, then partition. Write-locked only to apply
    /// a commit that is already appended; readers copy what they need.
    committed: RwLock<HashMap<String, BTreeMap<TopicPartition, OffsetAndMetadata>>>,
}

impl OffsetStore {
    /// Loads every commit from the offsets topic: later records win, and a
    /// record with a null value (a tombstone) removes the offset.
    pub(crate) fn load(topic: Arc<Topic>) -> Result<OffsetStore> {
        let mut committed: HashMap<String, BTreeMap<TopicPartition, OffsetAndMetadata>> =
            HashMap::new();
        for p in topic.partitions().iter() {
            let mut at = p.log.start_offset();
            while at < p.log.end_offset() {
                let batches = p.log.read(at, LOAD_READ_BYTES)?;
                let Some(next) = batches.next_offset() else {
                    break;
                };
                for record in batches.records() {
                    let record = record?;
                    let bad = |reason| Error::CorruptRecord {
                        partition: p.tp.to_string(),
                        offset: record.offset,
                        reason,
                    };
                    let Some(key) = record.key.as_deref() else {
                        continue;
                    };
                    let Some(key) = offset_codec::decode_key(key).map_err(bad)? else {
                        // A group-metadata record (Kafka's own coordinator
                        // writes them); moldau keeps membership in memory.
                        continue;
                    };
                    let group = committed.entry(key.group).or_default();
                    match record.value.as_deref() {
                        None => {
                            group.remove(&key.partition);
                        }
                        Some(v) => {
                            let v = offset_codec::decode_value(v).map_err(bad)?;
                            group.insert(
                                key.partition,
                                OffsetAndMetadata {
                                    offset: v.offset,
                                    metadata: v.metadata,
                                },
                            );
                        }
                    }
                }
                at = next;
            }
        }
        committed.retain(|_, offsets| !offsets.is_empty());
        Ok(OffsetStore {
            topic,
            committed: RwLock::new(committed),
        })
    }

    /// The committed offset of `group` for `tp`.
    pub(crate) fn get(&self, group: &str, tp: &TopicPartition) -> Option<OffsetAndMetadata> {
        self.committed.read().get(group)?.get(tp).cloned()
    }

    /// All committed offsets of `group`.
    pub(crate) fn group(&self, group: &str) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.committed
            .read()
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Groups with committed offsets.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.committed.read().keys().cloned().collect()
    }

    /// Stores `offsets` for `group` durably (as the offsets topic's flush
    /// policy says; `Always` by default), then makes them visible. All of
    /// them are one record batch: a crash keeps all or none.
    pub(crate) fn commit(
        &self,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        now: Timestamp,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let records: Vec<Record> = offsets
            .iter()
            .map(|(tp, om)| {
                let key = commit_key(group, tp);
                let value = offset_codec::encode_value(&CommitValue {
                    offset: om.offset,
                    leader_epoch: None,
                    metadata: om.metadata.clone(),
                    commit_timestamp: now,
                });
                Record::new(value).with_key(key).with_timestamp(now)
            })
            .collect();
        self.append(group, &records)?;
        let mut committed = self.committed.write();
        let entry = committed.entry(group.to_owned()).or_default();
        for (tp, om) in offsets {
            entry.insert(tp.clone(), om.clone());
        }
        Ok(())
    }

    /// Forgets every group's offsets for `topic` (tombstones, so compaction
    /// removes the old commits too).
    pub(crate) fn delete_topic(&self, topic: &TopicName) -> Result<()> {
        let doomed: Vec<(String, Vec<TopicPartition>)> = self
            .committed
            .read()
            .iter()
            .map(|(g, offsets)| {
                let tps = offsets.keys().filter(|tp| &tp.topic == topic).cloned();
                (g.clone(), tps.collect::<Vec<_>>())
            })
            .filter(|(_, tps)| !tps.is_empty())
            .collect();
        for (group, tps) in doomed {
            let records: Vec<Record> = tps
                .iter()
                .map(|tp| Record::tombstone(commit_key(&group, tp)))
                .collect();
            self.append(&group, &records)?;
            let mut committed = self.committed.write();
            if let Some(offsets) = committed.get_mut(&group) {
                offsets.retain(|tp, _| &tp.topic != topic);
                if offsets.is_empty() {
                    committed.remove(&group);
                }
            }
        }
        Ok(())
    }

    fn append(&self, group: &str, records: &[Record]) -> Result<()> {
        let parts = self.topic.partitions();
        // Kafka's placement: Utils.abs(groupId.hashCode) % partitions, where
        // Utils.abs maps i32::MIN to 0. The topic has at least one partition
        // (`offsets_topic_partitions` is validated), so the index is in range.
        let hash = match java_string_hash(group) {
            i32::MIN => 0,
            h => h.unsigned_abs() as usize,
        };
        let p = &parts[hash % parts.len()];
        p.log.append(records).map_err(|e| self.topic.map_err(e))?;
        Ok(())
    }
}

fn commit_key(group: &str, tp: &TopicPartition) -> Bytes {
    Bytes::from(offset_codec::encode_key(&CommitKey {
        group: group.to_owned(),
        partition: tp.clone(),
    }))
}

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka uses to
/// place a group's offsets.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::java_string_hash;

    #[test]
    fn java_hash_matches_javas() {
        // Values from Java's "…".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
    }
}
