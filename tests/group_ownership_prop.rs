//! Property: whatever sequence of joins, leaves and partition additions a
//! group goes through, no partition ever has two owners, and once members
//! have polled, every partition has exactly one.

mod common;

use std::time::Duration;

use common::groups::{all_partitions, settle};
use moldau::{Assignor, Consumer, ConsumerConfig, Log, LogConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Join,
    Leave(usize),
    AddPartitions(u32),
    /// One member polls alone (members converge at different times).
    Poll(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Join),
        2 => (0..8usize).prop_map(Op::Leave),
        1 => (1..3u32).prop_map(Op::AddPartitions),
        2 => (0..8usize).prop_map(Op::Poll),
    ]
}

fn assignor() -> impl Strategy<Value = Assignor> {
    prop_oneof![
        Just(Assignor::Range),
        Just(Assignor::RoundRobin),
        Just(Assignor::CooperativeSticky)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_partition_has_exactly_one_owner(assignor in assignor(), ops in prop::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let mut partitions = [("a", 3u32), ("b", 2u32)];
        for (t, n) in partitions {
            log.create_topic(t, n, None).unwrap();
        }
        let mut members: Vec<Consumer> = Vec::new();
        for op in ops {
            match op {
                Op::Join => {
                    let mut c = log.consumer(ConsumerConfig { assignor, ..Default::default() }).unwrap();
                    c.subscribe("g", &["a", "b"]).unwrap();
                    members.push(c);
                }
                Op::Leave(i) if !members.is_empty() => {
                    let c = members.remove(i % members.len());
                    drop(c);
                }
                Op::AddPartitions(k) => {
                    partitions[0].1 += k;
                    log.add_partitions("a", partitions[0].1).unwrap();
                }
                Op::Poll(i) if !members.is_empty() => {
                    let n = members.len();
                    members[i % n].poll(Duration::ZERO).unwrap();
                }
                _ => continue,
            }
            // At every step: no two owners.
            let mut owned = std::collections::BTreeSet::new();
            for c in &members {
                for tp in c.assignment() {
                    prop_assert!(owned.insert(tp), "two owners");
                }
            }
            if !members.is_empty() && !matches!(op, Op::Poll(_)) {
                let mut refs: Vec<&mut Consumer> = members.iter_mut().collect();
                settle(&mut refs, &all_partitions(&partitions));
            }
        }
    }
}
