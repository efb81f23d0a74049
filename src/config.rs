//! Typed, validated configuration of a partition log.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::segment::OpenSegments;

/// When appended data is fsynced.
///
/// Under every policy but `Always`, a segment that rolls is fsynced by a
/// background thread (as Kafka does), not by the append that rolled it; the
/// recovery point moves once that fsync is done, and a failure poisons the
/// partition (the next append, flush or close reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FlushPolicy {
    /// fsync before `append` returns. Concurrent appenders share fsyncs (group
    /// commit): one fsync covers every append that finished before it started.
    Always,
    /// fsync once at least `n` records have been appended since the last fsync.
    EveryRecords(u64),
    /// fsync when an append (or maintenance) finds the last fsync older than this.
    Interval(Duration),
    /// Never fsync on append; the operating system writes back dirty pages
    /// (Kafka's default). Segments are still fsynced when they roll (in the
    /// background) and on close.
    #[default]
    Never,
}

/// Configuration of one partition's log. Defaults follow Kafka's.
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    /// Roll to a new segment when the active one would exceed this size.
    /// Default 1 GiB (Kafka's `segment.bytes`); at least 4 KiB, at most 2 GiB - 1.
    pub segment_bytes: u64,
    /// Roll to a new segment when the active one's first batch is older than
    /// this. Default 7 days (Kafka's `segment.ms`); `None` disables age rolls.
    pub segment_ms: Option<Duration>,
    /// Maximum size of each offset and time index file; a segment rolls when its
    /// index is full. Default 10 MiB (Kafka's `segment.index.bytes`); at least 4 KiB.
    pub segment_index_bytes: u64,
    /// Bytes of log between index entries. Default 4096 (Kafka's
    /// `index.interval.bytes`); at least 1.
    pub index_interval_bytes: u64,
    /// Largest record batch accepted, in bytes. Default 1,048,588 (Kafka's
    /// `max.message.bytes`); at least 128, at most 2 GiB - 1. A batch larger
    /// than `segment_bytes` gets a segment of its own.
    pub max_record_bytes: u64,
    /// When appends are fsynced. Default [`FlushPolicy::Never`], as Kafka.
    pub flush: FlushPolicy,
    /// Whether the partition is compacted: every record must then have a key
    /// (Kafka's rule for `cleanup.policy=compact`), and appends of records
    /// without one are refused with [`Error::InvalidRecord`]. Default `false`.
    pub compacted: bool,
    /// Time source for record timestamps, segment age and interval flushes.
    pub clock: Arc<dyn Clock>,
    /// The bound on segments held open (memory maps, and the files of an
    /// active segment being written), shared by every partition given a
    /// clone of it; the least recently used are closed to stay within it.
    /// Default: a bound of its own, [`OpenSegments::default_max`]. A
    /// [`Log`](crate::Log) gives all its partitions one, sized by
    /// [`LogConfig::max_open_segments`](crate::LogConfig::max_open_segments).
    pub open_segments: OpenSegments,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            max_record_bytes: 1_048_588,
            flush: FlushPolicy::Never,
            compacted: false,
            clock: Arc::new(SystemClock),
            open_segments: OpenSegments::default(),
        }
    }
}

impl PartitionConfig {
    /// Checks every limit; called by `PartitionLog::open`.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(Error::InvalidConfig { field, reason });
        if !(4096..=i32::MAX as u64).contains(&self.segment_bytes) {
            return bad(
                "segment_bytes",
                format!(
                    "must be between 4096 and {}, got {}",
                    i32::MAX,
                    self.segment_bytes
                ),
            );
        }
        if !(4096..=i32::MAX as u64).contains(&self.segment_index_bytes) {
            return bad(
                "segment_index_bytes",
                format!(
                    "must be between 4096 and {}, got {}",
                    i32::MAX,
                    self.segment_index_bytes
                ),
            );
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes", "must be at least 1".into());
        }
        if !(128..=i32::MAX as u64).contains(&self.max_record_bytes) {
            return bad(
                "max_record_bytes",
                format!(
                    "must be between 128 and {}, got {}",
                    i32::MAX,
                    self.max_record_bytes
                ),
            );
        }
        if let FlushPolicy::EveryRecords(0) = self.flush {
            return bad("flush", "EveryRecords(n) needs n >= 1".into());
        }
        if self.segment_ms == Some(Duration::ZERO) {
            return bad("segment_ms", "must be positive (or None)".into());
        }
        Ok(())
    }
}
