//! Where `Producer` sends records: keyed ones to Kafka's murmur2 partition,
//! keyless ones to a sticky partition that moves on after `batch_size`
//! bytes, explicit ones where they are told, and new partitions after the
//! topic grows.

mod producer_common;

use std::collections::BTreeSet;

use moldau::{murmur2, partition_for_key, Log, LogConfig, PartitionId, ProducerConfig, Record};
use producer_common::read_records;

#[test]
fn keyed_records_land_on_their_key_partition_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("orders", 6, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); 6];
    for round in 0..2 {
        for i in 0..100 {
            let key = format!("customer-{i}");
            let sent = producer
                .send(
                    "orders",
                    Record::new(format!("{round}")).with_key(key.clone()),
                )
                .unwrap();
            let want = partition_for_key(key.as_bytes(), 6).unwrap();
            assert_eq!(sent.partition, want, "{key}");
            assert_eq!(sent.topic.as_str(), "orders");
            expected[want.0 as usize].push(key);
        }
    }
    log.close().unwrap();
    for (p, keys) in expected.iter().enumerate() {
        let stored: Vec<String> = read_records(tmp.path(), "orders", p as u32)
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(&stored, keys, "partition {p}");
    }
}

#[test]
fn key_partition_matches_kafkas_java_client() {
    // Kafka's UtilsTest: murmur2("foobar") = -790332482.
    const FOOBAR: i32 = -790_332_482;
    assert_eq!(murmur2(b"foobar"), FOOBAR);
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    for n in 1..=12u32 {
        let want = PartitionId((FOOBAR & 0x7fff_ffff) as u32 % n);
        assert_eq!(
            partition_for_key(b"foobar", n),
            Some(want),
            "{n} partitions"
        );
        let topic = format!("t{n}");
        log.create_topic(&topic, n, None).unwrap();
        let sent = producer
            .send(&topic, Record::new("v").with_key("foobar"))
            .unwrap();
        assert_eq!(sent.partition, want, "{n} partitions");
    }
    assert_eq!(partition_for_key(b"foobar", 0), None);
    log.close().unwrap();
}

#[test]
fn keyless_records_stick_to_a_partition_for_a_batch_then_move() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("events", 4, None).unwrap();
    // Each record is over 100 bytes, so a batch holds fewer than 10.
    let config = ProducerConfig {
        batch_size: 1000,
        ..ProducerConfig::default()
    };
    let producer = log.producer(config).unwrap();
    let value = vec![b'x'; 100];
    let partitions: Vec<u32> = (0..400)
        .map(|_| {
            producer
                .send("events", Record::new(value.clone()))
                .unwrap()
                .partition
                .0
        })
        .collect();
    // Runs of one partition; a partitioner that picks the next partition at
    // random may pick the same one again, which only lengthens a run.
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for &p in &partitions {
        match runs.last_mut() {
            Some((q, n)) if *q == p => *n += 1,
            _ => runs.push((p, 1)),
        }
    }
    // 400 records of ~124 estimated bytes fill ~45 batches of 1000 bytes;
    // a partitioner that moves on after each changes partition ~34 times
    // even if it may pick the same partition again (1 in 4).
    assert!(runs.len() >= 15, "moved too rarely: {runs:?}");
    for (p, n) in &runs[..runs.len() - 1] {
        assert!(*n >= 5, "partition {p} kept only {n} records: {runs:?}");
    }
    let used: BTreeSet<u32> = partitions.iter().copied().collect();
    assert_eq!(used, (0..4).collect(), "every partition gets records");
    log.close().unwrap();
}

#[test]
fn an_explicit_partition_is_honored() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("orders", 3, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    // A key that hashes elsewhere does not override the explicit partition.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| partition_for_key(k.as_bytes(), 3) != Some(PartitionId(2)))
        .unwrap();
    for i in 0..5u64 {
        let sent = producer
            .send_to(
                "orders",
                PartitionId(2),
                Record::new(format!("v{i}")).with_key(key.clone()),
            )
            .unwrap();
        assert_eq!((sent.partition, sent.offset.0), (PartitionId(2), 2 * i));
        let keyless = producer
            .send_to("orders", PartitionId(2), Record::new("keyless"))
            .unwrap();
        assert_eq!(keyless.partition, PartitionId(2));
    }
    log.close().unwrap();
    assert_eq!(read_records(tmp.path(), "orders", 2).len(), 10);
    assert!(read_records(tmp.path(), "orders", 0).is_empty());
    assert!(read_records(tmp.path(), "orders", 1).is_empty());
}

#[test]
fn sends_reach_partitions_added_after_the_topic_was_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("events", 2, None).unwrap();
    let config = ProducerConfig {
        batch_size: 500,
        ..ProducerConfig::default()
    };
    let producer = log.producer(config).unwrap();
    producer.send("events", Record::new("before")).unwrap();
    log.add_partitions("events", 4).unwrap();

    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| partition_for_key(k.as_bytes(), 4) == Some(PartitionId(3)))
        .unwrap();
    let keyed = producer
        .send("events", Record::new("v").with_key(key))
        .unwrap();
    assert_eq!(keyed.partition, PartitionId(3));

    let used: BTreeSet<u32> = (0..400)
        .map(|_| {
            producer
                .send("events", Record::new(vec![b'x'; 100]))
                .unwrap()
                .partition
                .0
        })
        .collect();
    assert_eq!(used, (0..4).collect(), "keyless sends reach new partitions");
    log.close().unwrap();
}
