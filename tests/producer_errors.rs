//! `Producer` failures: each is a typed error, none panics, and none leaves
//! a record behind.

use moldau::{
    Error, Log, LogConfig, PartitionId, Producer, ProducerConfig, Record, TopicConfig,
    OFFSETS_TOPIC,
};

fn open() -> (tempfile::TempDir, Log, Producer) {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    (tmp, log, producer)
}

/// Records stored in `topic`, over all partitions.
fn stored(log: &Log, topic: &str) -> u64 {
    let d = log.describe_topic(topic).unwrap();
    d.partitions.iter().map(|p| p.end_offset.0).sum()
}

#[test]
fn an_unknown_topic_is_unknown_topic() {
    let (_tmp, _log, producer) = open();
    let r = || Record::new("v");
    assert!(matches!(
        producer.send("nope", r()),
        Err(Error::UnknownTopic { topic }) if topic == "nope"
    ));
    assert!(matches!(
        producer.send_to("nope", PartitionId(0), r()),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        producer.send_batch("nope", vec![r()]),
        Err(Error::UnknownTopic { .. })
    ));
}

#[test]
fn a_malformed_name_is_invalid_topic() {
    let (_tmp, _log, producer) = open();
    for name in ["", "a/b", "..", "caf\u{e9}"] {
        assert!(
            matches!(
                producer.send(name, Record::new("v")),
                Err(Error::InvalidTopic { .. })
            ),
            "{name:?}"
        );
    }
}

#[test]
fn the_internal_offsets_topic_is_refused() {
    let (_tmp, log, producer) = open();
    match producer.send(OFFSETS_TOPIC, Record::new("v")) {
        Err(Error::InvalidTopic { reason, .. }) => assert!(reason.contains("internal"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        producer.send_batch(OFFSETS_TOPIC, vec![Record::new("v")]),
        Err(Error::InvalidTopic { .. })
    ));
    assert_eq!(stored(&log, OFFSETS_TOPIC), 0);
}

#[test]
fn an_unknown_partition_is_unknown_partition() {
    let (_tmp, log, producer) = open();
    log.create_topic("orders", 2, None).unwrap();
    assert!(matches!(
        producer.send_to("orders", PartitionId(2), Record::new("v")),
        Err(Error::UnknownPartition { topic, partition: 2, partitions: 2 }) if topic == "orders"
    ));
    assert_eq!(stored(&log, "orders"), 0);
}

#[test]
fn a_topic_deleted_under_a_cached_producer_is_unknown_topic() {
    let (_tmp, log, producer) = open();
    log.create_topic("orders", 2, None).unwrap();
    producer.send("orders", Record::new("v")).unwrap();
    log.delete_topic("orders").unwrap();
    assert!(matches!(
        producer.send("orders", Record::new("v")),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        producer.send_to("orders", PartitionId(0), Record::new("v")),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        producer.send_batch("orders", vec![Record::new("v")]),
        Err(Error::UnknownTopic { .. })
    ));
    // Nothing left to flush; the deleted topic is skipped.
    producer.flush().unwrap();
}

#[test]
fn a_topic_deleted_and_created_again_takes_sends() {
    let (_tmp, log, producer) = open();
    log.create_topic("orders", 1, None).unwrap();
    for _ in 0..3 {
        producer.send("orders", Record::new("old")).unwrap();
    }
    log.delete_topic("orders").unwrap();
    log.create_topic("orders", 1, None).unwrap();
    let sent = producer.send("orders", Record::new("new")).unwrap();
    assert_eq!(sent.offset.0, 0);
    assert_eq!(stored(&log, "orders"), 1);
}

#[test]
fn an_oversized_record_is_too_large_and_appends_nothing() {
    let (_tmp, log, producer) = open();
    let config = TopicConfig {
        max_record_bytes: 1024,
        ..TopicConfig::default()
    };
    log.create_topic("small", 1, Some(config)).unwrap();
    let big = || Record::new(vec![0u8; 2000]);
    assert!(matches!(
        producer.send("small", big()),
        Err(Error::RecordTooLarge { max: 1024, .. })
    ));
    assert!(matches!(
        producer.send_to("small", PartitionId(0), big()),
        Err(Error::RecordTooLarge { .. })
    ));
    // One oversized record among small ones: none of them is appended.
    let batch = vec![Record::new("a"), Record::new("b"), big(), Record::new("c")];
    assert!(matches!(
        producer.send_batch("small", batch),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(stored(&log, "small"), 0);
    // The producer still works.
    assert_eq!(
        producer.send("small", Record::new("ok")).unwrap().offset.0,
        0
    );
}

#[test]
fn sends_after_the_log_closes_are_closed() {
    let (_tmp, log, producer) = open();
    log.create_topic("orders", 2, None).unwrap();
    log.create_topic("audit", 1, None).unwrap();
    producer.send("orders", Record::new("v")).unwrap();
    log.close().unwrap();
    // A cached topic and one never sent to.
    for topic in ["orders", "audit"] {
        assert!(matches!(
            producer.send(topic, Record::new("v")),
            Err(Error::Closed { .. })
        ));
        assert!(matches!(
            producer.send_to(topic, PartitionId(0), Record::new("v")),
            Err(Error::Closed { .. })
        ));
        assert!(matches!(
            producer.send_batch(topic, vec![Record::new("v")]),
            Err(Error::Closed { .. })
        ));
    }
    assert!(matches!(producer.flush(), Err(Error::Closed { .. })));
    assert!(matches!(
        log.producer(ProducerConfig::default()),
        Err(Error::Closed { .. })
    ));
}

#[test]
fn a_zero_batch_size_is_invalid_config() {
    let (_tmp, log, _producer) = open();
    let config = ProducerConfig {
        batch_size: 0,
        ..ProducerConfig::default()
    };
    assert!(matches!(
        log.producer(config),
        Err(Error::InvalidConfig {
            field: "batch_size",
            ..
        })
    ));
}

#[test]
fn sends_racing_a_delete_succeed_or_get_unknown_topic() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let (_tmp, log, producer) = open();
    log.create_topic("orders", 2, None).unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let producer = producer.clone();
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    assert!(Instant::now() < deadline, "no UnknownTopic within 30 s");
                    let r = Record::new(format!("t{t}"));
                    let result = match t % 2 {
                        0 => producer.send("orders", r).map(|_| ()),
                        _ => producer
                            .send_batch("orders", vec![r.clone(), r])
                            .map(|_| ()),
                    };
                    match result {
                        Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(Error::UnknownTopic { .. }) => return,
                        Err(e) => panic!("{e:?}"),
                    };
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "sends did not start within 30 s");
        std::thread::yield_now();
    }
    log.delete_topic("orders").unwrap();
    for t in threads {
        t.join().unwrap();
    }
}
