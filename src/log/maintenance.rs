//! Background maintenance of a [`Log`]: retention, compaction, interval
//! flushes and group expiry, run by the maintenance thread or on demand.

use std::path::Path;
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::Duration;

use super::config::{CleanupPolicy, TopicConfig};
use super::{Inner, Log, Topic};
use crate::error::{Error, Result};
use crate::notify::Doorbell;
use crate::partition::{CompactionSettings, Retention};
use crate::types::{Offset, PartitionId, Timestamp, TopicName};

/// What one [`Log::run_maintenance`] pass did, summed over partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Segments deleted by retention.
    pub segments_deleted: usize,
    /// Bytes of log they held.
    pub bytes_deleted: u64,
    /// Partitions compaction rewrote.
    pub partitions_compacted: usize,
    /// Bytes compaction freed.
    pub bytes_reclaimed: u64,
    /// Records compaction removed.
    pub records_removed: u64,
}

impl TopicConfig {
    /// The retention limits of a topic whose cleanup policy deletes.
    pub(crate) fn retention(&self) -> Option<Retention> {
        match self.cleanup_policy {
            CleanupPolicy::Compact => None,
            CleanupPolicy::Delete | CleanupPolicy::CompactDelete => Some(Retention {
                max_age: self.retention_ms,
                max_bytes: self.retention_bytes,
            }),
        }
    }

    /// The compaction settings of a topic whose cleanup policy compacts.
    pub(crate) fn compaction(&self, key_map_bytes: usize) -> Option<CompactionSettings> {
        match self.cleanup_policy {
            CleanupPolicy::Delete => None,
            CleanupPolicy::Compact | CleanupPolicy::CompactDelete => Some(CompactionSettings {
                min_cleanable_dirty_ratio: self.min_cleanable_dirty_ratio,
                min_compaction_lag: self.min_compaction_lag_ms,
                delete_retention: self.delete_retention_ms,
                key_map_bytes,
            }),
        }
    }
}

impl Log {
    /// Runs retention and compaction on every partition as of `now` (time
    /// from the caller, so tests need no sleeps), plus what the maintenance
    /// thread does each tick: interval flushes and expiring group members.
    /// The maintenance thread calls this every
    /// [`LogConfig::retention_check_interval`](crate::LogConfig::retention_check_interval)
    /// with the log's clock.
    ///
    /// A partition whose pass fails is skipped (a failed write poisons it, so
    /// its next append reports the failure); the first error is returned
    /// after every other partition had its pass.
    pub fn run_maintenance(&self, now: Timestamp) -> Result<MaintenanceReport> {
        self.inner.check_open()?;
        let mut first_err = self.inner.maintain().err();
        let mut report = MaintenanceReport::default();
        for topic in self.inner.all_topics() {
            if let Err(e) = self.inner.clean_topic(&topic, now, &mut report) {
                match topic.map_err(e) {
                    // Deleted while its pass ran: nothing left to maintain.
                    Error::UnknownTopic { .. } => {}
                    e => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(report), Err)
    }

    /// Moves the start offset of a partition to `before` (Kafka's
    /// DeleteRecords): records below it are no longer readable, whole
    /// segments below it are deleted, and the new start survives a restart.
    /// Consumers positioned below it are reset by their `auto_offset_reset`.
    /// Returns the new start offset.
    ///
    /// Errors: [`Error::UnknownTopic`], [`Error::UnknownPartition`],
    /// [`Error::OffsetOutOfRange`] past the end offset.
    pub fn delete_records(
        &self,
        topic: impl AsRef<str>,
        partition: u32,
        before: Offset,
    ) -> Result<Offset> {
        let topic = self.topic(&TopicName::new(topic)?)?;
        let p = topic.partition(PartitionId(partition))?;
        p.log
            .delete_records_before(before)
            .map_err(|e| topic.map_err(e))?;
        Ok(p.log.start_offset())
    }
}

impl Inner {
    fn clean_topic(
        &self,
        topic: &Topic,
        now: Timestamp,
        report: &mut MaintenanceReport,
    ) -> Result<()> {
        let config = topic.config();
        let retention = config.retention();
        let compaction = config.compaction(self.config.compaction_buffer_bytes);
        let mut first_err = None;
        for p in topic.partitions().iter() {
            if let Some(settings) = &compaction {
                match p.log.compact(now, settings) {
                    Ok(o) if o.cleaned => {
                        report.partitions_compacted += 1;
                        report.bytes_reclaimed += o.bytes_reclaimed();
                        report.records_removed += o.records_removed;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            if let Some(retention) = retention {
                match p.log.apply_retention(now, retention) {
                    Ok(o) => {
                        report.segments_deleted += o.segments_deleted;
                        report.bytes_deleted += o.bytes_deleted;
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Starts the maintenance thread: every `maintenance_interval` it flushes
/// and expires group members; every `retention_check_interval` it also
/// runs retention and compaction. It holds only a weak handle, so dropping
/// the last `Log` ends it.
pub(super) fn spawn(inner: Weak<Inner>, stop: Doorbell) -> Result<JoinHandle<()>> {
    let (tick, check) = inner
        .upgrade()
        .map(|i| {
            (
                i.config.maintenance_interval,
                i.config.retention_check_interval,
            )
        })
        .unwrap_or_default();
    std::thread::Builder::new()
        .name("moldau-maint".into())
        .spawn(move || {
            let mut since_check = Duration::ZERO;
            loop {
                if stop.wait_timeout(tick) {
                    return;
                }
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                since_check += tick;
                // Failures poison the partition that had them, and the next
                // append there reports it; maintenance carries on with the rest.
                let result = match since_check >= check {
                    true => {
                        since_check = Duration::ZERO;
                        let log = Log { inner };
                        let now = log.inner.config.clock.now();
                        log.run_maintenance(now).map(|_| ())
                    }
                    false => inner.maintain(),
                };
                if let Err(Error::Closed { .. }) = result {
                    return;
                }
            }
        })
        .map_err(|e| Error::io("spawn thread", Path::new("moldau-maint"), e))
}
