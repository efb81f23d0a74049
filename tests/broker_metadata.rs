//! Metadata: this broker as the only node with its advertised address,
//! every topic when none is named, auto-creation with the configured
//! partition count when allowed, and Kafka's errors otherwise. Every
//! advertised version encodes.
#![cfg(feature = "broker")]

mod common;

use common::broker::{test_config, TestBroker};
use common::kafka::topic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::MetadataRequest;

fn named(names: &[&str], allow: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_allow_auto_topic_creation(allow)
        .with_topics(Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic(n))))
                .collect(),
        ))
}

#[test]
fn brokers_topics_and_auto_creation() {
    let mut config = test_config();
    config.default_partitions = 3;
    config.advertised_host = Some("kafka.example".into());
    config.advertised_port = Some(9999);
    let broker = TestBroker::start(config);
    broker.log.create_topic("existing", 2, None).unwrap();
    let mut c = broker.client();
    for version in 0..=12 {
        let all = match version {
            0 => MetadataRequest::default().with_topics(Some(Vec::new())),
            _ => MetadataRequest::default().with_topics(None),
        };
        let resp = c.call(&all, version);
        assert_eq!(resp.brokers.len(), 1, "v{version}");
        assert_eq!(resp.brokers[0].host.as_str(), "kafka.example");
        assert_eq!(resp.brokers[0].port, 9999);
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().unwrap().0.as_str() == "existing");
        assert_eq!(t.unwrap().partitions.len(), 2, "v{version}");
    }
    // Not allowed by the request (v4+): unknown, not created.
    let resp = c.call(&named(&["fresh"], false), 12);
    assert_eq!(resp.topics[0].error_code, 3);
    assert!(broker.log.describe_topic("fresh").is_err());
    // Allowed: created with the default partition count.
    let resp = c.call(&named(&["fresh", "bad name!"], true), 12);
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions.len(), 3);
    let p = &resp.topics[0].partitions[2];
    assert_eq!((p.partition_index, p.leader_id.0), (2, 0));
    assert_eq!(resp.topics[1].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(
        broker.log.describe_topic("fresh").unwrap().partitions.len(),
        3
    );
}
