//! Typed configuration of a [`Log`](crate::Log) and of each topic.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::config::{FlushPolicy, PartitionConfig};
use crate::error::{Error, Result};
use crate::segment::OpenSegments;

/// What happens to old records of a topic (Kafka's `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CleanupPolicy {
    /// Delete whole segments past the retention limits (Kafka's default).
    #[default]
    Delete,
    /// Keep the latest record per key (log compaction).
    Compact,
    /// Both: compact, and delete segments past the retention limits.
    CompactDelete,
}

/// Configuration of one topic, applied to each of its partitions.
///
/// Defaults are Kafka's topic defaults. Stored with the topic, so it survives
/// a restart unchanged; start from [`LogConfig::topic_defaults`] to override a
/// few fields:
///
/// ```
/// use std::time::Duration;
/// use moldau::{FlushPolicy, TopicConfig};
/// let config = TopicConfig {
///     flush: FlushPolicy::Always,
///     retention_ms: Some(Duration::from_secs(3600)),
///     ..TopicConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Roll to a new segment when the active one would exceed this size.
    /// Default 1 GiB (`segment.bytes`); at least 4 KiB, at most 2 GiB - 1.
    pub segment_bytes: u64,
    /// Roll when the active segment's first record is older than this.
    /// Default 7 days (`segment.ms`); `None` disables age rolls.
    pub segment_ms: Option<Duration>,
    /// Size of each segment's offset and time index. Default 10 MiB
    /// (`segment.index.bytes`); at least 4 KiB.
    pub segment_index_bytes: u64,
    /// Bytes of log between index entries. Default 4096 (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Largest record batch accepted. Default 1,048,588 (`max.message.bytes`).
    pub max_record_bytes: u64,
    /// When appends are fsynced. Default [`FlushPolicy::Never`], as Kafka.
    pub flush: FlushPolicy,
    /// Delete segments whose newest record is older than this. Default 7 days
    /// (`retention.ms`); `None` keeps records forever.
    pub retention_ms: Option<Duration>,
    /// Delete the oldest segments while a partition is larger than this.
    /// Default `None`, unlimited (`retention.bytes = -1`).
    pub retention_bytes: Option<u64>,
    /// Delete, compact, or both. Default [`CleanupPolicy::Delete`].
    pub cleanup_policy: CleanupPolicy,
    /// How long compaction keeps tombstones. Default 1 day (`delete.retention.ms`).
    pub delete_retention_ms: Duration,
    /// Compact a partition only when at least this share of its sealed log is
    /// dirty (written since the last pass). Default 0.5
    /// (`min.cleanable.dirty.ratio`); between 0 and 1.
    pub min_cleanable_dirty_ratio: f64,
    /// Records younger than this are never compacted, so consumers can read
    /// every update for a while. Default 0 (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: Duration,
}

impl Default for TopicConfig {
    fn default() -> Self {
        // The storage settings have one source of defaults: the partition's.
        let p = PartitionConfig::default();
        TopicConfig {
            segment_bytes: p.segment_bytes,
            segment_ms: p.segment_ms,
            segment_index_bytes: p.segment_index_bytes,
            index_interval_bytes: p.index_interval_bytes,
            max_record_bytes: p.max_record_bytes,
            flush: p.flush,
            retention_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: Duration::from_secs(24 * 3600),
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: Duration::ZERO,
        }
    }
}

impl TopicConfig {
    /// Checks every limit; called by `create_topic` and `Log::open`.
    pub fn validate(&self) -> Result<()> {
        self.partition_config(Arc::new(SystemClock), &OpenSegments::new(2))
            .validate()?;
        if self.retention_ms == Some(Duration::ZERO) {
            return Err(Error::InvalidConfig {
                field: "retention_ms",
                reason: "must be positive (or None to keep records forever)".into(),
            });
        }
        if self.retention_bytes == Some(0) {
            return Err(Error::InvalidConfig {
                field: "retention_bytes",
                reason: "must be positive (or None for no size limit)".into(),
            });
        }
        // `contains` is false for NaN too.
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return Err(Error::InvalidConfig {
                field: "min_cleanable_dirty_ratio",
                reason: format!(
                    "must be between 0 and 1, got {}",
                    self.min_cleanable_dirty_ratio
                ),
            });
        }
        Ok(())
    }

    /// The storage settings of each partition of a topic with this config.
    pub(crate) fn partition_config(
        &self,
        clock: Arc<dyn Clock>,
        open_segments: &OpenSegments,
    ) -> PartitionConfig {
        PartitionConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            segment_index_bytes: self.segment_index_bytes,
            index_interval_bytes: self.index_interval_bytes,
            max_record_bytes: self.max_record_bytes,
            flush: self.flush,
            compacted: self.cleanup_policy != CleanupPolicy::Delete,
            clock,
            open_segments: open_segments.clone(),
        }
    }
}

