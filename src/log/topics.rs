//! Topics: the catalog file that lists them, and the in-memory topic with
//! its partitions.
//!
//! The catalog (`<data>/topics.checkpoint`) is the truth about which topics
//! exist. It is written before partition directories are created, and a
//! deleted topic moves to its `deleting` list before its directories are
//! removed, so a crash in between leaves either directories to create or
//! directories to remove, both finished by the next open. Directories the
//! catalog does not name are never touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::config::TopicConfig;
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::partition::PartitionLog;
use crate::producer::Combiner;
use crate::types::{PartitionId, TopicName, TopicPartition};

const CATALOG_FILE: &str = "topics.checkpoint";
const CATALOG_MAGIC: [u8; 4] = *b"MLDT";
/// 2: topic configs gained the compaction settings.
const CATALOG_VERSION: u32 = 2;
/// Suffix of a partition directory being removed.
const DELETE_SUFFIX: &str = ".deleting";

/// The topics of a data directory, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Catalog {
    /// Id the next created topic gets; ids are never reused.
    pub(crate) next_id: u64,
    pub(crate) topics: Vec<CatalogEntry>,
    /// Deleted topics whose directories may not all be removed yet.
    pub(crate) deleting: Vec<CatalogEntry>,
}

/// One topic, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CatalogEntry {
    pub(crate) name: TopicName,
    /// Tells apart topics of the same name created at different times, as
    /// Kafka's topic ids do (a deleted topic's old handles are told apart by
    /// their `Arc<Topic>`; the id is for what outlives the process).
    pub(crate) id: u64,
    pub(crate) partitions: u32,
    pub(crate) config: TopicConfig,
}

impl Catalog {
    pub(crate) fn read(dir: &Path) -> Result<Catalog> {
        Ok(
            checkpoint::read(&dir.join(CATALOG_FILE), CATALOG_MAGIC, CATALOG_VERSION)?
                .unwrap_or_default(),
        )
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        checkpoint::write(
            &dir.join(CATALOG_FILE),
            CATALOG_MAGIC,
            CATALOG_VERSION,
            self,
        )
    }

    /// Adds topic `name` under the next id, writes the catalog, and returns
    /// the new entry; on error the catalog is unchanged.
    pub(crate) fn add(
        &mut self,
        dir: &Path,
        name: TopicName,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<CatalogEntry> {
        let entry = CatalogEntry {
            name,
            id: self.next_id,
            partitions,
            config,
        };
        let mut next = self.clone();
        next.next_id += 1;
        next.topics.push(entry.clone());
        next.write(dir)?;
        *self = next;
        Ok(entry)
    }

    pub(crate) fn get_mut(&mut self, name: &TopicName) -> Option<&mut CatalogEntry> {
        self.topics.iter_mut().find(|t| &t.name == name)
    }
}

/// One partition of a topic: its log, and the combiner that merges
/// concurrent producer sends into batches.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) tp: TopicPartition,
    pub(crate) log: PartitionLog,
    pub(crate) combiner: Combiner,
}

/// A topic and its open partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: TopicName,
    /// Replaced whole when the config is altered.
    config: ArcSwap<TopicConfig>,
    /// The partitions in order. Replaced whole when partitions are added, so
    /// readers hold the lock only for an `Arc` copy.
    partitions: RwLock<Arc<[Arc<Partition>]>>,
    /// The length of `partitions`, stored after it grows: producers check it
    /// on every send, with a load rather than the lock.
    count: AtomicU32,
    /// Set when the topic is deleted; handles that still exist see it.
    deleted: AtomicBool,
}

impl Topic {
    pub(crate) fn new(entry: &CatalogEntry, partitions: Vec<Arc<Partition>>) -> Topic {
        Topic {
            name: entry.name.clone(),
            config: ArcSwap::from_pointee(entry.config.clone()),
            count: AtomicU32::new(partitions.len() as u32),
            partitions: RwLock::new(partitions.into()),
            deleted: AtomicBool::new(false),
        }
    }

    /// The current config.
    pub(crate) fn config(&self) -> Arc<TopicConfig> {
        self.config.load_full()
    }

    /// Max record batch size, read on every producer send.
    pub(crate) fn max_record_bytes(&self) -> u64 {
        self.config.load().max_record_bytes
    }

    pub(crate) fn set_config(&self, config: TopicConfig) {
        self.config.store(Arc::new(config));
    }

    /// The partitions, in order.
    pub(crate) fn partitions(&self) -> Arc<[Arc<Partition>]> {
        Arc::clone(&self.partitions.read())
    }

