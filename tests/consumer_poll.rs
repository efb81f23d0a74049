//! A manually assigned consumer: seek, position, pause/resume, fair polls
//! bounded by `max_poll_records`, and blocking until data arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moldau::{
    AutoOffsetReset, ConsumerConfig, Error, Log, LogConfig, Offset, PartitionId, ProducerConfig,
    Record, TopicName, TopicPartition,
};

fn tp(topic: &str, p: u32) -> TopicPartition {
    TopicPartition::new(TopicName::new(topic).unwrap(), p)
}

fn setup(partitions: u32, per_partition: u64) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", partitions, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    for i in 0..per_partition {
        for p in 0..partitions {
            let r = Record::new(format!("{p}-{i}"))
                .with_key(format!("k{i}"))
                .with_header("h", "v");
            producer.send_to("t", PartitionId(p), r).unwrap();
        }
    }
    (dir, log)
}

fn earliest(max_poll_records: usize) -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        max_poll_records,
        ..ConsumerConfig::default()
    }
}

#[test]
fn polls_are_bounded_and_fair_across_partitions() {
    let (_dir, log) = setup(4, 100);
    let mut c = log.consumer(earliest(40)).unwrap();
    c.assign(&[tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3)])
        .unwrap();
    let records = c.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(records.len(), 40);
    for p in 0..4 {
        let n = records.iter().filter(|r| r.partition.0 == p).count();
        assert_eq!(n, 10, "partition {p} gets its share");
    }
    // Drain: every record once, in order per partition, with its fields.
    let mut all = records;
    loop {
        let more = c.poll(Duration::ZERO).unwrap();
        if more.is_empty() {
            break;
        }
        assert!(more.len() <= 40);
        all.extend(more);
    }
    assert_eq!(all.len(), 400);
    for p in 0..4u32 {
        let offsets: Vec<u64> = all
            .iter()
            .filter(|r| r.partition.0 == p)
            .map(|r| r.offset.0)
            .collect();
        assert_eq!(offsets, (0..100).collect::<Vec<_>>());
    }
    let r = &all[0];
    assert_eq!(r.topic.as_str(), "t");
    assert_eq!(
        r.value.as_deref(),
        Some(format!("{}-{}", r.partition, r.offset).as_bytes())
    );
    assert_eq!(r.key.as_deref(), Some(format!("k{}", r.offset).as_bytes()));
    assert_eq!(&r.headers[0].key[..], b"h");
}

#[test]
fn a_partition_with_more_data_does_not_starve_the_others() {
    let (_dir, log) = setup(2, 1);
    let producer = log.producer(ProducerConfig::default()).unwrap();
    for i in 0..1000 {
        producer
            .send_to("t", PartitionId(0), Record::new(format!("bulk-{i}")))
            .unwrap();
    }
    let mut c = log.consumer(earliest(10)).unwrap();
    c.assign(&[tp("t", 0), tp("t", 1)]).unwrap();
    let first = c.poll(Duration::ZERO).unwrap();
    assert!(
        first.iter().any(|r| r.partition.0 == 1),
        "partition 1 served in the first poll"
    );
}

#[test]
fn seek_position_pause_and_resume() {
    let (_dir, log) = setup(2, 10);
    let mut c = log.consumer(earliest(500)).unwrap();
    c.assign(&[tp("t", 0), tp("t", 1)]).unwrap();
    assert_eq!(c.position(&tp("t", 0)).unwrap(), Offset(0));
    c.seek(&tp("t", 0), Offset(7)).unwrap();
    c.seek_to_end(&[tp("t", 1)]).unwrap();
    let records = c.poll(Duration::ZERO).unwrap();
    let offsets: Vec<_> = records
        .iter()
        .map(|r| (r.partition.0, r.offset.0))
        .collect();
    assert_eq!(offsets, [(0, 7), (0, 8), (0, 9)]);
    assert_eq!(c.position(&tp("t", 0)).unwrap(), Offset(10));

    c.seek_to_beginning(&[]).unwrap();
    c.pause(&[tp("t", 0)]).unwrap();
    assert_eq!(c.paused(), [tp("t", 0)]);
    let records = c.poll(Duration::ZERO).unwrap();
    assert!(records.iter().all(|r| r.partition.0 == 1));
    assert_eq!(records.len(), 10);
    c.resume(&[tp("t", 0)]).unwrap();
    assert_eq!(c.poll(Duration::ZERO).unwrap().len(), 10);

    // Bad input: typed errors, nothing changed.
    assert!(matches!(
        c.seek(&tp("t", 0), Offset(11)),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        c.seek(&tp("t", 5), Offset(0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        c.pause(&[tp("t", 0), tp("other", 0)]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(c.paused().is_empty(), "a failed pause pauses nothing");
    assert!(matches!(
        c.assign(&[tp("t", 0), tp("t", 9)]),
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        c.assign(&[tp("nope", 0)]),
        Err(Error::UnknownTopic { .. })
    ));
    assert_eq!(c.assignment().len(), 2, "a failed assign changes nothing");
    assert!(matches!(
        c.subscribe("g", &["t"]),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn poll_blocks_until_data_arrives() {
    let (_dir, log) = setup(3, 0);
    let mut c = log.consumer(earliest(500)).unwrap();
    c.assign(&[tp("t", 0), tp("t", 1), tp("t", 2)]).unwrap();
    assert!(c.poll(Duration::ZERO).unwrap().is_empty());
    let producer = Arc::new(log.producer(ProducerConfig::default()).unwrap());
    let sender = {
        let producer = Arc::clone(&producer);
        std::thread::spawn(move || {
            // Sent once the consumer is (very likely) blocked; correctness
            // does not depend on the order.
            producer
                .send_to("t", PartitionId(2), Record::new("late"))
                .unwrap();
        })
    };
    let started = Instant::now();
    let records = c.poll(Duration::from_secs(30)).unwrap();
    sender.join().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].partition, PartitionId(2));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "woken by the append, not the timeout"
    );
    // A timeout with no data returns empty after about the timeout.
    let started = Instant::now();
    assert!(c.poll(Duration::from_millis(50)).unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn close_wakes_a_blocked_poll() {
    let (_dir, log) = setup(1, 0);
    let mut c = log.consumer(earliest(500)).unwrap();
    c.assign(&[tp("t", 0)]).unwrap();
    let closer = {
        let log = log.clone();
        std::thread::spawn(move || log.close().unwrap())
    };
    let result = c.poll(Duration::from_secs(60));
    closer.join().unwrap();
    match result {
        Err(Error::Closed { .. }) | Ok(_) => {}
        Err(e) => panic!("{e}"),
    }
    assert!(matches!(c.poll(Duration::ZERO), Err(Error::Closed { .. })));
}
