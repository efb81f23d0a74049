//! Helpers for consumer-group tests: settling a group by polling its members.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use moldau::{Consumer, TopicName, TopicPartition};

/// Every partition of `topics` (name, partition count).
pub fn all_partitions(topics: &[(&str, u32)]) -> BTreeSet<TopicPartition> {
    topics
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| TopicPartition::new(TopicName::new(t).unwrap(), p)))
        .collect()
}

/// Polls every consumer (without blocking) until their assignments are
/// disjoint and together cover `expected`, or panics after a deadline.
pub fn settle(consumers: &mut [&mut Consumer], expected: &BTreeSet<TopicPartition>) {
    settle_where(consumers, expected, |_| true)
}

/// Like [`settle`], until `done` also holds for the consumers.
pub fn settle_where(
    consumers: &mut [&mut Consumer],
    expected: &BTreeSet<TopicPartition>,
    done: impl Fn(&[&mut Consumer]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for c in consumers.iter_mut() {
            c.poll(Duration::ZERO).unwrap();
        }
        let mut seen = BTreeSet::new();
        let mut disjoint = true;
        for c in consumers.iter() {
            for tp in c.assignment() {
                disjoint &= seen.insert(tp);
            }
        }
        assert!(disjoint, "a partition has two owners");
        if &seen == expected && done(consumers) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group did not settle: {seen:?} vs {expected:?}"
        );
    }
}
