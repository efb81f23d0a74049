//! CreateTopics (with `validate_only`), DeleteTopics and DescribeConfigs,
//! with topic configs under Kafka's names (`TopicConfig::set_kafka`).

use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors;
use super::{blocking, Shared};
use crate::error::{Error, Result};
use crate::log::{TopicConfig, MAX_PARTITIONS};

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources: set on the topic, or the broker's default.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// A topic to create, checked.
struct Plan {
    name: String,
    partitions: u32,
    config: TopicConfig,
}

fn plan(
    shared: &Shared,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
) -> Result<Plan, (ResponseError, String)> {
    let name = t.name.0.as_str().to_owned();
    crate::types::TopicName::new(&name)
        .map_err(|e| (ResponseError::InvalidTopicException, e.to_string()))?;
    let partitions = match t.num_partitions {
        -1 => shared.config.default_partitions,
        n => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PARTITIONS).contains(n))
            .ok_or_else(|| {
                (
                    ResponseError::InvalidPartitions,
                    format!("{n} partitions: must be from 1 to {MAX_PARTITIONS}"),
                )
            })?,
    };
    if !matches!(t.replication_factor, -1 | 1) {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {} on a single broker; use 1",
                t.replication_factor
            ),
        ));
    }
    if !t.assignments.is_empty() {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "manual replica assignment is not supported".into(),
        ));
    }
    let mut config = shared.log.config().topic_defaults.clone();
    for c in &t.configs {
        let value = c.value.as_ref().map(|v| v.as_str()).unwrap_or_default();
        config
            .set_kafka(c.name.as_str(), value)
            .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    }
    config
        .validate()
        .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    Ok(Plan {
        name,
        partitions,
        config,
    })
}

pub(crate) async fn create_topics(
    shared: &Arc<Shared>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let out = CreatableTopicResult::default().with_name(t.name.clone());
        let plan = match plan(shared, t) {
            Ok(p) => p,
            Err((kind, message)) => {
                results.push(
                    out.with_error_code(errors::of(kind))
                        .with_error_message(Some(s(message))),
                );
                continue;
            }
        };
        let exists = shared
            .log
            .list_topics()
            .iter()
            .any(|n| n.as_str() == plan.name);
        let created = match (exists, req.validate_only) {
            (true, _) => Err(Error::TopicExists {
                topic: plan.name.clone(),
            }),
            (false, true) => Ok(()),
            (false, false) => {
                let log = shared.log.clone();
                let (name, n, config) = (plan.name.clone(), plan.partitions, plan.config.clone());
                blocking(move || log.create_topic(&name, n, Some(config))).await
            }
        };
        results.push(match created {
            Ok(()) => {
                let configs = plan
                    .config
                    .kafka_entries()
                    .into_iter()
                    .map(|(k, v)| {
                        CreatableTopicConfigs::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                            .with_config_source(SOURCE_TOPIC)
                    })
                    .collect();
                // v5 added the created topic's settings to the answer.
                match version >= 5 {
                    true => out
                        .with_num_partitions(plan.partitions as i32)
                        .with_replication_factor(1)
                        .with_configs(Some(configs)),
                    false => out,
                }
            }
            Err(e) => out
                .with_error_code(errors::code(&e))
                .with_error_message(Some(s(e.to_string()))),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) async fn delete_topics(
    shared: &Arc<Shared>,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut results = Vec::with_capacity(req.topic_names.len());
    for name in req.topic_names {
        let log = shared.log.clone();
        let n = name.0.as_str().to_owned();
        let deleted = blocking(move || log.delete_topic(&n)).await;
        let out = DeletableTopicResult::default().with_name(Some(name));
        results.push(match deleted {
            Ok(()) => out,
            // No error message before v5 (not advertised): the code alone.
            Err(e) => {
                tracing::debug!("delete topic: {e}");
                out.with_error_code(errors::code(&e))
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(results)
}

pub(crate) fn describe_configs(
    shared: &Arc<Shared>,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let defaults = shared.log.config().topic_defaults.kafka_entries();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries = match r.resource_type {
                RESOURCE_TOPIC => match shared.log.describe_topic(r.resource_name.as_str()) {
                    Ok(d) => d.config.kafka_entries(),
                    Err(e) => {
                        return out
                            .with_error_code(errors::code(&e))
                            .with_error_message(Some(s(e.to_string())))
                    }
                },
                // A single broker has no settings of its own to show.
                RESOURCE_BROKER => Vec::new(),
                other => {
                    return out
                        .with_error_code(errors::of(ResponseError::InvalidRequest))
                        .with_error_message(Some(s(format!(
                            "resource type {other} is not supported"
                        ))))
                }
            };
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .map(|ks| ks.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>())
                // Null or empty: every setting.
                .filter(|ks| !ks.is_empty());
            let configs = entries
                .into_iter()
                .filter(|(k, _)| keys.as_ref().is_none_or(|ks| ks.iter().any(|w| w == k)))
                .map(|(k, v)| {
                    let is_default = defaults.iter().any(|(dk, dv)| *dk == k && *dv == v);
                    DescribeConfigsResourceResult::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                        .with_config_source(if is_default {
                            SOURCE_DEFAULT
                        } else {
                            SOURCE_TOPIC
                        })
                })
                .collect();
            out.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
