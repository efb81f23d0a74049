//! Durability under process crashes: a child process appends with
//! `FlushPolicy::Always` from several threads and is killed with SIGKILL at a
//! random moment; every record it acknowledged must be present and intact
//! after reopening, and the log must be a gap-free prefix of what was appended.
//!
//! `MOLDAU_CRASH_TRIALS=N` runs N trials (default 100).

mod common;

use common::workload::{trials, Rng};

use std::collections::HashMap;
use std::sync::Arc;

use moldau::{FlushPolicy, Offset, PartitionConfig, PartitionLog, Record};

const CHILD_DIR: &str = "MOLDAU_CRASH_CHILD_DIR";

fn config() -> PartitionConfig {
    PartitionConfig {
        flush: FlushPolicy::Always,
        // Small segments so crashes also land around rolls.
        segment_bytes: 64 * 1024,
        index_interval_bytes: 512,
        ..PartitionConfig::default()
    }
}

fn value(thread: u64, seq: u64) -> String {
    format!("t{thread}-s{seq}-{}", "x".repeat((seq % 200) as usize))
}

/// The child: appends until killed, printing `ack <offset> <thread> <seq> <count>`
/// after each acknowledged append. A no-op when run as an ordinary test.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let log = Arc::new(PartitionLog::open(dir, config()).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut seq = 0u64;
                loop {
                    // Alternate single records and batches of up to 20.
                    let count = if seq.is_multiple_of(3) {
                        1 + seq % 20
                    } else {
                        1
                    };
                    let records: Vec<Record> = (seq..seq + count)
                        .map(|s| Record::new(value(t, s)))
                        .collect();
                    let first = log.append(&records).unwrap();
                    println!("ack {} {t} {seq} {count}", first.0);
                    seq += count;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // Acknowledged offset -> expected value, over all trials.
    let mut acked: HashMap<u64, String> = HashMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for trial in 0..trials(100) {
        let kill_after = 1 + rng.below(400) as usize;
        let mut child = common::spawn_crash_child(CHILD_DIR, dir.path());
        common::kill_after_acks(&mut child, kill_after, |line| {
            let f: Vec<u64> = line
                .split(' ')
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect();
            let (first, t, seq, count) = (f[0], f[1], f[2], f[3]);
            for i in 0..count {
                acked.insert(first + i, value(t, seq + i));
            }
        });

        let log = PartitionLog::open(dir.path(), config()).unwrap();
        let end = log.end_offset();
        let max_acked = acked.keys().max().copied().unwrap_or(0);
        assert!(
            end.0 > max_acked,
            "trial {trial}: end {end} but offset {max_acked} was acknowledged"
        );
        // Every offset from 0 to the end is present, in order, intact.
        let mut next = Offset(0);
        while next < end {
            let batches = log.read(next, 1 << 20).unwrap();
            for r in batches.records() {
                let r = r.unwrap_or_else(|e| panic!("trial {trial}: {e}"));
                assert_eq!(r.offset, next, "trial {trial}: gap or reordering");
                if let Some(v) = acked.get(&r.offset.0) {
                    assert_eq!(
                        r.value.as_deref(),
                        Some(v.as_bytes()),
                        "trial {trial}: offset {}",
                        r.offset
                    );
                }
                next = next.plus(1);
            }
        }
        // Records appended but never acknowledged may survive; they are not in
        // `acked`, and the next child's appends follow them.
        log.close().unwrap();
    }
    assert!(
        acked.len() as u64 > trials(100),
        "the children acknowledged too little to test anything"
    );
}
