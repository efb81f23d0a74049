//! Committed offsets: durable across a clean restart and a killed process;
//! a group resumes exactly at its committed offsets; auto-commit on an
//! interval; reset policies; lag in the group description.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

use common::groups::{all_partitions, settle};
use moldau::{
    AutoOffsetReset, ConsumerConfig, Error, Log, LogConfig, ManualClock, Offset, OffsetAndMetadata,
    PartitionId, ProducerConfig, Record, Timestamp, TopicName, TopicPartition,
};

const CHILD_DIR: &str = "MOLDAU_GROUP_CRASH_CHILD_DIR";

fn tp(topic: &str, p: u32) -> TopicPartition {
    TopicPartition::new(TopicName::new(topic).unwrap(), p)
}

fn earliest() -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    }
}

/// Sends `n` records to each of `partitions` partitions of `topic`.
fn fill(log: &Log, topic: &str, partitions: u32, n: u64) {
    let producer = log.producer(ProducerConfig::default()).unwrap();
    for i in 0..n {
        for p in 0..partitions {
            producer
                .send_to(topic, PartitionId(p), Record::new(format!("{p}:{i}")))
                .unwrap();
        }
    }
}

#[test]
fn commits_survive_a_restart_and_the_group_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 2, None).unwrap();
        fill(&log, "t", 2, 10);
        let mut c = log.consumer(earliest()).unwrap();
        c.subscribe("g", &["t"]).unwrap();
        settle(&mut [&mut c], &all_partitions(&[("t", 2)]));
        c.seek(&tp("t", 0), Offset(4)).unwrap();
        c.seek(&tp("t", 1), Offset(7)).unwrap();
        c.commit_offsets(&[(
            tp("t", 0),
            OffsetAndMetadata {
                offset: Offset(4),
                metadata: "checkpoint-a".into(),
            },
        )])
        .unwrap();
        c.commit().unwrap();
        drop(c);
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        log.committed("g", &tp("t", 0)).unwrap().unwrap().offset,
        Offset(4)
    );
    assert_eq!(
        log.committed("g", &tp("t", 1)).unwrap().unwrap().offset,
        Offset(7)
    );
    let d = log.describe_group("g").unwrap();
    let lags: Vec<u64> = d.offsets.iter().map(|o| o.lag).collect();
    assert_eq!(lags, [6, 3]);
    assert_eq!(log.list_groups(), ["g"]);

    let mut c = log.consumer(earliest()).unwrap();
    c.subscribe("g", &["t"]).unwrap();
    let mut first = BTreeMap::new();
    while first.len() < 2 {
        for r in c.poll(Duration::from_secs(5)).unwrap() {
            first.entry(r.partition.0).or_insert(r.offset);
        }
    }
    assert_eq!(first[&0], Offset(4));
    assert_eq!(first[&1], Offset(7));
}

#[test]
fn auto_commit_runs_on_its_interval_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let log = Log::open(
        dir.path(),
        LogConfig {
            clock: clock.clone(),
            ..LogConfig::default()
        },
    )
    .unwrap();
    log.create_topic("t", 1, None).unwrap();
    fill(&log, "t", 1, 5);
    let mut c = log
        .consumer(ConsumerConfig {
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            max_poll_records: 2,
            ..earliest()
        })
        .unwrap();
    c.subscribe("g", &["t"]).unwrap();
    assert_eq!(c.poll(Duration::from_secs(5)).unwrap().len(), 2);
    c.poll(Duration::ZERO).unwrap();
    assert_eq!(
        log.committed("g", &tp("t", 0)).unwrap(),
        None,
        "interval not reached"
    );
    clock.advance_ms(5_000);
    c.poll(Duration::ZERO).unwrap();
    assert_eq!(
        log.committed("g", &tp("t", 0)).unwrap().unwrap().offset,
        Offset(4)
    );
    c.poll(Duration::ZERO).unwrap();
    c.close().unwrap();
    assert_eq!(
        log.committed("g", &tp("t", 0)).unwrap().unwrap().offset,
        Offset(5)
    );
}

#[test]
fn reset_policies_apply_without_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 1, None).unwrap();
    fill(&log, "t", 1, 3);
    for (reset, expected) in [
        (AutoOffsetReset::Earliest, Ok(Offset(0))),
        (AutoOffsetReset::Latest, Ok(Offset(3))),
        (AutoOffsetReset::None, Err(())),
    ] {
        let mut c = log
            .consumer(ConsumerConfig {
                auto_offset_reset: reset,
                ..ConsumerConfig::default()
            })
            .unwrap();
        c.assign(&[tp("t", 0)]).unwrap();
        match (c.position(&tp("t", 0)), expected) {
            (Ok(p), Ok(e)) => assert_eq!(p, e),
            (Err(Error::NoOffset { partition: 0, .. }), Err(())) => {}
            (got, e) => panic!("{reset:?}: {got:?} vs {e:?}"),
        }
    }
}

