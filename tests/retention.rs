//! Retention by time and size, the log start offset, and readers of deleted
//! segments. Time comes from an injected clock; nothing sleeps.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_record, read_all, record_at, small_config};
use moldau::{
    AutoOffsetReset, ConsumerConfig, Error, Log, LogConfig, ManualClock, Offset, PartitionId,
    PartitionLog, Record, Retention, Timestamp, TopicConfig, TopicPartition,
};

const HOUR_MS: i64 = 3_600_000;

/// A partition of several segments: record `i` has timestamp `i` hours.
fn aged_log(dir: &std::path::Path, records: u64) -> PartitionLog {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    for i in 0..records {
        log.append(&[record_at(i, i as i64 * HOUR_MS)]).unwrap();
    }
    log
}

/// Base offsets and largest timestamps of the sealed segments, read back by
/// reading every record.
fn segment_ends(log: &PartitionLog) -> usize {
    log.stats().segment_count
}

#[test]
fn time_retention_deletes_old_sealed_segments_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = aged_log(dir.path(), 200);
    let before = segment_ends(&log);
    assert!(before > 4, "the test needs several segments, got {before}");
    // Keep 100 hours as of hour 200: records 100.. must stay, and no whole
    // segment of records all older than hour 100 may stay.
    let now = Timestamp(200 * HOUR_MS);
    let retention = Retention {
        max_age: Some(Duration::from_secs(100 * 3600)),
        max_bytes: None,
    };
    let outcome = log.apply_retention(now, retention).unwrap();
    assert!(outcome.segments_deleted > 0);
    assert!(outcome.bytes_deleted > 0);
    let start = log.start_offset();
    assert_eq!(outcome.start_offset, start);
    assert!(
        start.0 <= 100,
        "record 100 is young enough to stay: start {start}"
    );
    // The first kept segment holds a young record: its newest is >= hour 100,
    // so the segment before the start (all deleted) ended below offset 100.
    let kept = read_all(&log, start);
    assert_eq!(kept.first().unwrap().offset, start);
    assert!(kept.iter().any(|r| r.offset.0 >= 100));
    for r in &kept {
        assert_record(r, r.offset.0);
    }
    assert_eq!(kept.len() as u64, 200 - start.0);
    assert_eq!(log.stats().segment_count, before - outcome.segments_deleted);
    // A second pass at the same time deletes nothing more.
    assert_eq!(
        log.apply_retention(now, retention)
            .unwrap()
            .segments_deleted,
        0
    );
    // Below the start is out of range.
    assert!(matches!(
        log.read(Offset(0), 1 << 20),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn when_everything_expired_the_active_segment_rolls_and_goes_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = aged_log(dir.path(), 100);
    let retention = Retention {
        max_age: Some(Duration::from_secs(3600)),
        max_bytes: None,
    };
    let outcome = log
        .apply_retention(Timestamp(1_000 * HOUR_MS), retention)
        .unwrap();
    assert!(outcome.segments_deleted >= 2);
    assert_eq!(log.start_offset(), Offset(100));
    assert_eq!(log.end_offset(), Offset(100));
    let stats = log.stats();
    assert_eq!(stats.segment_count, 1, "an empty active segment is kept");
    assert_eq!(stats.active_segment_bytes, 0);
    // Appends go on at the same offsets.
    assert_eq!(log.append(&[record_at(100, 0)]).unwrap(), Offset(100));
    // An empty active segment is never rolled away.
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = PartitionLog::open(empty_dir.path(), small_config()).unwrap();
    let o = empty
        .apply_retention(Timestamp(i64::MAX), retention)
        .unwrap();
    assert_eq!((o.segments_deleted, empty.stats().segment_count), (0, 1));
}

#[test]
fn no_limits_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let log = aged_log(dir.path(), 100);
    let before = log.stats();
    let o = log
        .apply_retention(Timestamp(i64::MAX), Retention::default())
        .unwrap();
    assert_eq!(o.segments_deleted, 0);
    assert_eq!(log.stats().segment_count, before.segment_count);
    assert_eq!(log.start_offset(), Offset(0));
}

#[test]
fn size_retention_keeps_at_least_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = aged_log(dir.path(), 300);
    let total = log.size_bytes().unwrap();
    let limit = total / 3;
    let retention = Retention {
        max_age: None,
        max_bytes: Some(limit),
    };
    let o = log.apply_retention(Timestamp(0), retention).unwrap();
    assert!(o.segments_deleted > 0);
    let left = log.size_bytes().unwrap();
    assert_eq!(left, total - o.bytes_deleted);
    assert!(left >= limit, "kept {left} bytes, limit {limit}");
    // Deleting one more segment would have gone below the limit.
    let first_kept = read_all(&log, log.start_offset());
    assert_eq!(first_kept[0].offset, log.start_offset());
    let next = log.apply_retention(Timestamp(0), retention).unwrap();
    assert_eq!(next.segments_deleted, 0, "the rule is stable");
}

#[test]
fn a_reader_keeps_the_bytes_of_a_deleted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = aged_log(dir.path(), 200);
    let held = log.read(Offset(0), 1 << 20).unwrap();
    let expect: Vec<_> = held.records().map(|r| r.unwrap()).collect();
    let o = log
        .apply_retention(
            Timestamp(1_000 * HOUR_MS),
            Retention {
                max_age: Some(Duration::from_secs(3600)),
                max_bytes: None,
            },
        )
        .unwrap();
    assert!(o.segments_deleted > 0);
    assert!(!dir.path().join(format!("{:020}.log", 0)).exists());
    // The unlinked file stays mapped: same bytes, same CRC-checked records.
    let again: Vec<_> = held.records().map(|r| r.unwrap()).collect();
    assert_eq!(again, expect);
    for r in &again {
        assert_record(r, r.offset.0);
    }
}