    /// Number of partitions.
    pub(crate) fn partition_count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Partition `p`, or [`Error::UnknownPartition`] / [`Error::UnknownTopic`].
    pub(crate) fn partition(&self, p: PartitionId) -> Result<Arc<Partition>> {
        self.check_live()?;
        let parts = self.partitions.read();
        parts
            .get(p.0 as usize)
            .cloned()
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.to_string(),
                partition: p.0,
                partitions: parts.len() as u32,
            })
    }

    pub(crate) fn add_partitions(&self, more: Vec<Arc<Partition>>) {
        let mut parts = self.partitions.write();
        let all: Vec<_> = parts.iter().cloned().chain(more).collect();
        self.count.store(all.len() as u32, Ordering::Release);
        *parts = all.into();
    }

    /// [`Error::UnknownTopic`] once the topic is deleted.
    pub(crate) fn check_live(&self) -> Result<()> {
        match self.deleted.load(Ordering::Acquire) {
            true => Err(self.unknown()),
            false => Ok(()),
        }
    }

    pub(crate) fn unknown(&self) -> Error {
        Error::UnknownTopic {
            topic: self.name.to_string(),
        }
    }

    /// Maps an error from a partition of this topic: a partition closed
    /// because the topic was deleted reports [`Error::UnknownTopic`].
    pub(crate) fn map_err(&self, e: Error) -> Error {
        match (&e, self.deleted.load(Ordering::Acquire)) {
            (Error::Closed { .. }, true) => self.unknown(),
            _ => e,
        }
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }
}

/// The directory of partition `tp` under `data`.
pub(crate) fn partition_dir(data: &Path, tp: &TopicPartition) -> PathBuf {
    data.join(tp.to_string())
}

/// Removes a partition directory: renamed first, so that a crash midway
/// leaves a name that says the removal is under way.
fn remove_partition_dir(data: &Path, tp: &TopicPartition) -> Result<()> {
    let dir = partition_dir(data, tp);
    let doomed = data.join(format!("{tp}{DELETE_SUFFIX}"));
    if dir.exists() {
        fs::rename(&dir, &doomed).map_err(|e| Error::io("rename", &dir, e))?;
    }
    if doomed.exists() {
        fs::remove_dir_all(&doomed).map_err(|e| Error::io("remove directory", &doomed, e))?;
    }
    Ok(())
}

/// Removes partitions `parts` of topic `name` and fsyncs the data directory.
pub(crate) fn remove_partitions(
    data: &Path,
    name: &TopicName,
    parts: std::ops::Range<u32>,
) -> Result<()> {
    for p in parts {
        remove_partition_dir(data, &TopicPartition::new(name.clone(), p))?;
    }
    fsutil::sync_dir(data)
}

/// Finishes removing the topics a crash (or an I/O error) left in the
/// catalog's `deleting` list, then records that they are gone.
pub(crate) fn finish_deletions(data: &Path, catalog: &mut Catalog) -> Result<()> {
    if catalog.deleting.is_empty() {
        return Ok(());
    }
    for t in &catalog.deleting {
        remove_partitions(data, &t.name, 0..t.partitions)?;
    }
    let mut next = catalog.clone();
    next.deleting.clear();
    next.write(data)?;
    *catalog = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::config::TopicConfig;

    #[test]
    fn open_finishes_a_deletion_and_leaves_unknown_directories_alone() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |name: &str, partitions| CatalogEntry {
            name: TopicName::new(name).unwrap(),
            id: 0,
            partitions,
            config: TopicConfig::default(),
        };
        // What a crash midway through deleting "gone" leaves: the catalog
        // says it is being deleted, one directory is half removed.
        let catalog = Catalog {
            next_id: 1,
            topics: vec![entry("keep", 1)],
            deleting: vec![entry("gone", 2)],
        };
        catalog.write(dir.path()).unwrap();
        for d in ["keep-0", "gone-0", "gone-1.deleting", "stranger-0"] {
            fs::create_dir(dir.path().join(d)).unwrap();
            fs::write(dir.path().join(d).join("partition.checkpoint"), b"x").unwrap();
        }
        let mut catalog = Catalog::read(dir.path()).unwrap();
        finish_deletions(dir.path(), &mut catalog).unwrap();
        for (d, exists) in [
            ("keep-0", true),
            ("gone-0", false),
            ("gone-1.deleting", false),
            ("stranger-0", true),
        ] {
            assert_eq!(dir.path().join(d).exists(), exists, "{d}");
        }
        assert!(Catalog::read(dir.path()).unwrap().deleting.is_empty());
    }
}
