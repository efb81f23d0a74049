//! [`Log`]: one data directory of topics, with consumer groups and a
//! maintenance thread. The handle users hold; producers and consumers are
//! made from it.

mod config;
mod kafka_config;
mod maintenance;
mod offsets;
mod shutdown;
mod topics;

#[cfg(feature = "fuzzing")]
pub(crate) use topics::fuzz_decode_catalog;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

pub use config::{CleanupPolicy, LogConfig, TopicConfig};
pub use kafka_config::KAFKA_TOPIC_CONFIG_KEYS;
pub use maintenance::MaintenanceReport;
pub(crate) use topics::{Partition, Topic};

use crate::error::{Error, Result};
use crate::group::{GroupCoordinator, GroupDescription, OffsetAndMetadata};
use crate::notify::Doorbell;
use crate::partition::{self, CompactionOutcome, PartitionLog};
use crate::producer::Combiner;
use crate::segment::OpenSegments;
use crate::types::{Offset, PartitionId, TopicName, TopicPartition};
use topics::{Catalog, CatalogEntry};

/// The internal topic holding consumer groups' committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 100_000;

/// One data directory: topics split into partitions, consumer groups and
/// their committed offsets, and a background maintenance thread.
///
/// Cheap to clone (`Send + Sync`, an `Arc` inside); clones, producers and
/// consumers share one open directory. [`Log::close`] flushes every partition,
/// writes the recovery points and stops the maintenance thread; the last
/// handle to go (including producers and consumers) does the same on drop.
///
/// ```
/// use moldau::{Log, LogConfig};
/// # let tmp = tempfile::tempdir()?;
/// let log = Log::open(tmp.path(), LogConfig::default())?;
/// log.create_topic("orders", 3, None)?;
/// assert_eq!(log.describe_topic("orders")?.partitions.len(), 3);
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Log {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Open topics by name. Write-locked only to insert or remove one (after
    /// the catalog is written); readers hold it to copy an `Arc`.
    topics: RwLock<HashMap<TopicName, Arc<Topic>>>,
    /// The stored catalog. Serializes creating, deleting and growing topics:
    /// held across the catalog write and the creation or removal of partition
    /// directories, which may block on the disk (admin operations are rare).
    catalog: Mutex<Catalog>,
    pub(crate) groups: GroupCoordinator,
    closed: AtomicBool,
    /// Rung to stop the maintenance thread.
    stop: Doorbell,
    maintenance: Mutex<Option<JoinHandle<()>>>,
    /// The advisory lock on `<dir>/.lock`; released by close.
    lock: Mutex<Option<File>>,
    /// The bound on open segments shared by every partition.
    pub(crate) open_segments: OpenSegments,
}

/// A topic's partitions, with their offsets and sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: TopicName,
    /// Whether moldau manages it (`__consumer_offsets`).
    pub internal: bool,
    /// Its configuration.
    pub config: TopicConfig,
    /// Each partition, in order.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition's offsets and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionDescription {
    /// The partition's number.
    pub partition: PartitionId,
    /// First readable offset.
    pub start_offset: Offset,
    /// The offset the next record gets.
    pub end_offset: Offset,
    /// Bytes of record batches on disk.
    pub size_bytes: u64,
    /// Number of segment files.
    pub segments: usize,
    /// For a compacted topic: the dirty share of the log compaction may
    /// clean now (`None` for a topic that only deletes).
    pub dirty_ratio: Option<f64>,
    /// For a compacted topic: what the last compaction pass since the log
    /// opened did (bytes reclaimed, records removed), if one ran.
    pub last_compaction: Option<CompactionOutcome>,
    /// Whether opening the log ran recovery on this partition (after a
    /// crash, or a close that did not finish) instead of trusting its clean
    /// checkpoint; see [`PartitionStats::recovered`](crate::PartitionStats::recovered).
    pub recovered: bool,
}

