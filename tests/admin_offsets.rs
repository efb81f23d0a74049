//! `Log::commit_group_offsets` (what `groups reset-offsets --execute` uses):
//! refused while the group has active members, as Kafka refuses it.

use std::time::Duration;

use moldau::{
    AutoOffsetReset, ConsumerConfig, Log, LogConfig, Offset, OffsetAndMetadata, Record, TopicName,
    TopicPartition,
};

#[test]
fn refused_while_the_group_has_members_then_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 1, None).unwrap();
    let producer = log.producer(Default::default()).unwrap();
    producer.send("t", Record::new("a")).unwrap();
    let tp = TopicPartition::new(TopicName::new("t").unwrap(), 0);
    let reset = [(tp.clone(), OffsetAndMetadata::new(Offset(0)))];

    let mut member = log
        .consumer(ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        })
        .unwrap();
    member.subscribe("g", &["t"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while member.assignment().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no assignment");
        member.poll(Duration::from_millis(100)).unwrap();
    }
    member
        .commit_offsets(&[(tp.clone(), OffsetAndMetadata::new(Offset(1)))])
        .unwrap();
    let e = log.commit_group_offsets("g", &reset).unwrap_err();
    assert!(matches!(e, moldau::Error::InvalidArgument { .. }), "{e}");
    assert_eq!(log.committed("g", &tp).unwrap().unwrap().offset, Offset(1));

    member.close().unwrap();
    log.commit_group_offsets("g", &reset).unwrap();
    assert_eq!(log.committed("g", &tp).unwrap().unwrap().offset, Offset(0));
    let unknown = [(
        TopicPartition::new(TopicName::new("t").unwrap(), 3),
        OffsetAndMetadata::new(Offset(0)),
    )];
    assert!(matches!(
        log.commit_group_offsets("g", &unknown),
        Err(moldau::Error::UnknownPartition { .. })
    ));
}
