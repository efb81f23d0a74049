//! Metadata: this broker as the only node, leader of every partition;
//! unknown topics are created when allowed.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{blocking, errors, Shared};
use crate::error::Error;
use crate::log::OFFSETS_TOPIC;

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let node = BrokerId(shared.config.node_id);
    let broker = MetadataResponseBroker::default()
        .with_node_id(node)
        .with_host(StrBytes::from_string(shared.advertised_host.clone()))
        .with_port(shared.advertised_port);
    // v0 asks for every topic with an empty list, later versions with null.
    let names: Vec<String> = match req.topics {
        Some(t) if !(t.is_empty() && version == 0) => t
            .into_iter()
            .filter_map(|t| t.name.map(|n| n.0.as_str().to_owned()))
            .collect(),
        _ => shared
            .log
            .list_topics()
            .into_iter()
            .map(|n| n.to_string())
            .collect(),
    };
    // Before v4 a request could not say no; Kafka then follows its own setting.
    let may_create =
        shared.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        topics.push(topic(shared, name, may_create, node, version).await);
    }
    // Fields a version lacks must keep their defaults, or encoding fails.
    let resp = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    let resp = match version >= 1 {
        true => resp.with_controller_id(node),
        false => resp,
    };
    match version >= 2 {
        true => resp.with_cluster_id(Some(StrBytes::from_static_str("moldau"))),
        false => resp,
    }
}

async fn topic(
    shared: &Arc<Shared>,
    name: String,
    may_create: bool,
    node: BrokerId,
    version: i16,
) -> MetadataResponseTopic {
    let mut described = shared.log.describe_topic(&name);
    if may_create && matches!(described, Err(Error::UnknownTopic { .. })) {
        let created = create(shared, &name).await;
        described = match created {
            Ok(()) | Err(Error::TopicExists { .. }) => shared.log.describe_topic(&name),
            Err(e) => Err(e),
        };
    }
    let out = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
    match described {
        Ok(d) => {
            let partitions = d
                .partitions
                .iter()
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p.partition.0 as i32)
                        .with_leader_id(node)
                        .with_replica_nodes(vec![node])
                        .with_isr_nodes(vec![node])
                })
                .collect();
            // v0 has no is_internal field (and no way to ask for internal topics).
            out.with_is_internal(version >= 1 && name == OFFSETS_TOPIC)
                .with_partitions(partitions)
        }
        Err(e @ Error::UnknownTopic { .. }) => {
            tracing::debug!(topic = %name, "metadata: {e}");
            out.with_error_code(errors::of(ResponseError::UnknownTopicOrPartition))
        }
        Err(e) => {
            tracing::debug!(topic = %name, "metadata: {e}");
            out.with_error_code(errors::code(&e))
        }
    }
}

/// Creates `name` with the default partition count, on the blocking pool
/// (creating partition directories fsyncs).
pub(crate) async fn create(shared: &Arc<Shared>, name: &str) -> crate::Result<()> {
    let log = shared.log.clone();
    let name = name.to_owned();
    let partitions = shared.config.default_partitions;
    blocking(move || log.create_topic(&name, partitions, None)).await
}
