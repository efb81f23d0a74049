//! Topics: the catalog file that lists them, and the in-memory topic with
//! its partitions.
//!
//! The catalog (`<data>/topics.checkpoint`) is the truth about which topics
//! exist. It is written before partition directories are created and before
//! they are removed, so a crash in between leaves either directories to
//! create (done on open) or directories to remove (done on open).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

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
const CATALOG_VERSION: u32 = 1;
/// Suffix of a partition directory being removed.
const DELETE_SUFFIX: &str = ".deleting";

/// The topics of a data directory, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Catalog {
    /// Id the next created topic gets; ids are never reused, so a handle to a
    /// deleted topic never reaches a new topic of the same name.
    pub(crate) next_id: u64,
    pub(crate) topics: Vec<CatalogEntry>,
}

/// One topic, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CatalogEntry {
    pub(crate) name: TopicName,
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
    pub(crate) config: TopicConfig,
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
            config: entry.config.clone(),
            count: AtomicU32::new(partitions.len() as u32),
            partitions: RwLock::new(partitions.into()),
            deleted: AtomicBool::new(false),
        }
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
/// leaves a directory `open` recognizes and finishes removing.
pub(crate) fn remove_partition_dir(data: &Path, tp: &TopicPartition) -> Result<()> {
    let dir = partition_dir(data, tp);
    if !dir.exists() {
        return Ok(());
    }
    let doomed = data.join(format!("{tp}{DELETE_SUFFIX}"));
    fs::rename(&dir, &doomed).map_err(|e| Error::io("rename", &dir, e))?;
    fs::remove_dir_all(&doomed).map_err(|e| Error::io("remove directory", &doomed, e))
}

/// Removes what a crash left behind: directories renamed for removal, and
/// partition directories of topics (or partitions) the catalog no longer
/// lists. Only directories holding a partition checkpoint are touched.
pub(crate) fn remove_leftovers(data: &Path, catalog: &Catalog) -> Result<()> {
    let expected: std::collections::HashSet<String> = catalog
        .topics
        .iter()
        .flat_map(|t| (0..t.partitions).map(|p| TopicPartition::new(t.name.clone(), p).to_string()))
        .collect();
    let entries = fs::read_dir(data).map_err(|e| Error::io("list directory", data, e))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", data, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !path.is_dir() {
            continue;
        }
        // A half-removed directory may have lost its checkpoint already.
        let doomed =
            name.ends_with(DELETE_SUFFIX) || (is_partition_dir(&path) && !expected.contains(name));
        if doomed {
            fs::remove_dir_all(&path).map_err(|e| Error::io("remove directory", &path, e))?;
            removed = true;
        }
    }
    if removed {
        fsutil::sync_dir(data)?;
    }
    Ok(())
}

fn is_partition_dir(path: &Path) -> bool {
    path.join(crate::partition::CHECKPOINT_FILE).exists()
}
