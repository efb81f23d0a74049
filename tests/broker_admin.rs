//! CreateTopics (validate_only honoured, Kafka config names mapped onto the
//! typed config, INVALID_CONFIG naming the key), DeleteTopics, and
//! DescribeConfigs showing the topic's real settings.
#![cfg(feature = "broker")]

mod common;

use common::broker::{test_config, TestBroker};
use common::kafka::topic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use moldau::{CleanupPolicy, FlushPolicy};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn creatable(name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

fn describe(c: &mut common::broker::Client, name: &str) -> DescribeConfigsResponse {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(name))]);
    c.call(&req, 4)
}

#[test]
fn create_describe_delete() {
    let broker = TestBroker::start(test_config());
    let mut c = broker.client();
    let configs = [
        ("flush.messages", "1"),
        ("retention.ms", "-1"),
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1048576"),
    ];
    // validate_only: checked, not created.
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(true)
        .with_topics(vec![creatable("orders", 3, &configs)]);
    let resp = c.call(&req, 7);
    assert_eq!(resp.topics[0].error_code, 0);
    assert!(broker.log.list_topics().is_empty());
    let req = req.with_validate_only(false);
    let resp = c.call(&req, 7);
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].num_partitions, 3);
    let d = broker.log.describe_topic("orders").unwrap();
    assert_eq!(d.partitions.len(), 3);
    assert_eq!(d.config.flush, FlushPolicy::Always);
    assert_eq!(d.config.retention_ms, None);
    assert_eq!(d.config.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(d.config.segment_bytes, 1 << 20);
    // Again: TOPIC_ALREADY_EXISTS.
    assert_eq!(c.call(&req, 7).topics[0].error_code, 36);
    // DescribeConfigs shows the real settings under Kafka's names.
    let resp = describe(&mut c, "orders");
    let r = &resp.results[0];
    assert_eq!(r.error_code, 0);
    let get = |k: &str| {
        r.configs
            .iter()
            .find(|e| e.name.as_str() == k)
            .and_then(|e| e.value.as_ref())
            .map(|v| v.as_str().to_owned())
    };
    assert_eq!(get("flush.messages").as_deref(), Some("1"));
    assert_eq!(get("retention.ms").as_deref(), Some("-1"));
    assert_eq!(get("cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(get("segment.bytes").as_deref(), Some("1048576"));
    assert_eq!(get("retention.bytes").as_deref(), Some("-1"));
    assert_eq!(get("max.message.bytes").as_deref(), Some("1048588"));
    assert_eq!(describe(&mut c, "nope").results[0].error_code, 3);
    // DeleteTopics.
    let del = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topic_names(vec![topic("orders"), topic("nope")]);
    let resp = c.call(&del, 4);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(resp.responses[1].error_code, 3);
    assert!(broker.log.list_topics().is_empty());
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let broker = TestBroker::start(test_config());
    let mut c = broker.client();
    let cases: Vec<(CreatableTopic, i16, &str)> = vec![
        (
            creatable("a", 1, &[("retention.mss", "5")]),
            40,
            "retention.mss",
        ),
        (
            creatable("b", 1, &[("retention.ms", "soon")]),
            40,
            "retention.ms",
        ),
        (
            creatable("c", 1, &[("cleanup.policy", "shred")]),
            40,
            "compact,delete",
        ),
        (creatable("bad name!", 1, &[]), 17, "bad name!"),
        (creatable("d", 0, &[]), 37, "partitions"),
        (
            creatable("e", 1, &[]).with_replication_factor(3),
            38,
            "replication",
        ),
    ];
    for (t, code, needle) in cases {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![t]);
        let resp = c.call(&req, 7);
        let r = &resp.topics[0];
        let msg = r
            .error_message
            .as_ref()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        assert_eq!(r.error_code, code, "{msg}");
        assert!(msg.contains(needle), "{msg:?} should name {needle:?}");
    }
    assert!(broker.log.list_topics().is_empty());
    // -1 partitions: the broker's default.
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(1000)
        .with_topics(vec![creatable("dflt", -1, &[])]);
    assert_eq!(c.call(&req, 4).topics[0].error_code, 0);
    assert_eq!(
        broker.log.describe_topic("dflt").unwrap().partitions.len(),
        1
    );
}
