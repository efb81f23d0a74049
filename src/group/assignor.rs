//! Consumer-group partition assignors: which member consumes which
//! partition, computed as Kafka's Java client computes it. Pure, no I/O.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::types::{TopicName, TopicPartition};

/// How a consumer group divides partitions among its members; the
/// `partition.assignment.strategy` of Kafka's consumer.
///
/// ```
/// use moldau::Assignor;
/// assert_eq!(Assignor::default(), Assignor::Range);
/// assert_eq!(Assignor::CooperativeSticky.name(), "cooperative-sticky");
/// assert!(Assignor::CooperativeSticky.is_cooperative());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Assignor {
    /// Kafka's `RangeAssignor` (the consumer's default): per topic, the
    /// members subscribed to it, sorted by member id, each take a consecutive
    /// range of partitions, the first members one more when the count does
    /// not divide evenly. Partition *n* of co-partitioned topics lands on the
    /// same member.
    #[default]
    #[serde(rename = "range")]
    Range,
    /// Kafka's `RoundRobinAssignor`: all partitions, sorted by topic and
    /// number, are dealt one at a time to the members in member-id order,
    /// skipping members not subscribed to the partition's topic.
    #[serde(rename = "roundrobin")]
    RoundRobin,
    /// Kafka's `CooperativeStickyAssignor`: a balanced assignment that moves
    /// as few partitions as it can from their current owners, used with the
    /// cooperative (incremental) rebalance protocol so that members keep
    /// consuming the partitions that do not move.
    #[serde(rename = "cooperative-sticky")]
    CooperativeSticky,
}

impl Assignor {
    /// The name Kafka's group protocol uses for this assignor: `"range"`,
    /// `"roundrobin"` or `"cooperative-sticky"`.
    pub fn name(&self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether rebalances with this assignor are cooperative: members give
    /// up only the partitions that move, instead of all of them (eager).
    pub fn is_cooperative(&self) -> bool {
        matches!(self, Assignor::CooperativeSticky)
    }
}

/// One member of a group, as the assignors see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberSpec<'a> {
    /// The member id; unique within the group.
    pub(crate) id: &'a str,
    /// The topics it subscribes to.
    pub(crate) topics: &'a BTreeSet<TopicName>,
    /// Its current assignment, which the sticky assignor tries to keep.
    pub(crate) owned: &'a BTreeSet<TopicPartition>,
}