/// The child: consumes and commits synchronously until killed, printing
/// `committed <partition> <offset>` after each commit returns.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    let mut c = log
        .consumer(ConsumerConfig {
            max_poll_records: 7,
            ..earliest()
        })
        .unwrap();
    c.subscribe("g", &["t"]).unwrap();
    loop {
        let records = c.poll(Duration::from_secs(1)).unwrap();
        let mut next = BTreeMap::new();
        for r in &records {
            next.insert(r.partition.0, r.offset.plus(1));
        }
        let offsets: Vec<_> = next
            .iter()
            .map(|(p, o)| (tp("t", *p), OffsetAndMetadata::new(*o)))
            .collect();
        c.commit_offsets(&offsets).unwrap();
        for (p, o) in &next {
            println!("committed {p} {o}");
        }
    }
}

#[test]
fn a_killed_consumer_loses_no_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 3, None).unwrap();
        fill(&log, "t", 3, 1000);
        log.close().unwrap();
    }
    let mut child = common::spawn_crash_child(CHILD_DIR, dir.path());
    let mut acked: BTreeMap<u32, u64> = BTreeMap::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < 30 {
        let line = lines.next().expect("child exited early").unwrap();
        let mut f = line.split_whitespace();
        if f.next() == Some("committed") {
            let p: u32 = f.next().unwrap().parse().unwrap();
            let o: u64 = f.next().unwrap().parse().unwrap();
            acked.insert(p, o);
            seen += 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines printed before the kill but not yet read count too.
    for line in lines.map_while(|l| l.ok()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 3 && f[0] == "committed" {
            acked.insert(f[1].parse().unwrap(), f[2].parse().unwrap());
        }
    }

    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut c = log.consumer(earliest()).unwrap();
    c.subscribe("g", &["t"]).unwrap();
    // The first record polled from each partition is the committed offset.
    let mut first = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let unfinished = acked.values().filter(|o| **o < 1000 - 7).count();
    while first.len() < unfinished && std::time::Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(100)).unwrap() {
            first.entry(r.partition.0).or_insert(r.offset);
        }
    }
    for (p, o) in &acked {
        let committed = log.committed("g", &tp("t", *p)).unwrap().unwrap().offset;
        // The child may have committed once more after its last printed line.
        assert!(
            committed.0 >= *o,
            "partition {p}: committed {committed}, acknowledged {o}"
        );
        assert!(committed.0 <= o + 7);
        if committed.0 < 1000 {
            assert_eq!(first.get(p), Some(&committed), "resumes exactly there");
        }
    }
}

#[test]
fn damaged_committed_offsets_are_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 1, None).unwrap();
        let mut c = log.consumer(earliest()).unwrap();
        c.subscribe("g", &["t"]).unwrap();
        settle(&mut [&mut c], &all_partitions(&[("t", 1)]));
        c.commit_offsets(&[(tp("t", 0), OffsetAndMetadata::new(Offset(3)))])
            .unwrap();
        drop(c);
        log.close().unwrap();
    }
    // Flip a byte inside the first commit record (past the 61-byte header).
    let segment = dir
        .path()
        .join("__consumer_offsets-0")
        .join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[70] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    match Log::open(dir.path(), LogConfig::default()) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, segment),
        other => panic!("a damaged commit must not be skipped silently: {other:?}"),
    }
}

#[test]
fn a_manually_assigned_consumer_can_store_offsets_in_an_empty_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 2, None).unwrap();
    fill(&log, "t", 2, 10);
    let mut c = log.consumer(earliest()).unwrap();
    c.assign_in_group("archiver", &[tp("t", 0), tp("t", 1)])
        .unwrap();
    assert_eq!(c.group_id(), Some("archiver"));
    let mut read = 0;
    while read < 20 {
        read += c.poll(Duration::from_secs(5)).unwrap().len();
    }
    c.commit().unwrap();
    assert_eq!(
        log.committed("archiver", &tp("t", 1))
            .unwrap()
            .unwrap()
            .offset,
        Offset(10)
    );
    // Not assigned here, or the partition does not exist: nothing stored.
    c.assign_in_group("archiver", &[tp("t", 0)]).unwrap();
    assert!(matches!(
        c.commit_offsets(&[(tp("t", 1), OffsetAndMetadata::new(Offset(2)))]),
        Err(Error::InvalidArgument { .. })
    ));
    // While the group has members, only they commit.
    let mut member = log.consumer(earliest()).unwrap();
    member.subscribe("archiver", &["t"]).unwrap();
    assert!(matches!(
        c.commit_offsets(&[(tp("t", 0), OffsetAndMetadata::new(Offset(1)))]),
        Err(Error::InvalidArgument { .. })
    ));
    drop(member);
    // A new standalone consumer starts at the committed offsets.
    c.commit_offsets(&[(tp("t", 0), OffsetAndMetadata::new(Offset(4)))])
        .unwrap();
    let mut next = log.consumer(earliest()).unwrap();
    next.assign_in_group("archiver", &[tp("t", 0), tp("t", 1)])
        .unwrap();
    assert_eq!(next.position(&tp("t", 0)).unwrap(), Offset(4));
    assert_eq!(next.position(&tp("t", 1)).unwrap(), Offset(10));
}
