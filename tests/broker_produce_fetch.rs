//! Produce stores batches verbatim (compressed ones too) at assigned
//! offsets; Fetch returns them from the batch holding the fetch offset,
//! within its byte limits (at least one batch), with Kafka's error codes.
#![cfg(feature = "broker")]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker::{batch, test_config, TestBroker};
use common::kafka::{fetch_request, produce, produce_request, FETCH_V, PRODUCE_V};
use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};
use moldau::record::{encode_compressed_batch, Compression};
use moldau::{Offset, Record, Timestamp};

fn records(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|i| Record::new(format!("value-{i}")).with_key(format!("key-{i}")))
        .collect()
}

#[test]
fn batches_are_stored_verbatim_and_fetched_back() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("events", 2, None).unwrap();
    let mut c = broker.client();
    let first = batch(&records(0, 3));
    let second = Bytes::from(
        encode_compressed_batch(
            &records(3, 50),
            Timestamp::now(),
            Offset(0),
            Compression::Zstd,
        )
        .unwrap(),
    );
    assert_eq!(produce(&mut c, "events", 1, first.clone()), (0, 0));
    assert_eq!(produce(&mut c, "events", 1, second.clone()), (0, 3));
    let resp = c.call(
        &fetch_request(&[("events", 1, 0)], 0, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    assert_eq!(resp.session_id, 0);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (0, 53, 0)
    );
    let got = p.records.clone().unwrap();
    // Stored verbatim: only the base offset (bytes 0..8) was assigned.
    assert_eq!(got.len(), first.len() + second.len());
    assert_eq!(&got[8..first.len()], &first[8..]);
    assert_eq!(&got[first.len() + 8..], &second[8..]);
    assert_eq!(
        i64::from_be_bytes(got[first.len()..first.len() + 8].try_into().unwrap()),
        3
    );
    // The records decode through moldau's own reader as well.
    let stored = broker.log.describe_topic("events").unwrap().partitions[1];
    assert_eq!(stored.end_offset, Offset(53));

    // A fetch offset inside the compressed batch gets that whole batch.
    let resp = c.call(
        &fetch_request(&[("events", 1, 10)], 0, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    let got = resp.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(&got[8..], &second[8..]);
    // At the end: nothing, no error.
    let resp = c.call(
        &fetch_request(&[("events", 1, 53)], 0, 0, 1 << 20, 1 << 20),
        FETCH_V,
    );
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.records.as_ref().unwrap().len()), (0, 0));
}

#[test]
fn byte_limits_return_at_least_one_batch() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("limits", 2, None).unwrap();
    let mut c = broker.client();
    let b = batch(&records(0, 10));
    for p in 0..2 {
        for _ in 0..3 {
            assert_eq!(produce(&mut c, "limits", p, b.clone()).0, 0);
        }
    }
    // A partition limit of one byte still returns the first batch.
    let resp = c.call(
        &fetch_request(&[("limits", 0, 0)], 0, 1, 1 << 20, 1),
        FETCH_V,
    );
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        b.len()
    );
    // A response limit of two batches: partition 0 fills it, partition 1
    // reports its offsets without records.
    let max = 2 * b.len() as i32;
    let resp = c.call(
        &fetch_request(&[("limits", 0, 0), ("limits", 1, 0)], 0, 1, max, 1 << 20),
        FETCH_V,
    );
    let parts = &resp.responses[0].partitions;
    assert_eq!(parts[0].records.as_ref().unwrap().len(), 2 * b.len());
    assert_eq!(parts[1].records.as_ref().unwrap().len(), 0);
    assert_eq!(parts[1].high_watermark, 30);
}