impl Log {
    /// Opens (creating if needed) the data directory `dir`, and every topic in it.
    ///
    /// Errors: [`Error::InvalidConfig`]; [`Error::Locked`] if another `Log`, in
    /// this process or another, has `dir` open; [`Error::Io`] and
    /// [`Error::Corrupt`] from the partitions (see [`PartitionLog::open`]).
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        partition::create_dir(&dir)?;
        let lock = partition::lock_dir(&dir)?;
        // Taken (and removed) before anything can change a partition.
        let clean = shutdown::take(&dir)?;
        let mut catalog = Catalog::read(&dir)?;
        topics::finish_deletions(&dir, &mut catalog)?;
        // The offsets topic's config follows the log's, whatever it was.
        let offsets_name = TopicName::new(OFFSETS_TOPIC)?;
        let offsets_config = config.offsets_topic_config();
        match catalog.get_mut(&offsets_name) {
            Some(e) if e.config == offsets_config => {}
            Some(e) => {
                e.config = offsets_config;
                catalog.write(&dir)?;
            }
            None => {
                let partitions = config.offsets_topic_partitions;
                catalog.add(&dir, offsets_name.clone(), partitions, offsets_config)?;
            }
        }
        let open_segments = OpenSegments::new(config.max_open_segments);
        let mut open = HashMap::new();
        for entry in &catalog.topics {
            let parts = open_partitions(&dir, &config, &open_segments, entry, 0, clean)?;
            open.insert(entry.name.clone(), Arc::new(Topic::new(entry, parts)));
        }
        // Present: the catalog always lists the offsets topic (added above).
        let offsets = Arc::clone(&open[&offsets_name]);
        let counts = catalog
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let groups = GroupCoordinator::load(offsets, config.clock.clone(), counts)?;
        let inner = Arc::new(Inner {
            dir,
            config,
            topics: RwLock::new(open),
            catalog: Mutex::new(catalog),
            groups,
            closed: AtomicBool::new(false),
            stop: Doorbell::new(),
            maintenance: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
            open_segments,
        });
        let handle = maintenance::spawn(Arc::downgrade(&inner), inner.stop.clone())?;
        *inner.maintenance.lock() = Some(handle);
        Ok(Log { inner })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The bound on open segments shared by this log's partitions (how many
    /// are open, how many were closed to make room).
    pub fn open_segments(&self) -> &OpenSegments {
        &self.inner.open_segments
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Creates topic `name` with `partitions` partitions and `config` (the
    /// log's [`LogConfig::topic_defaults`] if `None`).
    ///
    /// Errors: [`Error::InvalidTopic`] (checked before any file is touched),
    /// [`Error::InvalidArgument`] for 0 or more than [`MAX_PARTITIONS`]
    /// partitions, [`Error::InvalidConfig`], [`Error::TopicExists`], [`Error::Io`].
    /// On error nothing is left behind.
    pub fn create_topic(
        &self,
        name: impl AsRef<str>,
        partitions: u32,
        config: Option<TopicConfig>,
    ) -> Result<()> {
        let name = user_topic(name.as_ref())?;
        check_partition_count(partitions)?;
        let config = config.unwrap_or_else(|| self.inner.config.topic_defaults.clone());
        config.validate()?;
        let inner = &self.inner;
        let mut catalog = inner.catalog.lock();
        inner.check_open()?;
        if catalog.get_mut(&name).is_some() {
            return Err(Error::TopicExists {
                topic: name.to_string(),
            });
        }
        // A deletion that failed midway must not leave old data under the new topic.
        topics::finish_deletions(&inner.dir, &mut catalog)?;
        let entry = catalog.add(&inner.dir, name.clone(), partitions, config)?;
        let parts = match open_partitions(
            &inner.dir,
            &inner.config,
            &inner.open_segments,
            &entry,
            0,
            false,
        ) {
            Ok(p) => p,
            Err(e) => {
                // Undo: the topic never existed.
                catalog.topics.retain(|t| t.name != name);
                catalog.write(&inner.dir)?;
                topics::remove_partitions(&inner.dir, &name, 0..partitions)?;
                return Err(e);
            }
        };
        let topic = Arc::new(Topic::new(&entry, parts));
        inner.topics.write().insert(name.clone(), topic);
        // Groups subscribed to the name before it existed start consuming.
        inner.groups.topic_changed(&name, Some(partitions));
        Ok(())
    }

    /// Deletes topic `name`: its files are removed, its committed offsets
    /// forgotten, groups subscribed to it rebalance, and handles that still
    /// refer to it get [`Error::UnknownTopic`].
    pub fn delete_topic(&self, name: impl AsRef<str>) -> Result<()> {
        let name = user_topic(name.as_ref())?;
        let inner = &self.inner;
        let mut catalog = inner.catalog.lock();
        inner.check_open()?;
        let Some(topic) = inner.topics.read().get(&name).cloned() else {
            return Err(Error::UnknownTopic {
                topic: name.to_string(),
            });
        };
        let mut next = catalog.clone();
        let entry = next.topics.iter().position(|t| t.name == name);
        if let Some(i) = entry {
            let removed = next.topics.remove(i);
            next.deleting.push(removed);
        }
        // Once this is written the topic is gone; a crash from here on leaves
        // directories that the next open removes.
        next.write(&inner.dir)?;
        *catalog = next;
        inner.topics.write().remove(&name);
        topic.mark_deleted();
        let parts = topic.partitions();
        for p in parts.iter() {
            p.log.close_for_removal();
        }
        inner.groups.topic_deleted(&name)?;
        topics::finish_deletions(&inner.dir, &mut catalog)
    }

    /// Grows topic `name` to `total` partitions (Kafka's CreatePartitions).
    /// Existing keys may map to other partitions afterwards, as in Kafka.
    /// Groups subscribed to the topic rebalance.
    ///
    /// Errors: [`Error::InvalidArgument`] unless `total` is more than the
    /// current count (and at most [`MAX_PARTITIONS`]).
    pub fn add_partitions(&self, name: impl AsRef<str>, total: u32) -> Result<()> {
        let name = user_topic(name.as_ref())?;
        check_partition_count(total)?;
        let inner = &self.inner;
        let mut catalog = inner.catalog.lock();
        inner.check_open()?;
        let topic = self.topic(&name)?;
        let current = topic.partition_count();
        if total <= current {
            return Err(Error::InvalidArgument {
                what: "total",
                reason: format!("must exceed the current {current} partitions of {name}"),
            });
        }
        let mut next = catalog.clone();
        let Some(entry) = next.get_mut(&name) else {
            return Err(topic.unknown());
        };
        entry.partitions = total;
        let entry = entry.clone();
        next.write(&inner.dir)?;
        *catalog = next;
        // The catalog says `total` from here on; a failure below leaves the
        // missing partitions for the next open to create.
        let more = open_partitions(
            &inner.dir,
            &inner.config,
            &inner.open_segments,
            &entry,
            current,
            false,
        )?;
        topic.add_partitions(more);
        inner.groups.topic_changed(&name, Some(total));
        Ok(())
    }

    /// Replaces the config of topic `name` (Kafka's AlterConfigs): stored
    /// first, then applied to every partition. Retention, compaction and
    /// flush settings take effect at once; segment settings apply to
    /// segments rolled from now on.
    ///
    /// Errors: [`Error::InvalidConfig`] (checked before anything changes),
    /// [`Error::UnknownTopic`], [`Error::InvalidTopic`] for the internal topic.
    pub fn alter_topic_config(&self, name: impl AsRef<str>, config: TopicConfig) -> Result<()> {
        let name = user_topic(name.as_ref())?;
        config.validate()?;
        let inner = &self.inner;
        let mut catalog = inner.catalog.lock();
        inner.check_open()?;
        let topic = self.topic(&name)?;
        let mut next = catalog.clone();
        if let Some(entry) = next.get_mut(&name) {
            entry.config = config.clone();
        }
        next.write(&inner.dir)?;
        *catalog = next;
        let pconfig =
            config.partition_config(Arc::clone(&inner.config.clock), &inner.open_segments);
        topic.set_config(config);
        for p in topic.partitions().iter() {
            p.log
                .set_config(pconfig.clone())
                .map_err(|e| topic.map_err(e))?;
        }
        Ok(())
    }

    /// Names of the topics, sorted; the internal `__consumer_offsets` is left out.
    pub fn list_topics(&self) -> Vec<TopicName> {
        let mut names: Vec<_> = self
            .inner
            .topics
            .read()
            .keys()
            .filter(|n| n.as_str() != OFFSETS_TOPIC)
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// The partitions of `name`, with their offsets and sizes, and its config.
    pub fn describe_topic(&self, name: impl AsRef<str>) -> Result<TopicDescription> {
        let name = TopicName::new(name)?;
        let topic = self.topic(&name)?;
        let config = topic.config();
        let compaction = config.compaction(self.inner.config.compaction_buffer_bytes);
        let now = self.inner.config.clock.now();
        let mut partitions = Vec::new();
        for p in topic.partitions().iter() {
            let stats = p.log.stats();
            let dirty_ratio = match &compaction {
                Some(settings) => Some(
                    p.log
                        .dirty_ratio(now, settings)
                        .map_err(|e| topic.map_err(e))?,
                ),
                None => None,
            };
            partitions.push(PartitionDescription {
                partition: p.tp.partition,
                start_offset: stats.start_offset,
                end_offset: stats.end_offset,
                size_bytes: p.log.size_bytes().map_err(|e| topic.map_err(e))?,
                segments: stats.segment_count,
                dirty_ratio,
                last_compaction: stats.last_compaction,
                recovered: stats.recovered,
            });
        }
        Ok(TopicDescription {
            internal: name.as_str() == OFFSETS_TOPIC,
            name,
            config: (*config).clone(),
            partitions,
        })
    }

    /// Ids of the consumer groups with members or committed offsets, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        self.inner.groups.list()
    }

    /// A group's members, their assignments, and its committed offsets with
    /// the lag of each partition.
    pub fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        self.inner.check_open()?;
        let inner = &self.inner;
        inner.groups.describe(group, &|tp: &TopicPartition| {
            let topic = inner.topics.read().get(&tp.topic).cloned()?;
            let p = topic.partition(tp.partition).ok()?;
            Some((p.log.start_offset(), p.log.end_offset()))
        })
    }

    /// The offset `group` committed for `tp`, if any.
    pub fn committed(&self, group: &str, tp: &TopicPartition) -> Result<Option<OffsetAndMetadata>> {
        self.inner.check_open()?;
        Ok(self.inner.groups.committed(group, tp))
    }

    /// Flushes every partition to stable storage.
    pub fn flush(&self) -> Result<()> {
        for topic in self.inner.all_topics() {
            for p in topic.partitions().iter() {
                p.log.flush().map_err(|e| topic.map_err(e))?;
            }
        }
        Ok(())
    }

    /// Closes the log: stops the maintenance thread, makes consumers' waits
    /// return, flushes every partition and writes its recovery point, and
    /// releases the directory lock. Later calls on any handle of this log
    /// return [`Error::Closed`]. Idempotent.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// The open topic `name`.
    pub(crate) fn topic(&self, name: &TopicName) -> Result<Arc<Topic>> {
        self.inner.topic(name)
    }
}

impl Log {
    /// Simulates a crash for tests: stops the maintenance thread and drops
    /// the handle without closing any partition (no flush, no checkpoint,
    /// no clean-shutdown marker); the directory lock is released.
    #[cfg(test)]
    pub(crate) fn crash(self) {
        let inner = &self.inner;
        let _catalog = inner.catalog.lock();
        inner.closed.store(true, Ordering::Release);
        inner.stop.ring();
        if let Some(handle) = inner.maintenance.lock().take() {
            let _ = handle.join();
        }
        for topic in inner.all_topics() {
            for p in topic.partitions().iter() {
                p.log.crash_in_place();
            }
        }
        *inner.lock.lock() = None;
    }
}

impl Inner {
    pub(crate) fn topic(&self, name: &TopicName) -> Result<Arc<Topic>> {
        self.check_open()?;
        self.topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })
    }

    fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        match self.closed.load(Ordering::Acquire) {
            true => Err(Error::Closed {
                path: self.dir.clone(),
            }),
            false => Ok(()),
        }
    }

    /// One round of background work: interval flushes, and removing group
    /// members that stopped polling.
    pub(crate) fn maintain(&self) -> Result<()> {
        self.check_open()?;
        self.groups.expire_members();
        let mut first_err = None;
        for topic in self.all_topics() {
            for p in topic.partitions().iter() {
                if let Err(e) = p.log.flush_if_due() {
                    first_err.get_or_insert(topic.map_err(e));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn close(&self) -> Result<()> {
        // Serialize with admin operations: none is half done while closing.
        let _catalog = self.catalog.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop.ring();
        if let Some(handle) = self.maintenance.lock().take() {
            // The maintenance thread itself may drop the last handle; it must
            // not wait for itself.
            if handle.thread().id() != std::thread::current().id() {
                // A panic in maintenance has nobody else to report to; the
                // partitions below are closed either way.
                let _ = handle.join();
            }
        }
        self.groups.close();
        let partitions: Vec<Arc<Partition>> = self
            .all_topics()
            .iter()
            .flat_map(|t| t.partitions().iter().cloned().collect::<Vec<_>>())
            .collect();
        let closed = partitions.len() as u64;
        // Every clean checkpoint is durable: only now is the close clean.
        // After a failure there is no marker, and every partition recovers.
        let result = close_all(&partitions).and_then(|()| shutdown::write(&self.dir, closed));
        *self.lock.lock() = None;
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Errors here have no caller to go to; `Log::close` reports them.
        let _ = self.close();
    }
}

/// Threads that close partitions at once. A partition's close waits on its
/// fsyncs; the file system commits concurrent fsyncs together (one journal
/// commit for many on ext4), so closing many partitions side by side costs
/// a fraction of closing them one after another (see BENCHMARKS.md, "Many
/// partitions").
const CLOSE_THREADS: usize = 16;

/// Closes every partition in `parts` (each flushes and writes its clean
/// checkpoint durably), on up to [`CLOSE_THREADS`] threads; every one is
/// closed even after a failure, and the first failure is returned.
fn close_all(parts: &[Arc<Partition>]) -> Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    let work = || {
        while let Some(p) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
            if let Err(e) = p.log.close() {
                first_err.lock().get_or_insert(e);
            }
        }
    };
    let threads = CLOSE_THREADS.min(parts.len());
    match threads {
        0 | 1 => work(),
        n => std::thread::scope(|s| {
            for _ in 1..n {
                // A thread the system refuses only leaves more to the others.
                if std::thread::Builder::new()
                    .name("moldau-close".into())
                    .spawn_scoped(s, work)
                    .is_err()
                {
                    break;
                }
            }
            work();
        }),
    }
    first_err.into_inner().map_or(Ok(()), Err)
}

/// Validates a topic name given by a user for an admin operation; the
/// internal topic is refused.
fn user_topic(name: &str) -> Result<TopicName> {
    let name = TopicName::new(name)?;
    if name.as_str() == OFFSETS_TOPIC {
        return Err(Error::InvalidTopic {
            name: name.to_string(),
            reason: "is internal to moldau".into(),
        });
    }
    Ok(name)
}

fn check_partition_count(n: u32) -> Result<()> {
    if n == 0 || n > MAX_PARTITIONS {
        return Err(Error::InvalidArgument {
            what: "partitions",
            reason: format!("must be between 1 and {MAX_PARTITIONS}, got {n}"),
        });
    }
    Ok(())
}

/// Opens partitions `from..entry.partitions` of a topic, creating their
/// directories; `log_clean`: the log found its clean-shutdown marker.
///
/// New directories are made durable with one fsync of the data directory
/// for all of them; the segment files created in each are fsynced into it
/// by the partition's first sync (see `PartitionLog::open_in_log`). A crash
/// before that loses nothing: the catalog names the partitions, and the
/// next open creates whatever is missing.
fn open_partitions(
    dir: &Path,
    config: &LogConfig,
    open_segments: &OpenSegments,
    entry: &CatalogEntry,
    from: u32,
    log_clean: bool,
) -> Result<Vec<Arc<Partition>>> {
    let pconfig = entry
        .config
        .partition_config(Arc::clone(&config.clock), open_segments);
    let mut created = false;
    let parts = (from..entry.partitions)
        .map(|p| {
            let tp = TopicPartition::new(entry.name.clone(), p);
            let (log, new_dir) = PartitionLog::open_in_log(
                topics::partition_dir(dir, &tp),
                pconfig.clone(),
                log_clean,
            )?;
            created |= new_dir;
            Ok(Arc::new(Partition {
                tp,
                log,
                combiner: Combiner::default(),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    if created {
        crate::fsutil::sync_dir(dir)?;
    }
    Ok(parts)
}
