//! Offsets by time, and committing a group's offsets from outside the group
//! (what `kafka-consumer-groups.sh --reset-offsets` does).

use super::Log;
use crate::error::Result;
use crate::group::OffsetAndMetadata;
use crate::types::{Offset, Timestamp, TopicPartition};

impl Log {
    /// The first offset of `tp` whose timestamp is at or after `ts` (Kafka's
    /// ListOffsets by time), or `None` if every record is older.
    ///
    /// Errors: [`Error::UnknownTopic`](crate::Error::UnknownTopic),
    /// [`Error::UnknownPartition`](crate::Error::UnknownPartition), and those
    /// of [`PartitionLog::offset_for_timestamp`](crate::PartitionLog::offset_for_timestamp).
    pub fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        ts: Timestamp,
    ) -> Result<Option<Offset>> {
        let topic = self.topic(&tp.topic)?;
        let partition = topic.partition(tp.partition)?;
        partition
            .log
            .offset_for_timestamp(ts)
            .map_err(|e| topic.map_err(e))
    }

    /// Commits `offsets` for `group` on behalf of an administrator, as
    /// `kafka-consumer-groups.sh --reset-offsets --execute` does. Like Kafka,
    /// this is refused while the group has active members (they would
    /// overwrite the reset with their own commits); all offsets are written
    /// together, or none.
    ///
    /// ```
    /// use moldau::{Log, LogConfig, Offset, OffsetAndMetadata, Record, TopicName, TopicPartition};
    /// # let tmp = tempfile::tempdir()?;
    /// let log = Log::open(tmp.path(), LogConfig::default())?;
    /// log.create_topic("orders", 1, None)?;
    /// let tp = TopicPartition::new(TopicName::new("orders")?, 0);
    /// log.commit_group_offsets("billing", &[(tp.clone(), OffsetAndMetadata::new(Offset(0)))])?;
    /// assert_eq!(log.committed("billing", &tp)?.map(|c| c.offset), Some(Offset(0)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Errors: [`Error::InvalidArgument`](crate::Error::InvalidArgument) if
    /// the group has members, or for an invalid group id or offset;
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic),
    /// [`Error::UnknownPartition`](crate::Error::UnknownPartition).
    pub fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        self.inner.check_open()?;
        self.inner.groups.commit_standalone(group, offsets)
    }
}
