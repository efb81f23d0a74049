//! ListOffsets: the earliest (-2) and latest (-1) offsets, and the first
//! offset at or after a timestamp.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{errors, Shared};
use crate::error::{Error, Result};
use crate::log::Partition;
use crate::types::{Offset, PartitionId, Timestamp, TopicName};

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub(crate) fn handle(shared: &Arc<Shared>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = TopicName::new(t.name.0.as_str()).and_then(|n| shared.log.topic(&n));
            let parts = t
                .partitions
                .into_iter()
                .map(|p| {
                    let out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let found = topic.as_ref().map_err(|e| e.to_string()).and_then(|topic| {
                        u32::try_from(p.partition_index)
                            .map_err(|_| "negative partition".to_owned())
                            .and_then(|i| {
                                topic.partition(PartitionId(i)).map_err(|e| e.to_string())
                            })
                    });
                    let partition = match found {
                        Ok(partition) => partition,
                        Err(why) => {
                            tracing::debug!(topic = %t.name.0.as_str(), "list offsets: {why}");
                            return out
                                .with_error_code(errors::of(ResponseError::UnknownTopicOrPartition))
                                .with_timestamp(-1)
                                .with_offset(-1);
                        }
                    };
                    match lookup(&partition, p.timestamp) {
                        Ok((ts, offset)) => out.with_timestamp(ts).with_offset(offset),
                        Err(e) => out
                            .with_error_code(errors::code(&e))
                            .with_timestamp(-1)
                            .with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The (timestamp, offset) answer for `ts`; `(-1, -1)` when no record is
/// at or after it.
fn lookup(p: &Partition, ts: i64) -> Result<(i64, i64)> {
    let log = &p.log;
    match ts {
        LATEST => Ok((-1, log.end_offset().0 as i64)),
        EARLIEST => Ok((-1, log.start_offset().0 as i64)),
        MAX_TIMESTAMP => Err(Error::InvalidArgument {
            what: "timestamp",
            reason: "the max-timestamp lookup (-3) is not supported".into(),
        }),
        ts => match log.offset_for_timestamp(Timestamp(ts))? {
            None => Ok((-1, -1)),
            Some(offset) => Ok((record_timestamp(p, offset)?.unwrap_or(ts), offset.0 as i64)),
        },
    }
}

/// The timestamp of the record at `offset`, if it is still there.
fn record_timestamp(p: &Partition, offset: Offset) -> Result<Option<i64>> {
    let batches = p.log.read(offset, 1)?;
    for r in batches.records() {
        let r = r?;
        if r.offset >= offset {
            return Ok(Some(r.timestamp.0));
        }
    }
    Ok(None)
}
