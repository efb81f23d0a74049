//! Compaction: the latest record per key survives with its offset, tombstones
//! go after `delete_retention`, the dirty ratio and lag are respected, and
//! the compacted log reads, reopens and recovers.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{read_all, small_config};
use moldau::record::{encode_compressed_batch, Compression};
use moldau::{
    CleanupPolicy, CompactionSettings, Error, Log, LogConfig, ManualClock, Offset, PartitionConfig,
    PartitionId, PartitionLog, Record, StoredRecord, Timestamp, TopicConfig,
};

const DAY_MS: i64 = 24 * 3_600_000;

fn compacted() -> PartitionConfig {
    PartitionConfig {
        compacted: true,
        ..small_config()
    }
}

fn settings() -> CompactionSettings {
    CompactionSettings {
        min_cleanable_dirty_ratio: 0.0,
        ..CompactionSettings::default()
    }
}

/// Record `i` of key `k{i % keys}`, value `v{i}`, at time `ts`.
fn keyed(i: u64, keys: u64, ts: i64) -> Record {
    Record::new(format!("v{i}-{}", "x".repeat((i % 13) as usize)))
        .with_key(format!("k{}", i % keys))
        .with_timestamp(Timestamp(ts))
}

/// Latest record per key among `records`: key -> (offset, value).
fn latest(records: &[StoredRecord]) -> BTreeMap<Vec<u8>, (Offset, Option<Vec<u8>>)> {
    let mut m = BTreeMap::new();
    for r in records {
        m.insert(
            r.key.as_ref().unwrap().to_vec(),
            (r.offset, r.value.as_ref().map(|v| v.to_vec())),
        );
    }
    m
}

fn fill(log: &PartitionLog, n: u64, keys: u64) {
    for i in 0..n {
        log.append(&[keyed(i, keys, 0)]).unwrap();
    }
}

#[test]
fn the_latest_record_of_each_key_survives_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    fill(&log, 2_000, 50);
    let before = read_all(&log, Offset(0));
    let size_before = log.size_bytes().unwrap();
    let o = log.compact(Timestamp(0), &settings()).unwrap();
    assert!(o.cleaned);
    assert!(o.records_removed > 0 && o.bytes_reclaimed() > 0);
    assert!(log.size_bytes().unwrap() < size_before);
    let after = read_all(&log, Offset(0));
    // Every survivor is a record that was written, at its own offset, in order.
    let by_offset: BTreeMap<_, _> = before.iter().map(|r| (r.offset, r)).collect();
    for w in after.windows(2) {
        assert!(w[0].offset < w[1].offset);
    }
    for r in &after {
        assert_eq!(by_offset[&r.offset], r);
    }
    // Below the clean offset exactly the latest per key remains; above it
    // (the active segment) everything does.
    let clean = o.clean_offset;
    let want = latest(&before);
    let compacted: Vec<_> = after.iter().filter(|r| r.offset < clean).collect();
    for r in &compacted {
        let (off, _) = want[r.key.as_ref().unwrap().as_ref()];
        assert!(
            off == r.offset || off >= clean,
            "record {} of key {:?} is superseded by {}",
            r.offset,
            r.key,
            off
        );
    }
    assert_eq!(
        latest(&after),
        want,
        "the latest value of every key reads back"
    );
    assert_eq!(log.end_offset(), Offset(2_000));
    // Reading from any offset inside a gap starts at the next survivor.
    let first_gap = (0..clean.0)
        .map(Offset)
        .find(|o| !after.iter().any(|r| r.offset == *o))
        .unwrap();
    let from_gap = log.read(first_gap, 1 << 20).unwrap();
    assert!(from_gap.records().all(|r| r.is_ok()));
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    for i in 0..400u64 {
        log.append(&[keyed(i, 20, 0)]).unwrap();
    }
    // Delete key k3, then bury the tombstone under more segments.
    log.append(&[Record::tombstone("k3").with_timestamp(Timestamp(0))])
        .unwrap();
    for i in 400..800u64 {
        let r = keyed(i, 20, 0);
        if r.key.as_deref() != Some(b"k3") {
            log.append(&[r]).unwrap();
        }
    }
    let has_k3 = |log: &PartitionLog| {
        read_all(log, log.start_offset())
            .into_iter()
            .filter(|r| r.key.as_deref() == Some(b"k3"))
            .collect::<Vec<_>>()
    };
    let keep = CompactionSettings {
        delete_retention: Duration::from_millis(DAY_MS as u64),
        ..settings()
    };
    log.compact(Timestamp(DAY_MS / 2), &keep).unwrap();
    let k3 = has_k3(&log);
    assert_eq!(k3.len(), 1, "only the tombstone is left of k3: {k3:?}");
    assert_eq!(k3[0].value, None);
    // A day later the tombstone itself goes.
    log.compact(Timestamp(2 * DAY_MS), &keep).unwrap();
    assert!(has_k3(&log).is_empty());
}