#[test]
fn delete_records_moves_the_start_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = aged_log(dir.path(), 200);
    let segments = log.stats().segment_count;
    let deleted = log.delete_records_before(Offset(150)).unwrap();
    assert!(deleted > 0 && deleted < segments);
    assert_eq!(log.start_offset(), Offset(150));
    let rest = read_all(&log, Offset(150));
    assert_eq!(
        rest.iter()
            .find(|r| r.offset >= Offset(150))
            .unwrap()
            .offset,
        Offset(150)
    );
    // Moving backwards does nothing; past the end is an error.
    assert_eq!(log.delete_records_before(Offset(10)).unwrap(), 0);
    assert!(matches!(
        log.delete_records_before(Offset(201)),
        Err(Error::OffsetOutOfRange { .. })
    ));
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.start_offset(), Offset(150));
    assert_eq!(log.stats().segment_count, segments - deleted);
    // After an unclean stop too: a copy of the open directory is what a
    // crash leaves (the checkpoint says unclean).
    log.delete_records_before(Offset(170)).unwrap();
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), copy.path());
    let crashed = PartitionLog::open(copy.path(), small_config()).unwrap();
    assert_eq!(crashed.start_offset(), Offset(170));
}

fn log_with_clock(dir: &std::path::Path, clock: Arc<ManualClock>) -> Log {
    let config = LogConfig {
        clock,
        ..LogConfig::default()
    };
    Log::open(dir, config).unwrap()
}

fn aged_topic() -> TopicConfig {
    TopicConfig {
        segment_bytes: 4096,
        index_interval_bytes: 128,
        retention_ms: Some(Duration::from_secs(10 * 3600)),
        ..TopicConfig::default()
    }
}

#[test]
fn run_maintenance_applies_topic_retention_and_resets_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let log = log_with_clock(dir.path(), Arc::clone(&clock));
    log.create_topic("events", 1, Some(aged_topic())).unwrap();
    let producer = log.producer(Default::default()).unwrap();
    for i in 0..200u64 {
        clock.set(Timestamp(i as i64 * HOUR_MS));
        let r = Record::new(format!("v{i}")).with_key(format!("k{i}"));
        producer.send_to("events", PartitionId(0), r).unwrap();
    }
    let tp = TopicPartition::new(moldau::TopicName::new("events").unwrap(), 0);
    let earliest = |reset| {
        let mut c = log
            .consumer(ConsumerConfig {
                auto_offset_reset: reset,
                ..ConsumerConfig::default()
            })
            .unwrap();
        c.assign(std::slice::from_ref(&tp)).unwrap();
        c.seek(&tp, Offset(0)).unwrap();
        c
    };
    let mut resetting = earliest(AutoOffsetReset::Earliest);
    let mut strict = earliest(AutoOffsetReset::None);
    let report = log.run_maintenance(Timestamp(200 * HOUR_MS)).unwrap();
    assert!(report.segments_deleted > 0);
    let start = log.describe_topic("events").unwrap().partitions[0].start_offset;
    assert!(start > Offset(0) && start <= Offset(190));
    let polled = resetting.poll(Duration::ZERO).unwrap();
    assert_eq!(
        polled.first().unwrap().offset,
        start,
        "reset to the new start"
    );
    assert!(matches!(
        strict.poll(Duration::ZERO),
        Err(Error::OffsetOutOfRange { .. })
    ));
    drop((resetting, strict, producer));
    log.close().unwrap();
    drop(log);
    let log = log_with_clock(dir.path(), clock);
    let d = log.describe_topic("events").unwrap();
    assert_eq!(
        d.partitions[0].start_offset, start,
        "the start survives a restart"
    );
    assert_eq!(
        log.delete_records("events", 0, Offset(195)).unwrap(),
        Offset(195)
    );
}

#[test]
fn compact_only_topics_are_not_deleted_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let log = log_with_clock(dir.path(), Arc::clone(&clock));
    let config = TopicConfig {
        cleanup_policy: moldau::CleanupPolicy::Compact,
        ..aged_topic()
    };
    log.create_topic("table", 1, Some(config)).unwrap();
    let producer = log.producer(Default::default()).unwrap();
    for i in 0..200u64 {
        clock.set(Timestamp(i as i64 * HOUR_MS));
        let r = Record::new(format!("v{i}")).with_key(format!("k{i}"));
        producer.send_to("table", PartitionId(0), r).unwrap();
    }
    let report = log.run_maintenance(Timestamp(10_000 * HOUR_MS)).unwrap();
    assert_eq!(report.segments_deleted, 0);
    let d = log.describe_topic("table").unwrap();
    assert_eq!(d.partitions[0].start_offset, Offset(0));
}

#[test]
fn the_maintenance_thread_applies_retention_on_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let config = LogConfig {
        clock: Arc::clone(&clock) as Arc<dyn moldau::Clock>,
        maintenance_interval: Duration::from_millis(5),
        retention_check_interval: Duration::from_millis(20),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    log.create_topic("events", 1, Some(aged_topic())).unwrap();
    let producer = log.producer(Default::default()).unwrap();
    for i in 0..200u64 {
        let r = Record::new(format!("v{i}")).with_timestamp(Timestamp(i as i64 * HOUR_MS));
        producer.send_to("events", PartitionId(0), r).unwrap();
    }
    let start = || log.describe_topic("events").unwrap().partitions[0].start_offset;
    assert_eq!(start(), Offset(0));
    // Time moves; the thread notices on its own, without run_maintenance.
    clock.set(Timestamp(200 * HOUR_MS));
    assert!(
        common::wait_until(Duration::from_secs(10), || start() > Offset(0)),
        "the maintenance thread never applied retention"
    );
    log.close().unwrap();
}
