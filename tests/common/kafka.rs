//! Request builders for broker tests.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::broker::Client;

pub const PRODUCE_V: i16 = 9;
pub const FETCH_V: i16 = 12;

pub fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

pub fn produce_request(
    topic_name: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic(topic_name))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// Produces `records` with acks=1; returns (error code, base offset).
pub fn produce(c: &mut Client, topic_name: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let resp: ProduceResponse = c.call(
        &produce_request(topic_name, partition, records, 1),
        PRODUCE_V,
    );
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_request(
    parts: &[(&str, i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (t, p, offset) in parts {
        let part = FetchPartition::default()
            .with_partition(*p)
            .with_fetch_offset(*offset)
            .with_partition_max_bytes(partition_max_bytes);
        match topics.iter_mut().find(|x| x.topic.0.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(topic(t))
                    .with_partitions(vec![part]),
            ),
        }
    }
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(topics)
}