#[test]
fn the_dirty_ratio_and_the_lag_hold_compaction_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    fill(&log, 1_000, 10);
    let picky = CompactionSettings {
        min_cleanable_dirty_ratio: 0.99,
        ..settings()
    };
    assert_eq!(log.dirty_ratio(Timestamp(0), &picky).unwrap(), 1.0);
    assert!(log.compact(Timestamp(0), &picky).unwrap().cleaned);
    // Everything cleanable is clean now; a little new data is not enough.
    assert_eq!(log.dirty_ratio(Timestamp(0), &picky).unwrap(), 0.0);
    fill(&log, 200, 10);
    log.roll_segment().unwrap();
    let ratio = log.dirty_ratio(Timestamp(0), &picky).unwrap();
    assert!(ratio > 0.0 && ratio < 0.99, "ratio {ratio}");
    let o = log.compact(Timestamp(0), &picky).unwrap();
    assert!(!o.cleaned);
    assert_eq!(o.dirty_ratio, ratio);
    // Records younger than the lag are never compacted.
    let dir2 = tempfile::tempdir().unwrap();
    let young = PartitionLog::open(dir2.path(), compacted()).unwrap();
    for i in 0..1_000u64 {
        young.append(&[keyed(i, 10, 1_000)]).unwrap();
    }
    let lagging = CompactionSettings {
        min_compaction_lag: Duration::from_secs(60),
        ..settings()
    };
    let o = young.compact(Timestamp(30_000), &lagging).unwrap();
    assert!(!o.cleaned, "all records are 29 s old");
    assert!(young.compact(Timestamp(70_000), &lagging).unwrap().cleaned);
}

#[test]
fn compacted_logs_reopen_cleanly_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    fill(&log, 2_000, 7);
    log.compact(Timestamp(0), &settings()).unwrap();
    let expect = read_all(&log, Offset(0));
    let clean_offset = log.stats().clean_offset;
    // A crash image (the open directory copied), and one with the checkpoint
    // lost too, so recovery validates every segment from offset 0: the
    // compaction gaps must not be taken for lost data.
    let crashed = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), crashed.path());
    let no_ckpt = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), no_ckpt.path());
    common::mark_unclean(no_ckpt.path());
    log.close().unwrap();
    drop(log);
    for d in [dir.path(), crashed.path(), no_ckpt.path()] {
        let log = PartitionLog::open(d, compacted()).unwrap();
        assert_eq!(read_all(&log, Offset(0)), expect, "{d:?}");
        assert_eq!(log.end_offset(), Offset(2_000));
        assert!(log.append(&[keyed(2_000, 7, 0)]).is_ok());
    }
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    assert!(log.stats().clean_offset >= clean_offset);
}