#[test]
fn the_broker_caps_fetch_responses() {
    let mut config = test_config();
    config.max_fetch_bytes = 1024;
    let broker = TestBroker::start(config);
    broker.log.create_topic("capped", 1, None).unwrap();
    let mut c = broker.client();
    let b = batch(&records(0, 5));
    assert!(b.len() < 512);
    for _ in 0..10 {
        assert_eq!(produce(&mut c, "capped", 0, b.clone()).0, 0);
    }
    // The client asks for 1 MiB; the broker's 1 KiB cap wins.
    let resp = c.call(
        &fetch_request(&[("capped", 0, 0)], 0, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    let got = resp.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .len();
    assert!(got > 0 && got <= 1024, "{got} bytes");
}

#[test]
fn fetch_long_polls_until_data_arrives_or_max_wait() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("poll", 1, None).unwrap();
    let mut consumer = broker.client();
    // Nothing arrives: the answer comes after max_wait, empty.
    let started = Instant::now();
    let resp = consumer.call(
        &fetch_request(&[("poll", 0, 0)], 300, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        0
    );
    // Data arrives during a 20 s wait: the answer comes with it.
    let started = Instant::now();
    consumer.send(
        &fetch_request(&[("poll", 0, 0)], 20_000, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    let mut producer = broker.client();
    assert_eq!(
        produce(&mut producer, "poll", 0, batch(&records(0, 1))),
        (0, 0)
    );
    let (_, resp) = consumer.recv::<FetchRequest>(FETCH_V);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!resp.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
}

#[test]
fn errors_have_kafka_codes() {
    let mut config = test_config();
    config.auto_create_topics = false;
    let broker = TestBroker::start(config);
    broker.log.create_topic("t", 1, None).unwrap();
    let mut c = broker.client();
    let good = batch(&records(0, 2));
    assert_eq!(
        produce(&mut c, "missing", 0, good.clone()).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce(&mut c, "t", 7, good.clone()).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce(&mut c, "bad name!", 0, good.clone()).0,
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut c, "t", 0, Bytes::from(corrupt)).0,
        2,
        "CORRUPT_MESSAGE"
    );
    let big = batch(&[Record::new(vec![7u8; 2 << 20])]);
    assert_eq!(produce(&mut c, "t", 0, big).0, 10, "MESSAGE_TOO_LARGE");
    let resp = c.call(&produce_request("t", 0, good.clone(), 5), PRODUCE_V);
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );
    // Two batches for one partition: INVALID_RECORD, neither stored.
    let two = Bytes::from([good.to_vec(), good.to_vec()].concat());
    assert_eq!(produce(&mut c, "t", 0, two).0, 87, "INVALID_RECORD");
    // A record without a key on a compacted topic: INVALID_RECORD.
    let compacted = moldau::TopicConfig {
        cleanup_policy: moldau::CleanupPolicy::Compact,
        ..moldau::TopicConfig::default()
    };
    broker
        .log
        .create_topic("table", 1, Some(compacted))
        .unwrap();
    let keyless = batch(&[Record::new("no key")]);
    assert_eq!(produce(&mut c, "table", 0, keyless).0, 87, "INVALID_RECORD");
    assert_eq!(produce(&mut c, "table", 0, good.clone()).0, 0);
    // Nothing above was stored.
    assert_eq!(
        broker.log.describe_topic("t").unwrap().partitions[0].end_offset,
        Offset(0)
    );
    // Fetch errors.
    let resp = c.call(
        &fetch_request(&[("t", 0, 5)], 0, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    assert_eq!(
        resp.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
    let resp = c.call(
        &fetch_request(&[("missing", 0, 0)], 0, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    assert_eq!(resp.responses[0].partitions[0].error_code, 3);
    // Metadata without auto-creation: unknown.
    let req = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(common::kafka::topic("missing"))),
    ]));
    let resp = c.call(&req, 12);
    assert_eq!(resp.topics[0].error_code, 3);
}

#[test]
fn acks_zero_gets_no_response() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("quiet", 1, None).unwrap();
    let mut c = broker.client();
    c.send(
        &produce_request("quiet", 0, batch(&records(0, 1)), 0),
        PRODUCE_V,
    );
    // The next answer on the connection is the acks=1 produce's.
    let sent = c.send(
        &produce_request("quiet", 0, batch(&records(1, 1)), 1),
        PRODUCE_V,
    );
    let (got, resp) = c.recv::<ProduceRequest>(PRODUCE_V);
    assert_eq!(got, sent);
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 1);
}
