//! What `Producer` stores besides key and value: the create time from the
//! log's clock or the caller's timestamp (and reports the stored one), and
//! headers unchanged.

mod producer_common;

use std::sync::Arc;

use moldau::{Header, Log, LogConfig, ManualClock, PartitionId, ProducerConfig, Record, Timestamp};
use producer_common::read_records;

#[test]
fn timestamps_come_from_the_clock_or_the_caller() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let config = LogConfig {
        clock: clock.clone(),
        ..LogConfig::default()
    };
    let log = Log::open(tmp.path(), config).unwrap();
    log.create_topic("events", 1, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();

    let stamped = producer.send("events", Record::new("now")).unwrap();
    assert_eq!(stamped.timestamp, Timestamp(1_000_000));
    clock.advance_ms(500);
    let given = producer
        .send("events", Record::new("given").with_timestamp(Timestamp(42)))
        .unwrap();
    assert_eq!(given.timestamp, Timestamp(42));
    let to = producer
        .send_to("events", PartitionId(0), Record::new("later"))
        .unwrap();
    assert_eq!(to.timestamp, Timestamp(1_000_500));
    clock.advance_ms(500);
    let batch = producer
        .send_batch(
            "events",
            vec![
                Record::new("b0"),
                Record::new("b1").with_timestamp(Timestamp(7)),
            ],
        )
        .unwrap();
    let batch_ts: Vec<_> = batch.iter().map(|m| m.timestamp).collect();
    assert_eq!(batch_ts, [Timestamp(1_001_000), Timestamp(7)]);
    log.close().unwrap();

    let stored: Vec<_> = read_records(tmp.path(), "events", 0)
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(
        stored,
        [
            stamped.timestamp,
            given.timestamp,
            to.timestamp,
            batch[0].timestamp,
            batch[1].timestamp
        ]
    );
}

#[test]
fn headers_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("events", 1, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut record = Record::new("v")
        .with_key("k")
        .with_header("trace", "abc")
        .with_header("trace", "def")
        .with_header("empty", "");
    record.headers.push(Header {
        key: "null".into(),
        value: None,
    });
    let sent = producer.send("events", record.clone()).unwrap();
    let batch = producer
        .send_batch("events", vec![record.clone(), Record::new("bare")])
        .unwrap();
    log.close().unwrap();

    let stored = read_records(tmp.path(), "events", 0);
    assert_eq!(stored.len(), 3);
    for (r, offset) in stored[..2].iter().zip([sent.offset, batch[0].offset]) {
        assert_eq!(r.offset, offset);
        assert_eq!(r.headers, record.headers);
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
    }
    assert!(stored[2].headers.is_empty());
}
