//! Topics of a `Log`: create, list, describe, add partitions, delete, and
//! what survives a restart.

use std::time::Duration;

use moldau::{Error, FlushPolicy, Log, LogConfig, TopicConfig};

#[test]
fn topics_and_their_config_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let custom = TopicConfig {
        segment_bytes: 1 << 20,
        flush: FlushPolicy::Always,
        retention_ms: Some(Duration::from_secs(60)),
        ..TopicConfig::default()
    };
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("orders", 3, Some(custom.clone())).unwrap();
        log.create_topic("audit", 1, None).unwrap();
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let names: Vec<_> = log.list_topics().iter().map(|t| t.to_string()).collect();
    assert_eq!(names, ["audit", "orders"]);
    let orders = log.describe_topic("orders").unwrap();
    assert_eq!(orders.config, custom);
    assert_eq!(orders.partitions.len(), 3);
    assert_eq!(
        log.describe_topic("audit").unwrap().config,
        TopicConfig::default()
    );
}

#[test]
fn a_second_opener_gets_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(
        Log::open(dir.path(), LogConfig::default()),
        Err(Error::Locked { .. })
    ));
    log.close().unwrap();
    Log::open(dir.path(), LogConfig::default()).unwrap();
}

fn tp(topic: &str, p: u32) -> moldau::TopicPartition {
    moldau::TopicPartition::new(moldau::TopicName::new(topic).unwrap(), p)
}

#[test]
fn bad_names_and_counts_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let long = "x".repeat(250);
    for bad in ["", ".", "..", "../x", "a/b", "caf\u{e9}", long.as_str()] {
        assert!(
            matches!(
                log.create_topic(bad, 1, None),
                Err(Error::InvalidTopic { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        log.create_topic("__consumer_offsets", 1, None),
        Err(Error::InvalidTopic { .. })
    ));
    assert!(matches!(
        log.create_topic("t", 0, None),
        Err(Error::InvalidArgument { .. })
    ));
    let bad_config = TopicConfig {
        segment_bytes: 10,
        ..TopicConfig::default()
    };
    assert!(matches!(
        log.create_topic("t", 1, Some(bad_config)),
        Err(Error::InvalidConfig { .. })
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
    log.create_topic("t", 1, None).unwrap();
    assert!(matches!(
        log.create_topic("t", 1, None),
        Err(Error::TopicExists { .. })
    ));
    assert!(matches!(
        log.add_partitions("t", 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        log.add_partitions("nope", 3),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.describe_topic("nope"),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.delete_topic("nope"),
        Err(Error::UnknownTopic { .. })
    ));
}

#[test]
fn describe_reports_offsets_sizes_and_segments_per_partition() {
    use moldau::{Offset, PartitionId, ProducerConfig, Record};
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 2, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    for i in 0..10 {
        producer
            .send_to(
                "t",
                PartitionId(0),
                Record::new(vec![b'x'; 100]).with_key(format!("{i}")),
            )
            .unwrap();
    }
    let d = log.describe_topic("t").unwrap();
    assert!(!d.internal);
    let (p0, p1) = (&d.partitions[0], &d.partitions[1]);
    assert_eq!((p0.start_offset, p0.end_offset), (Offset(0), Offset(10)));
    assert_eq!((p1.start_offset, p1.end_offset), (Offset(0), Offset(0)));
    // Ten single-record batches: a 61-byte header and a record of 100+ bytes each.
    assert!(
        (10 * 161..10 * 200).contains(&p0.size_bytes),
        "{}",
        p0.size_bytes
    );
    assert_eq!(p1.size_bytes, 0);
    assert_eq!(p0.segments, 1);
    assert!(log.describe_topic("__consumer_offsets").unwrap().internal);
}

#[test]
fn add_partitions_grows_the_topic_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 2, None).unwrap();
        log.add_partitions("t", 5).unwrap();
        assert_eq!(log.describe_topic("t").unwrap().partitions.len(), 5);
    }
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let d = log.describe_topic("t").unwrap();
    assert_eq!(d.partitions.len(), 5);
    assert!(dir.path().join("t-4").is_dir());
}

#[test]
fn delete_removes_files_offsets_and_fails_old_handles() {
    use moldau::{
        AutoOffsetReset, ConsumerConfig, Offset, OffsetAndMetadata, ProducerConfig, Record,
    };
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 2, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    producer.send("t", Record::new("a")).unwrap();
    let mut reader = log
        .consumer(ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        })
        .unwrap();
    reader.assign(&[tp("t", 0), tp("t", 1)]).unwrap();
    let mut member = log.consumer(ConsumerConfig::default()).unwrap();
    member.subscribe("g", &["t"]).unwrap();
    member.poll(std::time::Duration::ZERO).unwrap();
    member
        .commit_offsets(&[(tp("t", 0), OffsetAndMetadata::new(Offset(1)))])
        .unwrap();

    log.delete_topic("t").unwrap();
    assert!(!dir.path().join("t-0").exists());
    assert!(!dir.path().join("t-1").exists());
    assert!(log.list_topics().is_empty());
    assert!(matches!(
        producer.send("t", Record::new("b")),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        reader.poll(std::time::Duration::ZERO),
        Err(Error::UnknownTopic { .. })
    ));
    assert_eq!(log.committed("g", &tp("t", 0)).unwrap(), None);
    member.poll(std::time::Duration::ZERO).unwrap();
    assert!(member.assignment().is_empty(), "the group lets go of it");

    // A new topic of the same name starts empty; old offsets stay forgotten.
    log.create_topic("t", 1, None).unwrap();
    let md = producer.send("t", Record::new("c")).unwrap();
    assert_eq!(md.offset, Offset(0));
    drop(member);
    log.close().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.committed("g", &tp("t", 0)).unwrap(), None);
}

#[test]
fn directories_the_catalog_does_not_name_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger-0");
    std::fs::create_dir(&stranger).unwrap();
    std::fs::write(stranger.join("partition.checkpoint"), b"not ours").unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 1, None).unwrap();
    log.delete_topic("t").unwrap();
    log.close().unwrap();
    Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(stranger.join("partition.checkpoint").exists());
}
