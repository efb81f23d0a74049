//! Invalid configurations are refused with `InvalidConfig` naming the field,
//! before anything is created on disk.

use std::time::Duration;

use moldau::{Error, FlushPolicy, PartitionConfig, PartitionLog};

#[test]
fn invalid_configs_are_refused_without_touching_disk() {
    let cases: Vec<(&str, PartitionConfig)> = vec![
        (
            "segment_bytes",
            PartitionConfig {
                segment_bytes: 4095,
                ..Default::default()
            },
        ),
        (
            "segment_bytes",
            PartitionConfig {
                segment_bytes: 0,
                ..Default::default()
            },
        ),
        (
            "segment_bytes",
            PartitionConfig {
                segment_bytes: 1 << 31,
                ..Default::default()
            },
        ),
        (
            "segment_index_bytes",
            PartitionConfig {
                segment_index_bytes: 100,
                ..Default::default()
            },
        ),
        (
            "index_interval_bytes",
            PartitionConfig {
                index_interval_bytes: 0,
                ..Default::default()
            },
        ),
        (
            "max_record_bytes",
            PartitionConfig {
                max_record_bytes: 127,
                ..Default::default()
            },
        ),
        (
            "max_record_bytes",
            PartitionConfig {
                max_record_bytes: u64::MAX,
                ..Default::default()
            },
        ),
        (
            "flush",
            PartitionConfig {
                flush: FlushPolicy::EveryRecords(0),
                ..Default::default()
            },
        ),
        (
            "segment_ms",
            PartitionConfig {
                segment_ms: Some(Duration::ZERO),
                ..Default::default()
            },
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (k, (field, config)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("p-{k}"));
        match PartitionLog::open(&dir, config) {
            Err(Error::InvalidConfig { field: f, reason }) => {
                assert_eq!(f, field, "case {k}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("case {k} ({field}): expected InvalidConfig, got {other:?}"),
        }
        assert!(!dir.exists(), "case {k} ({field}): created {dir:?}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn boundary_values_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        segment_bytes: 4096,
        segment_index_bytes: 4096,
        index_interval_bytes: 1,
        max_record_bytes: 128,
        flush: FlushPolicy::EveryRecords(1),
        segment_ms: None,
        ..Default::default()
    };
    assert!(config.validate().is_ok());
    let log = PartitionLog::open(tmp.path().join("p"), config).unwrap();
    log.append(&[moldau::Record::new("x")]).unwrap();
}