#[test]
fn compressed_batches_are_compacted_with_their_codec() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    for b in 0..200u64 {
        let records: Vec<_> = (0..10).map(|i| keyed(b * 10 + i, 30, 0)).collect();
        let bytes =
            encode_compressed_batch(&records, Timestamp(0), Offset(0), Compression::Gzip).unwrap();
        log.append_batch(&bytes).unwrap();
    }
    let before = read_all(&log, Offset(0));
    assert!(log.compact(Timestamp(0), &settings()).unwrap().cleaned);
    let after = read_all(&log, Offset(0));
    assert!(after.len() < before.len());
    assert_eq!(latest(&after), latest(&before));
    let batches = log.read(Offset(0), 1 << 20).unwrap();
    for b in batches.iter() {
        let b = b.unwrap();
        if b.record_count() > 0 {
            assert_eq!(b.header().compression().unwrap(), Compression::Gzip);
        }
    }
}

#[test]
fn a_reader_keeps_the_bytes_of_a_compacted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    fill(&log, 2_000, 5);
    let held = log.read(Offset(0), 1 << 20).unwrap();
    let expect: Vec<_> = held.records().map(|r| r.unwrap()).collect();
    assert!(log.compact(Timestamp(0), &settings()).unwrap().cleaned);
    let again: Vec<_> = held.records().map(|r| r.unwrap()).collect();
    assert_eq!(again, expect);
}

#[test]
fn records_without_a_key_are_refused_by_compacted_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    assert!(matches!(
        log.append(&[Record::new("no key")]),
        Err(Error::InvalidRecord { .. })
    ));
    let batch = encode_compressed_batch(
        &[Record::new("a").with_key("k"), Record::new("b")],
        Timestamp(0),
        Offset(0),
        Compression::None,
    )
    .unwrap();
    assert!(matches!(
        log.append_batch(&batch),
        Err(Error::InvalidRecord { .. })
    ));
    assert_eq!(log.end_offset(), Offset(0));
    assert_eq!(
        log.append(&[Record::new("a").with_key("k")]).unwrap(),
        Offset(0)
    );
}

fn clocked_log(dir: &std::path::Path, clock: Arc<ManualClock>) -> Log {
    Log::open(
        dir,
        LogConfig {
            clock,
            offsets_segment_bytes: 16 << 10,
            ..LogConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn topics_report_dirty_ratio_and_reclaimed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let log = clocked_log(dir.path(), Arc::clone(&clock));
    let config = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 4096,
        ..TopicConfig::default()
    };
    log.create_topic("table", 1, Some(config)).unwrap();
    let producer = log.producer(Default::default()).unwrap();
    for i in 0..2_000u64 {
        producer
            .send_to("table", PartitionId(0), keyed(i, 10, 0))
            .unwrap();
    }
    assert!(matches!(
        producer.send_to("table", PartitionId(0), Record::new("keyless")),
        Err(Error::InvalidRecord { .. })
    ));
    let before = log.describe_topic("table").unwrap().partitions[0];
    assert_eq!(before.dirty_ratio, Some(1.0));
    assert_eq!(before.last_compaction, None);
    let report = log.run_maintenance(Timestamp(0)).unwrap();
    assert_eq!(report.partitions_compacted, 1);
    let after = log.describe_topic("table").unwrap().partitions[0];
    let last = after.last_compaction.unwrap();
    assert_eq!(last.bytes_reclaimed(), report.bytes_reclaimed);
    assert!(last.bytes_reclaimed() > 0);
    assert_eq!(after.dirty_ratio, Some(0.0));
    assert!(after.size_bytes < before.size_bytes);
}

#[test]
fn committed_offsets_take_bounded_space() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let log = clocked_log(dir.path(), Arc::clone(&clock));
    log.create_topic("t", 2, None).unwrap();
    let tps: Vec<_> = (0..2)
        .map(|p| moldau::TopicPartition::new(moldau::TopicName::new("t").unwrap(), p))
        .collect();
    let mut consumer = log.consumer(Default::default()).unwrap();
    consumer.assign_in_group("g", &tps).unwrap();
    let offsets_size = |log: &Log| {
        log.describe_topic(moldau::OFFSETS_TOPIC)
            .unwrap()
            .partitions[0]
            .size_bytes
    };
    let mut sizes = Vec::new();
    for round in 0..6u64 {
        for i in 0..1_000u64 {
            let commits: Vec<_> = tps
                .iter()
                .map(|tp| {
                    (
                        tp.clone(),
                        moldau::OffsetAndMetadata::new(Offset(round * 1_000 + i)),
                    )
                })
                .collect();
            consumer.commit_offsets(&commits).unwrap();
        }
        log.run_maintenance(Timestamp(0)).unwrap();
        sizes.push(offsets_size(&log));
    }
    // 12,000 commits of about 100 bytes each, held in a few segments of 16 KiB.
    let max = *sizes.iter().max().unwrap();
    assert!(
        max < 100 << 10,
        "offsets topic grew to {max} bytes: {sizes:?}"
    );
    drop(consumer);
    log.close().unwrap();
    drop(log);
    let log = clocked_log(dir.path(), clock);
    for tp in &tps {
        assert_eq!(
            log.committed("g", tp).unwrap().unwrap().offset,
            Offset(5_999)
        );
    }
}

