//! Consumer groups rebalance when members join, leave, or stop polling, and
//! when subscribed topics gain partitions; the listener sees the changes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::groups::{all_partitions, settle, settle_where};
use moldau::{
    Assignor, Consumer, ConsumerConfig, Error, Log, LogConfig, ManualClock, Offset,
    OffsetAndMetadata, RebalanceListener, Timestamp, TopicPartition,
};

fn open(dir: &std::path::Path, clock: Option<Arc<ManualClock>>) -> Log {
    let mut config = LogConfig::default();
    if let Some(c) = clock {
        config.clock = c;
    }
    Log::open(dir, config).unwrap()
}

fn member(log: &Log, assignor: Assignor, topics: &[&str]) -> Consumer {
    let mut c = log
        .consumer(ConsumerConfig {
            assignor,
            max_poll_interval: Duration::from_secs(30),
            ..ConsumerConfig::default()
        })
        .unwrap();
    c.subscribe("g", topics).unwrap();
    c
}

#[test]
fn members_joining_and_leaving_share_every_partition() {
    for assignor in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), None);
        log.create_topic("a", 4, None).unwrap();
        log.create_topic("b", 3, None).unwrap();
        let all = all_partitions(&[("a", 4), ("b", 3)]);
        let mut c1 = member(&log, assignor, &["a", "b"]);
        settle(&mut [&mut c1], &all);
        let mut c2 = member(&log, assignor, &["a", "b"]);
        let mut c3 = member(&log, assignor, &["a", "b"]);
        settle(&mut [&mut c1, &mut c2, &mut c3], &all);
        for c in [&c1, &c2, &c3] {
            assert!(
                !c.assignment().is_empty(),
                "{assignor:?}: every member gets work"
            );
        }
        drop(c2);
        settle(&mut [&mut c1, &mut c3], &all);
        c3.close().unwrap();
        settle(&mut [&mut c1], &all);
        let d = log.describe_group("g").unwrap();
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.assignor, Some(assignor));
    }
}

#[test]
fn adding_partitions_rebalances_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), None);
    log.create_topic("a", 2, None).unwrap();
    let mut c1 = member(&log, Assignor::Range, &["a"]);
    let mut c2 = member(&log, Assignor::Range, &["a"]);
    settle(&mut [&mut c1, &mut c2], &all_partitions(&[("a", 2)]));
    log.add_partitions("a", 6).unwrap();
    settle(&mut [&mut c1, &mut c2], &all_partitions(&[("a", 6)]));
    assert_eq!(c1.assignment().len(), 3);
}

#[test]
fn a_topic_created_after_subscribing_is_assigned() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), None);
    let mut c = member(&log, Assignor::Range, &["later"]);
    c.poll(Duration::ZERO).unwrap();
    assert!(c.assignment().is_empty());
    log.create_topic("later", 2, None).unwrap();
    settle(&mut [&mut c], &all_partitions(&[("later", 2)]));
}

#[test]
fn a_member_that_stops_polling_is_removed_and_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let log = open(dir.path(), Some(clock.clone()));
    log.create_topic("a", 4, None).unwrap();
    let all = all_partitions(&[("a", 4)]);
    let mut live = member(&log, Assignor::Range, &["a"]);
    let mut stuck = member(&log, Assignor::Range, &["a"]);
    settle(&mut [&mut live, &mut stuck], &all);
    let stuck_owned = stuck.assignment();
    let generation = stuck.generation().unwrap();

    // 31 s without a poll from `stuck`; `live` keeps polling.
    clock.advance_ms(31_000);
    settle(&mut [&mut live], &all);
    assert_eq!(log.describe_group("g").unwrap().members.len(), 1);

    // The stale member's commit fails and changes nothing.
    let tp = stuck_owned[0].clone();
    let err = stuck
        .commit_offsets(&[(tp.clone(), OffsetAndMetadata::new(Offset(7)))])
        .unwrap_err();
    assert!(
        matches!(err, Error::StaleGeneration { generation: g, .. } if g == generation),
        "{err}"
    );
    assert_eq!(log.committed("g", &tp).unwrap(), None);

    // Its next poll rejoins as a new member, and the group rebalances.
    settle_where(&mut [&mut live, &mut stuck], &all, |cs| {
        cs.iter().all(|c| c.assignment().len() == 2)
    });
    assert_eq!(log.describe_group("g").unwrap().members.len(), 2);
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(
        &mut self,
        _: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> moldau::Result<()> {
        let event = format!("revoked {}", names(partitions));
        self.0.lock().unwrap().push(event);
        Ok(())
    }
    fn on_partitions_assigned(
        &mut self,
        _: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> moldau::Result<()> {
        let event = format!("assigned {}", names(partitions));
        self.0.lock().unwrap().push(event);
        Ok(())
    }
}

fn names(tps: &[TopicPartition]) -> String {
    tps.iter()
        .map(|tp| tp.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn the_listener_sees_eager_and_cooperative_rebalances() {
    for (assignor, expected) in [
        // Eager: everything is revoked, then the new set assigned.
        (
            Assignor::Range,
            [
                "assigned a-0,a-1,a-2,a-3",
                "revoked a-0,a-1,a-2,a-3",
                "assigned a-0,a-1",
            ],
        ),
        // Cooperative: only what moves is revoked; nothing new is assigned.
        (
            Assignor::CooperativeSticky,
            ["assigned a-0,a-1,a-2,a-3", "revoked a-2,a-3", ""],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), None);
        log.create_topic("a", 4, None).unwrap();
        let events = Recorder::default();
        let mut c1 = member(&log, assignor, &["a"]);
        c1.set_rebalance_listener(events.clone());
        settle(&mut [&mut c1], &all_partitions(&[("a", 4)]));
        let mut c2 = member(&log, assignor, &["a"]);
        settle(&mut [&mut c1, &mut c2], &all_partitions(&[("a", 4)]));
        let got = events.0.lock().unwrap().clone();
        let want: Vec<String> = expected
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| e.to_string())
            .collect();
        if assignor.is_cooperative() {
            // Which two move is the assignor's choice; count them instead.
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0], want[0]);
            assert!(
                got[1].starts_with("revoked ") && got[1].matches(',').count() == 1,
                "{got:?}"
            );
        } else {
            assert_eq!(got, want);
        }
    }
}

