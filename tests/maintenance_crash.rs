//! Crashes during compaction and retention: a child process appends to a
//! compacted partition and to a size-retained one, compacting and applying
//! retention every few appends, and is killed with SIGKILL at random
//! moments. After each kill both partitions must open; the compacted one
//! keeps, for every key, its latest acknowledged record or a newer one; the
//! retained one is a gap-free run of intact records that holds every
//! acknowledged record at or above its start.
//!
//! `MOLDAU_CRASH_TRIALS=N` runs N trials (default 60).

mod common;

use common::workload::{trials, Rng};

use std::collections::HashMap;
use std::path::Path;

use moldau::{
    CompactionSettings, FlushPolicy, Offset, PartitionConfig, PartitionLog, Record, Retention,
    Timestamp,
};

const CHILD_DIR: &str = "MOLDAU_MAINT_CRASH_CHILD_DIR";
const KEYS: u64 = 40;
const RETAINED_BYTES: u64 = 16 << 10;

fn config(compacted: bool) -> PartitionConfig {
    PartitionConfig {
        flush: FlushPolicy::Always,
        segment_bytes: 4096,
        index_interval_bytes: 256,
        compacted,
        ..PartitionConfig::default()
    }
}

fn open(dir: &Path) -> (PartitionLog, PartitionLog) {
    (
        PartitionLog::open(dir.join("compacted-0"), config(true)).unwrap(),
        PartitionLog::open(dir.join("retained-0"), config(false)).unwrap(),
    )
}

/// The child: appends until killed, printing `ack <i> <offset in retained>`
/// after both appends of step `i` returned. A no-op as an ordinary test.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let (compacted, retained) = open(Path::new(&dir));
    let settings = CompactionSettings {
        min_cleanable_dirty_ratio: 0.0,
        ..CompactionSettings::default()
    };
    let retention = Retention {
        max_age: None,
        max_bytes: Some(RETAINED_BYTES),
    };
    let mut i = compacted.end_offset().0;
    loop {
        let r = Record::new(format!("{i}-{}", "x".repeat((i % 50) as usize)))
            .with_key(format!("k{}", i % KEYS))
            .with_timestamp(Timestamp(0));
        assert_eq!(compacted.append(&[r]).unwrap(), Offset(i));
        let at = retained.append(&[Record::new(format!("r{i}"))]).unwrap();
        println!("ack {i} {}", at.0);
        if i % 16 == 0 {
            compacted.compact(Timestamp(0), &settings).unwrap();
            retained.apply_retention(Timestamp(0), retention).unwrap();
        }
        i += 1;
    }
}

#[test]
fn compaction_and_retention_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // Latest acknowledged step per key; acknowledged retained offsets.
    let mut acked_key: HashMap<u64, u64> = HashMap::new();
    let mut acked_retained: HashMap<u64, String> = HashMap::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for trial in 0..trials(60) {
        let kill_after = 1 + rng.below(300) as usize;
        let mut child = common::spawn_crash_child(CHILD_DIR, dir.path());
        common::kill_after_acks(&mut child, kill_after, |line| {
            let f: Vec<u64> = line
                .split(' ')
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect();
            let (i, at) = (f[0], f[1]);
            acked_key.insert(i % KEYS, i);
            acked_retained.insert(at, format!("r{i}"));
        });

        let (compacted, retained) = open(dir.path());
        check_compacted(trial, &compacted, &acked_key);
        check_retained(trial, &retained, &acked_retained);
    }
}

fn check_compacted(trial: u64, log: &PartitionLog, acked: &HashMap<u64, u64>) {
    let mut latest: HashMap<u64, u64> = HashMap::new();
    let mut prev = None;
    for r in common::read_all(log, log.start_offset()) {
        assert!(prev < Some(r.offset), "trial {trial}: offsets go back");
        prev = Some(r.offset);
        let i = r.offset.0;
        let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
        assert!(
            value.starts_with(&format!("{i}-")),
            "trial {trial}: offset {i} holds {value}"
        );
        assert_eq!(r.key.as_deref(), Some(format!("k{}", i % KEYS).as_bytes()));
        latest.insert(i % KEYS, i);
    }
    for (key, &i) in acked {
        let kept = latest.get(key).copied();
        assert!(
            kept >= Some(i),
            "trial {trial}: key k{key} acknowledged at {i}, latest kept {kept:?}"
        );
    }
}

fn check_retained(trial: u64, log: &PartitionLog, acked: &HashMap<u64, String>) {
    let (start, end) = (log.start_offset(), log.end_offset());
    let max_acked = acked.keys().max().copied().unwrap_or(0);
    assert!(
        end.0 > max_acked,
        "trial {trial}: end {end}, acknowledged {max_acked}"
    );
    let records = common::read_all(log, start);
    let records: Vec<_> = records.into_iter().filter(|r| r.offset >= start).collect();
    assert_eq!(
        records.len() as u64,
        end.0 - start.0,
        "trial {trial}: a hole"
    );
    for (r, o) in records.iter().zip(start.0..) {
        assert_eq!(r.offset, Offset(o), "trial {trial}: gap or reordering");
        if let Some(v) = acked.get(&o) {
            assert_eq!(
                r.value.as_deref(),
                Some(v.as_bytes()),
                "trial {trial}: offset {o}"
            );
        }
    }
}
