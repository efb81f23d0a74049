//! Typed configuration of a [`Consumer`](crate::Consumer).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::group::assignor::Assignor;

/// Where a consumer starts in a partition with no committed offset, or with
/// one that is no longer in the log (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The first record still in the log.
    Earliest,
    /// The end: only records appended from now on (Kafka's default).
    #[default]
    Latest,
    /// No reset: polling fails with [`Error::NoOffset`].
    None,
}

/// Configuration of a consumer. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Most records one `poll` returns. Default 500 (`max.poll.records`); at least 1.
    pub max_poll_records: usize,
    /// Most bytes read from one partition per poll (at least one batch is
    /// always read). Default 1 MiB (`max.partition.fetch.bytes`); at least 1.
    pub max_partition_fetch_bytes: usize,
    /// Where to start without a committed offset. Default [`AutoOffsetReset::Latest`].
    pub auto_offset_reset: AutoOffsetReset,
    /// Commit the positions of a group member's partitions every
    /// `auto_commit_interval` (checked at each poll), before they are revoked,
    /// and on close. Default `true` (`enable.auto.commit`).
    pub enable_auto_commit: bool,
    /// Default 5 s (`auto.commit.interval.ms`).
    pub auto_commit_interval: Duration,
    /// A group member that does not call `poll` for this long is removed from
    /// the group and its partitions go to the others. Default 5 minutes
    /// (`max.poll.interval.ms`); at least 1 ms.
    pub max_poll_interval: Duration,
    /// How a group spreads partitions; all members of a group must agree.
    /// Default [`Assignor::Range`] (Kafka's first default assignor).
    pub assignor: Assignor,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_poll_records: 500,
            max_partition_fetch_bytes: 1 << 20,
            auto_offset_reset: AutoOffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            max_poll_interval: Duration::from_secs(300),
            assignor: Assignor::Range,
        }
    }
}

impl ConsumerConfig {
    /// Checks every limit; called by [`Log::consumer`](crate::Log::consumer).
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.max_poll_records == 0 {
            return bad("max_poll_records", "must be at least 1");
        }
        if self.max_partition_fetch_bytes == 0 {
            return bad("max_partition_fetch_bytes", "must be at least 1");
        }
        if self.max_poll_interval < Duration::from_millis(1) {
            return bad("max_poll_interval", "must be at least 1 ms");
        }
        Ok(())
    }
}
