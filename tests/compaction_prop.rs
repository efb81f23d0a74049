//! Property test: random keyed logs (with tombstones), appended, rolled,
//! compacted, reopened and crash-copied in random order, checked against a
//! model of what compaction must keep.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::small_config;
use moldau::{CompactionSettings, Offset, PartitionConfig, PartitionLog, Record, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Append records: (key index, tombstone?, value length); one batch.
    Append(Vec<(u8, bool, u8)>),
    Roll,
    /// Compact at the model's current time plus this many ms.
    Compact(u16),
    Reopen,
    /// Reopen from a copy of the open directory (what a crash leaves).
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0u8..12, prop::bool::weighted(0.1), 0u8..80), 1..20)
            .prop_map(Op::Append),
        1 => Just(Op::Roll),
        3 => (0u16..2_000).prop_map(Op::Compact),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// One appended record as the model knows it.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    ts: i64,
}

fn config() -> PartitionConfig {
    PartitionConfig {
        compacted: true,
        segment_bytes: 4096,
        ..small_config()
    }
}

fn check(
    log: &PartitionLog,
    model: &[Written],
    now: i64,
    delete_retention_ms: i64,
) -> Result<(), TestCaseError> {
    let records = common::read_all(log, log.start_offset());
    prop_assert_eq!(log.end_offset(), Offset(model.len() as u64));
    let clean = log.stats().clean_offset;
    let mut latest: HashMap<&[u8], u64> = HashMap::new();
    for (i, w) in model.iter().enumerate() {
        latest.insert(&w.key, i as u64);
    }
    let mut latest_below_clean: HashMap<&[u8], u64> = HashMap::new();
    for (i, w) in model.iter().enumerate().take(clean.0 as usize) {
        latest_below_clean.insert(&w.key, i as u64);
    }
    let mut prev = None;
    let mut present = std::collections::HashSet::new();
    for r in &records {
        prop_assert!(prev.is_none_or(|p| p < r.offset), "offsets increase");
        prev = Some(r.offset);
        let w = &model[r.offset.0 as usize];
        // The record read is the one written at that offset.
        prop_assert_eq!(r.key.as_deref(), Some(&w.key[..]));
        prop_assert_eq!(r.value.as_deref(), w.value.as_deref());
        prop_assert_eq!(r.timestamp, Timestamp(w.ts));
        // Below the clean offset, nothing superseded there remains.
        if r.offset < clean {
            prop_assert_eq!(
                latest_below_clean[&w.key[..]],
                r.offset.0,
                "superseded record kept"
            );
        }
        present.insert(r.offset.0);
    }
    // Everything at or above the clean offset is untouched.
    for i in clean.0..model.len() as u64 {
        prop_assert!(
            present.contains(&i),
            "record {} above the clean offset is gone",
            i
        );
    }
    // The latest record of each key is there, but for an old tombstone.
    for (key, &i) in &latest {
        let w = &model[i as usize];
        let may_go = w.value.is_none() && w.ts < now - delete_retention_ms;
        prop_assert!(
            present.contains(&i) || may_go,
            "latest record {} of key {:?} is gone",
            i,
            key
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn compaction_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut path = dir.path().to_path_buf();
        let mut copies = Vec::new();
        let mut log = PartitionLog::open(&path, config()).unwrap();
        let mut model: Vec<Written> = Vec::new();
        let delete_retention_ms = 500;
        let settings = CompactionSettings {
            min_cleanable_dirty_ratio: 0.0,
            delete_retention: Duration::from_millis(delete_retention_ms as u64),
            ..CompactionSettings::default()
        };
        let mut now = 0i64;
        for op in ops {
            match op {
                Op::Append(recs) => {
                    let batch: Vec<Record> = recs
                        .iter()
                        .map(|&(k, tomb, len)| {
                            now += 1;
                            let key = format!("key-{k}");
                            let r = match tomb {
                                true => Record::tombstone(key.clone()),
                                false => Record::new(vec![b'v'; len as usize]).with_key(key.clone()),
                            };
                            model.push(Written {
                                key: key.into_bytes(),
                                value: (!tomb).then(|| vec![b'v'; len as usize]),
                                ts: now,
                            });
                            r.with_timestamp(Timestamp(now))
                        })
                        .collect();
                    log.append(&batch).unwrap();
                }
                Op::Roll => log.roll_segment().unwrap(),
                Op::Compact(dt) => {
                    now += i64::from(dt);
                    log.compact(Timestamp(now), &settings).unwrap();
                    check(&log, &model, now, delete_retention_ms)?;
                }
                Op::Reopen => {
                    log.close().unwrap();
                    drop(log);
                    log = PartitionLog::open(&path, config()).unwrap();
                }
                Op::Crash => {
                    let copy = tempfile::tempdir().unwrap();
                    common::copy_dir(&path, copy.path());
                    log.close().unwrap();
                    drop(log);
                    path = copy.path().to_path_buf();
                    log = PartitionLog::open(&path, config()).unwrap();
                    copies.push(copy);
                }
            }
        }
        check(&log, &model, now, delete_retention_ms)?;
    }
}