#[test]
fn partitions_flushed_on_every_append_are_compacted() {
    // Regression: under FlushPolicy::Always the recovery point never moved
    // past the first segment (each sync compared against the flushed offset
    // just before it, which already equalled the new segment's base), so no
    // segment was ever below it and compaction never ran.
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        flush: moldau::FlushPolicy::Always,
        ..compacted()
    };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    fill(&log, 1_000, 10);
    assert_eq!(log.dirty_ratio(Timestamp(0), &settings()).unwrap(), 1.0);
    assert!(log.compact(Timestamp(0), &settings()).unwrap().cleaned);
}

#[test]
fn a_compacted_segment_that_becomes_the_last_one_recovers_whole() {
    // Regression: recovery required contiguous offsets in the last segment,
    // so after a truncation made a compacted segment the last one, a crash
    // cut it at its first compaction gap.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    fill(&log, 2_000, 7);
    let clean = log.compact(Timestamp(0), &settings()).unwrap().clean_offset;
    let kept = read_all(&log, Offset(0));
    // Cut inside the compacted range, past a few survivors.
    let cut = kept
        .iter()
        .map(|r| r.offset)
        .filter(|o| *o < clean)
        .nth(3)
        .unwrap();
    let end = log.truncate_to(cut).unwrap();
    let expect: Vec<_> = read_all(&log, Offset(0));
    assert!(expect.iter().all(|r| r.offset < end));
    let crashed = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), crashed.path());
    let log = PartitionLog::open(crashed.path(), compacted()).unwrap();
    assert_eq!(log.end_offset(), end);
    assert_eq!(read_all(&log, Offset(0)), expect);
}

/// Rolled segments are fsynced in the background, and compaction cleans
/// only durable ones: a pass right after a roll, with no append since to
/// collect the background fsync's report, still cleans every sealed
/// segment (the pass makes them durable itself if need be).
#[test]
fn a_pass_right_after_a_roll_cleans_every_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted()).unwrap();
    let mut i = 0;
    while log.stats().segment_count < 4 {
        log.append(&[keyed(i, 10, 0)]).unwrap();
        i += 1;
    }
    // The last append rolled (its record starts the new segment), and
    // nothing has been appended since.
    let active_base = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log")?.parse::<u64>().ok()
        })
        .max()
        .unwrap();
    let outcome = log.compact(Timestamp(DAY_MS), &settings()).unwrap();
    assert!(outcome.cleaned);
    assert_eq!(outcome.clean_offset, Offset(active_base));
    assert!(log.stats().flushed_offset >= Offset(active_base));
}
