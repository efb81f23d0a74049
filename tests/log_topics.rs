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