/// Assigns the partitions of the subscribed topics to `members` with
/// `assignor`; `partitions` gives each topic's partition count.
///
/// Every member id gets an entry, possibly empty. Subscribed topics missing
/// from `partitions` are ignored, and so are partitions of topics nobody
/// subscribes to; every other partition goes to exactly one member that
/// subscribes to its topic. Members are ordered by id as Java compares
/// strings (UTF-16 code units); if two share an id, the first one given
/// stands for both. The result does not depend on the order of `members`.
pub(crate) fn assign(
    assignor: Assignor,
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<TopicName, u32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut sorted: Vec<&MemberSpec<'_>> = members.iter().collect();
    // Stable, so the first of several members with one id is kept.
    sorted.sort_by(|a, b| java_cmp(a.id, b.id));
    sorted.dedup_by(|later, earlier| later.id == earlier.id);

    let topics = subscribed_topics(&sorted, partitions);
    let held = match assignor {
        Assignor::Range => range(&sorted, &topics),
        Assignor::RoundRobin => round_robin(&sorted, &topics),
        Assignor::CooperativeSticky => sticky(&sorted, &topics),
    };
    sorted
        .iter()
        .zip(held)
        .map(|(member, held)| (member.id.to_owned(), held))
        .collect()
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units. It
/// differs from Rust's byte order only for characters above U+FFFF against
/// U+E000..U+FFFF, but member order decides who gets what, so match Java.
fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The topics some member subscribes to that exist, sorted by name, with
/// their partition counts.
fn subscribed_topics<'p>(
    members: &[&MemberSpec<'_>],
    partitions: &'p BTreeMap<TopicName, u32>,
) -> Vec<(&'p TopicName, u32)> {
    partitions
        .iter()
        .filter(|(topic, _)| members.iter().any(|m| m.topics.contains(*topic)))
        .map(|(topic, &count)| (topic, count))
        .collect()
}

/// Kafka's `RangeAssignor`, without rack awareness. Indexes follow `members`.
fn range(
    members: &[&MemberSpec<'_>],
    topics: &[(&TopicName, u32)],
) -> Vec<BTreeSet<TopicPartition>> {
    let mut held = vec![BTreeSet::new(); members.len()];
    for &(topic, count) in topics {
        let subscribers: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(topic))
            .collect();
        // Kafka: numPartitionsPerConsumer = n / m, and the first n % m
        // consumers take one extra, each a consecutive range. m > 0: `topics`
        // only holds topics some member subscribes to.
        let per_member = count / subscribers.len() as u32;
        let with_extra = count % subscribers.len() as u32;
        let mut next = 0;
        for (rank, &i) in subscribers.iter().enumerate() {
            let take = per_member + u32::from((rank as u32) < with_extra);
            held[i].extend((next..next + take).map(|p| TopicPartition::new(topic.clone(), p)));
            next += take;
        }
    }
    held
}

/// Kafka's `RoundRobinAssignor`: one cursor circles the sorted members for
/// all partitions, stopping at the next member subscribed to the
/// partition's topic and moving one past it.
fn round_robin(
    members: &[&MemberSpec<'_>],
    topics: &[(&TopicName, u32)],
) -> Vec<BTreeSet<TopicPartition>> {
    let mut held = vec![BTreeSet::new(); members.len()];
    let mut cursor = 0;
    for &(topic, count) in topics {
        for p in 0..count {
            // Terminates: `topics` only holds topics some member subscribes to.
            while !members[cursor].topics.contains(topic) {
                cursor = (cursor + 1) % members.len();
            }
            held[cursor].insert(TopicPartition::new(topic.clone(), p));
            cursor = (cursor + 1) % members.len();
        }
    }
    held
}

/// The cooperative sticky assignment, in three steps:
///
/// 1. Each member keeps the owned partitions it may still have (the topic
///    exists, the partition is in range, it still subscribes). A partition
///    claimed by two members goes to the first in member order.
/// 2. Unowned partitions go one by one, those with the fewest eligible
///    members first, to the least-loaded eligible member.
/// 3. While a member holds two or more partitions more than another member
///    that could take one of them, the most-loaded such member hands one to
///    the least-loaded such member, preferring partitions it did not own.
///
/// Step 3 ends because each move lowers the sum of squared loads. When it
/// ends, members with identical subscriptions differ by at most one
/// partition (the heavier could always give to the lighter). With identical
/// subscriptions it keeps the most owned partitions a balanced assignment
/// can keep: a member gives up partitions only while it is at least two
/// above the minimum, so only members owning more than their final share
/// lose any, and they keep that share.
///
/// Cost: a move scans pairs of members (most loaded first) for one that can
/// take a partition, so about moves x members^2 x partitions per member in
/// the worst case; with identical subscriptions the first pair always works.
fn sticky(
    members: &[&MemberSpec<'_>],
    topics: &[(&TopicName, u32)],
) -> Vec<BTreeSet<TopicPartition>> {
    let counts: BTreeMap<&TopicName, u32> = topics.iter().copied().collect();
    let mut held: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); members.len()];
    let mut taken: BTreeSet<&TopicPartition> = BTreeSet::new();

    for (i, member) in members.iter().enumerate() {
        for tp in member.owned.iter() {
            let exists = counts
                .get(&tp.topic)
                .is_some_and(|&count| tp.partition.0 < count);
            if exists && member.topics.contains(&tp.topic) && taken.insert(tp) {
                held[i].insert(tp.clone());
            }
        }
    }

    let mut unowned: Vec<(usize, TopicPartition)> = Vec::new();
    for &(topic, count) in topics {
        let eligible = members.iter().filter(|m| m.topics.contains(topic)).count();
        for p in 0..count {
            let tp = TopicPartition::new(topic.clone(), p);
            if !taken.contains(&tp) {
                unowned.push((eligible, tp));
            }
        }
    }
    // Scarce partitions first, so members with narrow subscriptions are not
    // left with nothing while broad ones fill up.
    unowned.sort();
    for (_, tp) in unowned {
        let least_loaded = (0..members.len())
            .filter(|&i| members[i].topics.contains(&tp.topic))
            .min_by_key(|&i| (held[i].len(), i));
        // Some member subscribes to every topic in `topics`.
        if let Some(i) = least_loaded {
            held[i].insert(tp);
        }
    }

    while let Some((from, to, tp)) = next_move(members, &held) {
        held[from].remove(&tp);
        held[to].insert(tp);
    }
    held
}

/// The balancing move of [`sticky`]'s step 3, or `None` when balanced:
/// (giver, taker, partition).
fn next_move(
    members: &[&MemberSpec<'_>],
    held: &[BTreeSet<TopicPartition>],
) -> Option<(usize, usize, TopicPartition)> {
    let mut by_load: Vec<usize> = (0..members.len()).collect();
    by_load.sort_by_key(|&i| (held[i].len(), i));
    let mut givers = by_load.clone();
    givers.sort_by_key(|&i| (std::cmp::Reverse(held[i].len()), i));
    for &from in &givers {
        for &to in &by_load {
            if held[to].len() + 2 > held[from].len() {
                // Takers are sorted by load: none further on is light enough.
                break;
            }
            let giver_topics = per_topic(&held[from]);
            let taker_topics = per_topic(&held[to]);
            let pick = held[from]
                .iter()
                .filter(|tp| members[to].topics.contains(&tp.topic))
                .max_by_key(|tp| {
                    let surplus = giver_topics.get(&tp.topic).copied().unwrap_or(0) as i64
                        - taker_topics.get(&tp.topic).copied().unwrap_or(0) as i64;
                    // A partition the giver did not own costs no stickiness;
                    // then even out topics between the two, as Kafka's sticky
                    // assignor also balances each topic when it can; then the
                    // highest partition, for determinism.
                    (!members[from].owned.contains(*tp), surplus, *tp)
                });
            if let Some(tp) = pick {
                return Some((from, to, tp.clone()));
            }
        }
    }
    None
}

/// How many of `held` belong to each topic.
fn per_topic(held: &BTreeSet<TopicPartition>) -> BTreeMap<&TopicName, usize> {
    let mut counts = BTreeMap::new();
    for tp in held {
        *counts.entry(&tp.topic).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