#[test]
fn bad_subscriptions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), None);
    log.create_topic("b", 1, None).unwrap();
    log.create_topic("a", 1, None).unwrap();
    let mut c = log.consumer(ConsumerConfig::default()).unwrap();
    assert!(matches!(
        c.subscribe("g", &[]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        c.subscribe("", &["a"]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        c.subscribe("g", &["../x"]),
        Err(Error::InvalidTopic { .. })
    ));
    assert!(matches!(
        c.subscribe("g", &["__consumer_offsets"]),
        Err(Error::InvalidTopic { .. })
    ));
    assert!(matches!(c.commit(), Err(Error::InvalidArgument { .. })));
    c.subscribe("g", &["a"]).unwrap();
    let mut other = log
        .consumer(ConsumerConfig {
            assignor: Assignor::RoundRobin,
            ..Default::default()
        })
        .unwrap();
    assert!(matches!(
        other.subscribe("g", &["a"]),
        Err(Error::InvalidArgument { .. })
    ));
    // A partition not assigned cannot be committed; nothing is stored.
    settle(&mut [&mut c], &all_partitions(&[("a", 1)]));
    let foreign = TopicPartition::new(moldau::TopicName::new("b").unwrap(), 0);
    assert!(matches!(
        c.commit_offsets(&[(foreign.clone(), OffsetAndMetadata::new(Offset(1)))]),
        Err(Error::InvalidArgument { .. })
    ));
    let missing = TopicPartition::new(moldau::TopicName::new("a").unwrap(), 5);
    assert!(matches!(
        c.commit_offsets(&[(missing, OffsetAndMetadata::new(Offset(1)))]),
        Err(Error::UnknownPartition { .. })
    ));
    assert_eq!(log.committed("g", &foreign).unwrap(), None);
}

/// Commits what it processed when partitions are revoked, through the
/// consumer it is handed, as Kafka's documentation recommends.
struct CommitOnRevoke;

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> moldau::Result<()> {
        let mut offsets = Vec::new();
        for tp in partitions {
            offsets.push((tp.clone(), OffsetAndMetadata::new(consumer.position(tp)?)));
        }
        consumer.commit_offsets(&offsets)
    }
}

#[test]
fn a_listener_can_commit_on_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), None);
    log.create_topic("a", 2, None).unwrap();
    let producer = log.producer(moldau::ProducerConfig::default()).unwrap();
    for p in 0..2 {
        for _ in 0..5 {
            producer
                .send_to("a", moldau::PartitionId(p), moldau::Record::new("x"))
                .unwrap();
        }
    }
    let mut c1 = log
        .consumer(ConsumerConfig {
            enable_auto_commit: false,
            auto_offset_reset: moldau::AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        })
        .unwrap();
    c1.set_rebalance_listener(CommitOnRevoke);
    c1.subscribe("g", &["a"]).unwrap();
    let mut read = 0;
    while read < 10 {
        read += c1.poll(Duration::from_secs(5)).unwrap().len();
    }
    let mut c2 = member(&log, Assignor::Range, &["a"]);
    settle(&mut [&mut c1, &mut c2], &all_partitions(&[("a", 2)]));
    for p in 0..2 {
        let tp = TopicPartition::new(moldau::TopicName::new("a").unwrap(), p);
        assert_eq!(log.committed("g", &tp).unwrap().unwrap().offset, Offset(5));
    }
}
