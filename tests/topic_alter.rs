//! Altering a topic's config: invalid settings are refused at create and at
//! alter, valid ones take effect at once and survive a restart.

use std::time::Duration;

use moldau::{
    CleanupPolicy, Error, Log, LogConfig, Offset, PartitionId, Record, Timestamp, TopicConfig,
};

fn bad_configs() -> Vec<(&'static str, TopicConfig)> {
    let base = TopicConfig::default;
    vec![
        (
            "min_cleanable_dirty_ratio",
            TopicConfig {
                min_cleanable_dirty_ratio: 1.5,
                ..base()
            },
        ),
        (
            "min_cleanable_dirty_ratio",
            TopicConfig {
                min_cleanable_dirty_ratio: -0.1,
                ..base()
            },
        ),
        (
            "min_cleanable_dirty_ratio",
            TopicConfig {
                min_cleanable_dirty_ratio: f64::NAN,
                ..base()
            },
        ),
        (
            "retention_bytes",
            TopicConfig {
                retention_bytes: Some(0),
                ..base()
            },
        ),
        (
            "retention_ms",
            TopicConfig {
                retention_ms: Some(Duration::ZERO),
                ..base()
            },
        ),
        (
            "segment_bytes",
            TopicConfig {
                segment_bytes: 100,
                ..base()
            },
        ),
        (
            "max_record_bytes",
            TopicConfig {
                max_record_bytes: 1,
                ..base()
            },
        ),
    ]
}

#[test]
fn invalid_settings_are_refused_at_create_and_at_alter() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("ok", 1, None).unwrap();
    for (field, config) in bad_configs() {
        match log.create_topic("bad", 1, Some(config.clone())) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("create with bad {field}: {other:?}"),
        }
        match log.alter_topic_config("ok", config) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("alter with bad {field}: {other:?}"),
        }
    }
    assert_eq!(log.list_topics().len(), 1);
    assert_eq!(
        log.describe_topic("ok").unwrap().config,
        TopicConfig::default()
    );
    assert!(matches!(
        log.alter_topic_config("missing", TopicConfig::default()),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.alter_topic_config(moldau::OFFSETS_TOPIC, TopicConfig::default()),
        Err(Error::InvalidTopic { .. })
    ));
}

#[test]
fn altered_settings_take_effect_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 1, None).unwrap();
    let producer = log.producer(Default::default()).unwrap();
    producer.send("t", Record::new("keyless")).unwrap();
    let compact = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 4096,
        max_record_bytes: 2048,
        ..TopicConfig::default()
    };
    log.alter_topic_config("t", compact.clone()).unwrap();
    // Compacted now: keys are required, and the new size limit applies.
    assert!(matches!(
        producer.send("t", Record::new("keyless")),
        Err(Error::InvalidRecord { .. })
    ));
    assert!(matches!(
        producer.send("t", Record::new(vec![0u8; 4000]).with_key("k")),
        Err(Error::RecordTooLarge { .. })
    ));
    for i in 0..200 {
        producer
            .send_to(
                "t",
                PartitionId(0),
                Record::new(vec![b'v'; 100]).with_key(format!("k{}", i % 3)),
            )
            .unwrap();
    }
    // Smaller segments apply to segments rolled from now on.
    assert!(log.describe_topic("t").unwrap().partitions[0].segments > 1);
    let report = log.run_maintenance(Timestamp(i64::MAX / 2)).unwrap();
    assert_eq!(report.partitions_compacted, 1);
    drop(producer);
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let d = log.describe_topic("t").unwrap();
    assert_eq!(d.config, compact);
    assert_eq!(d.partitions[0].end_offset, Offset(201));
}
