//! OffsetCommit and OffsetFetch: classic groups' offsets go to the same
//! store (`__consumer_offsets`) as the in-process consumers' offsets.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::{self, Code, NONE};
use super::{blocking, groups, Shared};
use crate::error::Error;
use crate::group::OffsetAndMetadata;
use crate::types::{Offset, TopicPartition};

pub(crate) async fn commit(shared: &Arc<Shared>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.as_str().to_owned();
    let mut code = groups::check_commit(
        shared,
        &group,
        req.member_id.as_str(),
        req.generation_id_or_member_epoch,
    );
    // Each partition's own problem (unknown topic, bad offset) is its own
    // error; the rest are committed together.
    let mut per_partition: Vec<(StrBytes, Vec<(i32, Code)>)> = Vec::new();
    let mut offsets = Vec::new();
    for t in &req.topics {
        let mut parts = Vec::new();
        for p in &t.partitions {
            let tp = crate::types::TopicName::new(t.name.0.as_str()).and_then(|n| {
                let topic = shared.log.topic(&n)?;
                let i = u32::try_from(p.partition_index).map_err(|_| topic.unknown())?;
                topic.partition(crate::types::PartitionId(i))?;
                Ok(TopicPartition::new(n, i))
            });
            let offset = u64::try_from(p.committed_offset);
            let metadata = p
                .committed_metadata
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default();
            let c = match (tp, offset) {
                (Err(e), _) => errors::code(&e),
                (Ok(_), Err(_)) => errors::of(ResponseError::InvalidCommitOffsetSize),
                (Ok(_), Ok(_)) if metadata.len() > crate::group::OFFSET_METADATA_MAX_BYTES => {
                    errors::of(ResponseError::OffsetMetadataTooLarge)
                }
                (Ok(tp), Ok(o)) => {
                    offsets.push((
                        tp,
                        OffsetAndMetadata {
                            offset: Offset(o),
                            metadata,
                        },
                    ));
                    NONE
                }
            };
            parts.push((p.partition_index, c));
        }
        per_partition.push((t.name.0.clone(), parts));
    }
    if code == NONE && !offsets.is_empty() {
        let log = shared.log.clone();
        let g = group.clone();
        // The commit appends to `__consumer_offsets` and fsyncs.
        let written = blocking(move || log.inner.groups.commit_standalone(&g, &offsets)).await;
        if let Err(e) = written {
            tracing::warn!(group = %group, "offset commit failed: {e}");
            code = match e {
                // The in-process coordinator has members: the group is theirs.
                Error::InvalidArgument { what: "group", .. } => {
                    errors::of(ResponseError::InconsistentGroupProtocol)
                }
                e => errors::code(&e),
            };
        }
    }
    let topics = per_partition
        .into_iter()
        .map(|(name, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(TopicName(name))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(i, c)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(i)
                                .with_error_code(if c == NONE { code } else { c })
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

pub(crate) fn fetch(shared: &Arc<Shared>, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let group = req.group_id.0.as_str().to_owned();
    let wanted: Vec<(String, Vec<i32>)> = match req.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name.0.as_str().to_owned(), t.partition_indexes))
            .collect(),
        // Null (v2+): every partition the group committed.
        None => {
            let mut all: Vec<(String, Vec<i32>)> = Vec::new();
            if let Ok(d) = shared.log.describe_group(&group) {
                for lag in d.offsets.iter().filter(|l| l.committed.is_some()) {
                    let name = lag.partition.topic.to_string();
                    let p = lag.partition.partition.0 as i32;
                    match all.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, ps)) => ps.push(p),
                        None => all.push((name, vec![p])),
                    }
                }
            }
            all
        }
    };
    let topics = wanted
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|i| {
                    let committed = crate::types::TopicName::new(&name).ok().and_then(|n| {
                        let tp = TopicPartition::new(n, u32::try_from(i).ok()?);
                        shared.log.inner.groups.committed(&group, &tp)
                    });
                    let out = OffsetFetchResponsePartition::default()
                        .with_partition_index(i)
                        .with_committed_leader_epoch(-1);
                    match committed {
                        Some(c) => out
                            .with_committed_offset(c.offset.0 as i64)
                            .with_metadata(Some(StrBytes::from_string(c.metadata))),
                        None => out
                            .with_committed_offset(-1)
                            .with_metadata(Some(StrBytes::default())),
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