/// Configuration of a [`Log`](crate::Log): one data directory.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Config of topics created without one of their own
    /// ([`Log::create_topic`](crate::Log::create_topic) with `None`).
    pub topic_defaults: TopicConfig,
    /// Partitions of the internal `__consumer_offsets` topic, which holds
    /// committed offsets. Default 1: Kafka's 50 spreads load over brokers,
    /// which one process does not have. Fixed when the topic is first created.
    pub offsets_topic_partitions: u32,
    /// When a consumer-group commit is fsynced. Default
    /// [`FlushPolicy::Always`]: a commit that returned survives a crash.
    pub offsets_flush: FlushPolicy,
    /// How often the maintenance thread runs interval flushes and removes
    /// group members that stopped polling. Default 100 ms; at least 1 ms.
    pub maintenance_interval: Duration,
    /// How often the maintenance thread applies retention and compaction.
    /// Default 5 minutes (Kafka's `log.retention.check.interval.ms`); at least
    /// [`LogConfig::maintenance_interval`].
    /// [`Log::run_maintenance`](crate::Log::run_maintenance) does the same
    /// work on demand.
    pub retention_check_interval: Duration,
    /// Size of `__consumer_offsets` segments. Default 100 MiB (Kafka's
    /// `offsets.topic.segment.bytes`): compaction cleans only sealed
    /// segments, so this bounds the space of superseded commits.
    pub offsets_segment_bytes: u64,
    /// Memory one compaction pass may use for its key map. Default 128 MiB
    /// (Kafka's `log.cleaner.dedupe.buffer.size`); at least 1 MiB.
    pub compaction_buffer_bytes: usize,
    /// Most segments held open at once across all partitions of the log.
    /// An open segment holds three memory maps (log, offset index, time
    /// index), and the active segment of a partition being written also its
    /// three files; when a segment must be opened and the bound is reached,
    /// the least recently used one is closed (a sealed segment is unmapped;
    /// an idle active segment is closed (parked), and reopened by its next
    /// append). So segment files and maps stay under `3 * max_open_segments`
    /// whatever the number of partitions (Kafka keeps a descriptor per
    /// segment and a map per index). Default [`OpenSegments::default_max`]: a
    /// quarter of the open-file limit, between 64 and 4096 (256 under the
    /// usual limit of 1,024). At least 2.
    pub max_open_segments: usize,
    /// Time source for record timestamps, segment age, retention and group
    /// timeouts. Tests inject a [`ManualClock`](crate::ManualClock).
    pub clock: Arc<dyn Clock>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            topic_defaults: TopicConfig::default(),
            offsets_topic_partitions: 1,
            offsets_flush: FlushPolicy::Always,
            maintenance_interval: Duration::from_millis(100),
            retention_check_interval: Duration::from_secs(300),
            offsets_segment_bytes: 100 << 20,
            compaction_buffer_bytes: 128 << 20,
            max_open_segments: OpenSegments::default_max(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl LogConfig {
    /// Checks every limit; called by [`Log::open`](crate::Log::open).
    pub fn validate(&self) -> Result<()> {
        self.topic_defaults.validate()?;
        self.offsets_topic_config().validate()?;
        if self.offsets_topic_partitions == 0 {
            return Err(Error::InvalidConfig {
                field: "offsets_topic_partitions",
                reason: "must be at least 1".into(),
            });
        }
        if self.maintenance_interval < Duration::from_millis(1) {
            return Err(Error::InvalidConfig {
                field: "maintenance_interval",
                reason: "must be at least 1 ms".into(),
            });
        }
        if self.compaction_buffer_bytes < 1 << 20 {
            return Err(Error::InvalidConfig {
                field: "compaction_buffer_bytes",
                reason: format!(
                    "must be at least 1 MiB, got {}",
                    self.compaction_buffer_bytes
                ),
            });
        }
        if self.max_open_segments < 2 {
            return Err(Error::InvalidConfig {
                field: "max_open_segments",
                reason: format!("must be at least 2, got {}", self.max_open_segments),
            });
        }
        if self.retention_check_interval < self.maintenance_interval {
            return Err(Error::InvalidConfig {
                field: "retention_check_interval",
                reason: "must be at least maintenance_interval".into(),
            });
        }
        Ok(())
    }

    /// The config of `__consumer_offsets`: compacted, segments of
    /// [`LogConfig::offsets_segment_bytes`], flushed per [`LogConfig::offsets_flush`].
    pub(crate) fn offsets_topic_config(&self) -> TopicConfig {
        TopicConfig {
            segment_bytes: self.offsets_segment_bytes,
            flush: self.offsets_flush,
            retention_ms: None,
            cleanup_policy: CleanupPolicy::Compact,
            ..self.topic_defaults.clone()
        }
    }
}
