//! Tests of `assignor`.
use proptest::prelude::*;

use super::*;
use crate::types::PartitionId;

type Assignment = BTreeMap<String, BTreeSet<TopicPartition>>;

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

fn tp(name: &str, p: u32) -> TopicPartition {
    TopicPartition::new(topic(name), p)
}

/// Parses Kafka's test notation: "t1-0, t1-1".
fn tps(list: &str) -> BTreeSet<TopicPartition> {
    list.split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (name, p) = s.rsplit_once('-').unwrap();
            tp(name, p.parse().unwrap())
        })
        .collect()
}

fn counts(list: &[(&str, u32)]) -> BTreeMap<TopicName, u32> {
    list.iter().map(|&(n, c)| (topic(n), c)).collect()
}

/// A member owning its data, lent to [`assign`] as a [`MemberSpec`].
#[derive(Debug, Clone)]
struct Member {
    id: String,
    topics: BTreeSet<TopicName>,
    owned: BTreeSet<TopicPartition>,
}

fn member(id: &str, subscribed: &[&str]) -> Member {
    Member {
        id: id.to_owned(),
        topics: subscribed.iter().map(|n| topic(n)).collect(),
        owned: BTreeSet::new(),
    }
}

fn owning(mut m: Member, owned: &BTreeSet<TopicPartition>) -> Member {
    m.owned = owned.clone();
    m
}

fn specs(members: &[Member]) -> Vec<MemberSpec<'_>> {
    members
        .iter()
        .map(|m| MemberSpec {
            id: &m.id,
            topics: &m.topics,
            owned: &m.owned,
        })
        .collect()
}

/// Assigns and checks the invariants every assignor keeps.
fn run(
    assignor: Assignor,
    members: &[Member],
    partitions: &BTreeMap<TopicName, u32>,
) -> Assignment {
    let result = assign(assignor, &specs(members), partitions);
    check_valid(members, partitions, &result);
    result
}

fn in_range(tp: &TopicPartition, partitions: &BTreeMap<TopicName, u32>) -> bool {
    partitions
        .get(&tp.topic)
        .is_some_and(|&n| tp.partition < PartitionId(n))
}

/// Every member has an entry; every partition of a subscribed, existing
/// topic is held by exactly one member, which subscribes to its topic.
fn check_valid(members: &[Member], partitions: &BTreeMap<TopicName, u32>, result: &Assignment) {
    let ids: BTreeSet<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let keys: BTreeSet<&str> = result.keys().map(String::as_str).collect();
    assert_eq!(ids, keys, "every member gets an entry, and only members");
    let mut seen = BTreeSet::new();
    for (id, held) in result {
        let m = members.iter().find(|m| &m.id == id).unwrap();
        for tp in held {
            assert!(
                m.topics.contains(&tp.topic),
                "{id} got {tp}, not subscribed"
            );
            assert!(
                in_range(tp, partitions),
                "{id} got {tp}, which does not exist"
            );
            assert!(seen.insert(tp.clone()), "{tp} assigned twice");
        }
    }
    let wanted: BTreeSet<TopicPartition> = partitions
        .iter()
        .filter(|(t, _)| members.iter().any(|m| m.topics.contains(*t)))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect();
    assert_eq!(seen, wanted, "every subscribed partition is assigned");
}

/// One of Kafka's parameterised cases: members "consumer0", "consumer1",
/// ... with the given subscriptions and expected assignments, in Kafka's
/// notation.
fn kafka_case(
    assignor: Assignor,
    topics: &[(&str, u32)],
    subscriptions: &[&[&str]],
    expected: &[&str],
) {
    let members: Vec<Member> = subscriptions
        .iter()
        .enumerate()
        .map(|(i, s)| member(&format!("consumer{i}"), s))
        .collect();
    let result = run(assignor, &members, &counts(topics));
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(result[&format!("consumer{i}")], tps(want), "consumer{i}");
    }
}

#[test]
fn names_match_kafka_protocol_names() {
    assert_eq!(Assignor::Range.name(), "range");
    assert_eq!(Assignor::RoundRobin.name(), "roundrobin");
    assert_eq!(Assignor::CooperativeSticky.name(), "cooperative-sticky");
    assert!(!Assignor::Range.is_cooperative());
    assert!(!Assignor::RoundRobin.is_cooperative());
    assert!(Assignor::CooperativeSticky.is_cooperative());
}

#[test]
fn serde_uses_the_protocol_names() {
    use serde::de::value::{Error, StrDeserializer};
    for a in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        let named = Assignor::deserialize(StrDeserializer::<Error>::new(a.name()));
        assert_eq!(named, Ok(a));
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Assignor>(&bytes).unwrap(), a);
    }
    assert!(Assignor::deserialize(StrDeserializer::<Error>::new("sticky")).is_err());
}

#[test]
fn member_order_is_javas_utf16_order() {
    // U+1F600 is the surrogate pair D83D DE00 in UTF-16, below U+FF61,
    // though its UTF-8 bytes (F0 ..) sort above U+FF61's (EF ..). Java's
    // RangeAssignor puts "\u{1f600}" first.
    let members = [member("\u{ff61}", &["t"]), member("\u{1f600}", &["t"])];
    let result = run(Assignor::Range, &members, &counts(&[("t", 3)]));
    assert_eq!(result["\u{1f600}"], tps("t-0, t-1"));
    assert_eq!(result["\u{ff61}"], tps("t-2"));
}

#[test]
fn no_members_no_assignment() {
    for a in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        assert!(assign(a, &[], &counts(&[("t", 3)])).is_empty());
    }
}

#[test]
fn a_duplicate_member_id_counts_once() {
    let members = [
        member("a", &["t"]),
        member("a", &["u"]),
        member("b", &["t"]),
    ];
    for a in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        let result = assign(a, &specs(&members), &counts(&[("t", 2), ("u", 1)]));
        // The first "a" (subscribed to t) stands for both, so u goes unassigned.
        assert_eq!(result.len(), 2);
        assert_eq!(result["a"].len() + result["b"].len(), 2, "{a:?}");
    }
}

// Cases from Kafka's RangeAssignorTest, RoundRobinAssignorTest and the
// cases the two share (apache/kafka
// clients/src/test/java/org/apache/kafka/clients/consumer/).

#[test]
fn kafka_single_consumer_cases() {
    for a in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        // testOneConsumerNoTopic
        let result = run(a, &[member("consumer", &[])], &counts(&[]));
        assert!(result["consumer"].is_empty());
        // testOneConsumerNonexistentTopic
        let result = run(a, &[member("consumer", &["topic"])], &counts(&[]));
        assert!(result["consumer"].is_empty());
        // testOneConsumerOneTopic
        let result = run(
            a,
            &[member("consumer", &["topic"])],
            &counts(&[("topic", 3)]),
        );
        assert_eq!(result["consumer"], tps("topic-0, topic-1, topic-2"));
        // testOnlyAssignsPartitionsFromSubscribedTopics
        let result = run(
            a,
            &[member("consumer", &["topic"])],
            &counts(&[("topic", 3), ("other", 3)]),
        );
        assert_eq!(result["consumer"], tps("topic-0, topic-1, topic-2"));
        // testOneConsumerMultipleTopics
        let result = run(
            a,
            &[member("consumer", &["topic1", "topic2"])],
            &counts(&[("topic1", 1), ("topic2", 2)]),
        );
        assert_eq!(result["consumer"], tps("topic1-0, topic2-0, topic2-1"));
    }
}

#[test]
fn kafka_two_consumers_one_topic() {
    for a in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        let both = [
            member("consumer1", &["topic"]),
            member("consumer2", &["topic"]),
        ];
        // testTwoConsumersOneTopicOnePartition
        let result = run(a, &both, &counts(&[("topic", 1)]));
        assert_eq!(result["consumer1"], tps("topic-0"));
        assert!(result["consumer2"].is_empty());
        // testTwoConsumersOneTopicTwoPartitions
        let result = run(a, &both, &counts(&[("topic", 2)]));
        assert_eq!(result["consumer1"], tps("topic-0"));
        assert_eq!(result["consumer2"], tps("topic-1"));
    }
}

#[test]
fn kafka_multiple_consumers_mixed_topics() {
    // testMultipleConsumersMixedTopics, the same answer in both tests.
    let members = [
        member("consumer1", &["topic1"]),
        member("consumer2", &["topic1", "topic2"]),
        member("consumer3", &["topic1"]),
    ];
    for a in [Assignor::Range, Assignor::RoundRobin] {
        let result = run(a, &members, &counts(&[("topic1", 3), ("topic2", 2)]));
        assert_eq!(result["consumer1"], tps("topic1-0"));
        assert_eq!(result["consumer2"], tps("topic1-1, topic2-0, topic2-1"));
        assert_eq!(result["consumer3"], tps("topic1-2"));
    }
}

#[test]
fn kafka_range_two_consumers_two_topics_six_partitions() {
    // RangeAssignorTest.testTwoConsumersTwoTopicsSixPartitions
    let members = [
        member("consumer1", &["topic1", "topic2"]),
        member("consumer2", &["topic1", "topic2"]),
    ];
    let result = run(
        Assignor::Range,
        &members,
        &counts(&[("topic1", 3), ("topic2", 3)]),
    );
    assert_eq!(
        result["consumer1"],
        tps("topic1-0, topic1-1, topic2-0, topic2-1")
    );
    assert_eq!(result["consumer2"], tps("topic1-2, topic2-2"));
}

#[test]
fn kafka_range_four_consumers() {
    // RangeAssignorTest.testStaticMemberRangeAssignmentPersistent: Kafka
    // orders the static members instance1..3 first, then consumer4; plain
    // member ids consumer1..4 give the same order. Replacing consumer4
    // with consumer5 leaves the others as they were.
    let partitions = counts(&[("topic1", 5), ("topic2", 4)]);
    let mut members: Vec<Member> = (1..=4)
        .map(|i| member(&format!("consumer{i}"), &["topic1", "topic2"]))
        .collect();
    let result = run(Assignor::Range, &members, &partitions);
    assert_eq!(result["consumer1"], tps("topic1-0, topic1-1, topic2-0"));
    assert_eq!(result["consumer2"], tps("topic1-2, topic2-1"));
    assert_eq!(result["consumer3"], tps("topic1-3, topic2-2"));
    assert_eq!(result["consumer4"], tps("topic1-4, topic2-3"));
    members[3] = member("consumer5", &["topic1", "topic2"]);
    let result = run(Assignor::Range, &members, &partitions);
    assert_eq!(result["consumer3"], tps("topic1-3, topic2-2"));
    assert_eq!(result["consumer5"], tps("topic1-4, topic2-3"));
}

#[test]
fn kafka_range_without_racks() {
    // RangeAssignorTest, the non-rack-aware expectations of
    // testRackAwareAssignmentWithUniformSubscription, ...NonEqualSubscription,
    // ...UniformPartitions, ...UniformPartitionsNonEqualSubscription,
    // ...CoPartitioning and testCoPartitionedAssignmentWithSameSubscription.
    let all: &[&str] = &["t1", "t2", "t3"];
    let t1_t3: &[&str] = &["t1", "t3"];
    kafka_case(
        Assignor::Range,
        &[("t1", 6), ("t2", 7), ("t3", 2)],
        &[all, all, all],
        &[
            "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0",
            "t1-2, t1-3, t2-3, t2-4, t3-1",
            "t1-4, t1-5, t2-5, t2-6",
        ],
    );
    kafka_case(
        Assignor::Range,
        &[("t1", 6), ("t2", 7), ("t3", 2)],
        &[all, all, t1_t3],
        &[
            "t1-0, t1-1, t2-0, t2-1, t2-2, t2-3, t3-0",
            "t1-2, t1-3, t2-4, t2-5, t2-6, t3-1",
            "t1-4, t1-5",
        ],
    );
    kafka_case(
        Assignor::Range,
        &[("t1", 5), ("t2", 5), ("t3", 5)],
        &[all, all, all],
        &[
            "t1-0, t1-1, t2-0, t2-1, t3-0, t3-1",
            "t1-2, t1-3, t2-2, t2-3, t3-2, t3-3",
            "t1-4, t2-4, t3-4",
        ],
    );
    kafka_case(
        Assignor::Range,
        &[("t1", 5), ("t2", 5), ("t3", 5)],
        &[all, all, t1_t3],
        &[
            "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0, t3-1",
            "t1-2, t1-3, t2-3, t2-4, t3-2, t3-3",
            "t1-4, t3-4",
        ],
    );
    let t1_t2: &[&str] = &["t1", "t2"];
    let t3_t4: &[&str] = &["t3", "t4"];
    let four = [("t1", 6), ("t2", 6), ("t3", 2), ("t4", 2)];
    kafka_case(
        Assignor::Range,
        &four,
        &[t1_t2, t1_t2, t3_t4, t3_t4],
        &[
            "t1-0, t1-1, t1-2, t2-0, t2-1, t2-2",
            "t1-3, t1-4, t1-5, t2-3, t2-4, t2-5",
            "t3-0, t4-0",
            "t3-1, t4-1",
        ],
    );
    let all4: &[&str] = &["t1", "t2", "t3", "t4"];
    kafka_case(
        Assignor::Range,
        &four,
        &[all4, all4, all4, all4],
        &[
            "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0",
            "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1",
            "t1-4, t2-4",
            "t1-5, t2-5",
        ],
    );
    let nine: &[&str] = &["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"];
    kafka_case(
        Assignor::Range,
        &[
            ("t1", 6),
            ("t2", 6),
            ("t3", 2),
            ("t4", 2),
            ("t5", 4),
            ("t6", 4),
        ],
        &[nine, nine, nine],
        &[
            "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0, t5-0, t5-1, t6-0, t6-1",
            "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1, t5-2, t6-2",
            "t1-4, t1-5, t2-4, t2-5, t5-3, t6-3",
        ],
    );
}

#[test]
fn kafka_round_robin_two_consumers_two_topics_six_partitions() {
    // RoundRobinAssignorTest.testTwoDynamicConsumersTwoTopicsSixPartitions
    let members = [
        member("consumer1", &["topic1", "topic2"]),
        member("consumer2", &["topic1", "topic2"]),
    ];
    let result = run(
        Assignor::RoundRobin,
        &members,
        &counts(&[("topic1", 3), ("topic2", 3)]),
    );
    assert_eq!(result["consumer1"], tps("topic1-0, topic1-2, topic2-1"));
    assert_eq!(result["consumer2"], tps("topic1-1, topic2-0, topic2-2"));
}

#[test]
fn kafka_round_robin_four_consumers() {
    // RoundRobinAssignorTest.testStaticMemberAssignmentPersistent, with
    // plain ids in the same order as Kafka's static-then-dynamic order.
    let partitions = counts(&[("topic1", 3), ("topic2", 3)]);
    let mut members: Vec<Member> = (1..=4)
        .map(|i| member(&format!("consumer{i}"), &["topic1", "topic2"]))
        .collect();
    let result = run(Assignor::RoundRobin, &members, &partitions);
    assert_eq!(result["consumer1"], tps("topic1-0, topic2-1"));
    assert_eq!(result["consumer2"], tps("topic1-1, topic2-2"));
    assert_eq!(result["consumer3"], tps("topic1-2"));
    assert_eq!(result["consumer4"], tps("topic2-0"));
    members[3] = member("consumer5", &["topic1", "topic2"]);
    let result = run(Assignor::RoundRobin, &members, &partitions);
    assert_eq!(result["consumer5"], tps("topic2-0"));
}

// Cases from Kafka's AbstractStickyAssignorTest (apache/kafka
// clients/src/test/java/org/apache/kafka/clients/consumer/internals/),
// which CooperativeStickyAssignorTest runs.

#[test]
fn kafka_sticky_two_consumers_two_topics_six_partitions() {
    // testTwoConsumersTwoTopicsSixPartitions
    let members = [
        member("consumer1", &["topic1", "topic2"]),
        member("consumer2", &["topic1", "topic2"]),
    ];
    let result = run(
        Assignor::CooperativeSticky,
        &members,
        &counts(&[("topic1", 3), ("topic2", 3)]),
    );
    assert_eq!(result["consumer1"], tps("topic1-0, topic1-2, topic2-1"));
    assert_eq!(result["consumer2"], tps("topic1-1, topic2-0, topic2-2"));
}

#[test]
fn kafka_sticky_add_remove_consumer_one_topic() {
    // testAddRemoveConsumerOneTopic: the new member takes topic-2 and
    // nothing else moves; when the first leaves, the second takes all.
    let partitions = counts(&[("topic", 3)]);
    let first = run(
        Assignor::CooperativeSticky,
        &[member("consumer1", &["topic"])],
        &partitions,
    );
    assert_eq!(first["consumer1"], tps("topic-0, topic-1, topic-2"));
    let two = [
        owning(member("consumer1", &["topic"]), &first["consumer1"]),
        member("consumer2", &["topic"]),
    ];
    let second = run(Assignor::CooperativeSticky, &two, &partitions);
    assert_eq!(second["consumer1"], tps("topic-0, topic-1"));
    assert_eq!(second["consumer2"], tps("topic-2"));
    let one = [owning(
        member("consumer2", &["topic"]),
        &second["consumer2"],
    )];
    let third = run(Assignor::CooperativeSticky, &one, &partitions);
    assert_eq!(third["consumer2"], tps("topic-0, topic-1, topic-2"));
}

#[test]
fn kafka_sticky_all_consumers_under_min_quota() {
    // testAllConsumersAreUnderMinQuota: nothing owned moves.
    let both = ["topic1", "topic2"];
    let members = [
        owning(member("consumer1", &both), &tps("topic1-0")),
        owning(member("consumer2", &both), &tps("topic1-1")),
        member("consumer3", &both),
    ];
    let result = run(
        Assignor::CooperativeSticky,
        &members,
        &counts(&[("topic1", 2), ("topic2", 3)]),
    );
    assert_eq!(result["consumer1"], tps("topic1-0, topic2-1"));
    assert_eq!(result["consumer2"], tps("topic1-1, topic2-2"));
    assert_eq!(result["consumer3"], tps("topic2-0"));
}

#[test]
fn kafka_sticky_add_remove_two_consumers_two_topics() {
    // testAddRemoveTwoConsumersTwoTopics. The first assignment matches
    // Kafka's exactly; after adding two members Kafka moves topic1-2,
    // topic2-3 and topic2-2, a choice among equally sticky ones, so check
    // the counts and what stays instead.
    let both = ["topic1", "topic2"];
    let partitions = counts(&[("topic1", 3), ("topic2", 4)]);
    let first = run(
        Assignor::CooperativeSticky,
        &[member("consumer1", &both), member("consumer2", &both)],
        &partitions,
    );
    assert_eq!(
        first["consumer1"],
        tps("topic1-0, topic1-2, topic2-1, topic2-3")
    );
    assert_eq!(first["consumer2"], tps("topic1-1, topic2-0, topic2-2"));

    let four = [
        owning(member("consumer1", &both), &first["consumer1"]),
        owning(member("consumer2", &both), &first["consumer2"]),
        member("consumer3", &both),
        member("consumer4", &both),
    ];
    let second = run(Assignor::CooperativeSticky, &four, &partitions);
    let sizes: Vec<usize> = second.values().map(BTreeSet::len).collect();
    assert_eq!(sizes, [2, 2, 2, 1]);
    assert!(second["consumer1"].is_subset(&first["consumer1"]));
    assert!(second["consumer2"].is_subset(&first["consumer2"]));

    let two = [
        owning(member("consumer3", &both), &second["consumer3"]),
        owning(member("consumer4", &both), &second["consumer4"]),
    ];
    let third = run(Assignor::CooperativeSticky, &two, &partitions);
    assert!(third["consumer3"].is_superset(&second["consumer3"]));
    assert!(third["consumer4"].is_superset(&second["consumer4"]));
    assert_eq!(third["consumer3"].len() + third["consumer4"].len(), 7);
    assert!(third["consumer3"].len().abs_diff(third["consumer4"].len()) <= 1);
}

#[test]
fn kafka_sticky_topic_balance_after_reassignment() {
    // testTopicBalanceAfterReassignment: growing from one member to two
    // to four splits each topic evenly, not just the totals.
    let both = ["topic1", "topic2"];
    let partitions = counts(&[("topic1", 12), ("topic2", 12)]);
    let per_topic_counts = |a: &Assignment, want: usize| {
        for (id, held) in a {
            for t in ["topic1", "topic2"] {
                let n = held.iter().filter(|tp| tp.topic.as_str() == t).count();
                assert_eq!(n, want, "{id} holds {n} of {t}");
            }
        }
    };
    let one = run(
        Assignor::CooperativeSticky,
        &[member("consumer1", &both)],
        &partitions,
    );
    per_topic_counts(&one, 12);
    let two = [
        owning(member("consumer1", &both), &one["consumer1"]),
        member("consumer2", &both),
    ];
    let two = run(Assignor::CooperativeSticky, &two, &partitions);
    per_topic_counts(&two, 6);
    let four = [
        owning(member("consumer1", &both), &two["consumer1"]),
        owning(member("consumer2", &both), &two["consumer2"]),
        member("consumer3", &both),
        member("consumer4", &both),
    ];
    let four = run(Assignor::CooperativeSticky, &four, &partitions);
    per_topic_counts(&four, 3);
}

#[test]
fn sticky_gives_a_doubly_owned_partition_to_one_member() {
    // Two members both claim t-0 (a stale assignment); it must still end
    // up with exactly one of them.
    let members = [
        owning(member("a", &["t"]), &tps("t-0, t-1")),
        owning(member("b", &["t"]), &tps("t-0, t-2")),
    ];
    let result = run(Assignor::CooperativeSticky, &members, &counts(&[("t", 4)]));
    assert_eq!(result["a"].len(), 2);
    assert_eq!(result["b"].len(), 2);
    assert!(result["a"].contains(&tp("t", 1)));
    assert!(result["b"].contains(&tp("t", 2)));
}

#[test]
fn sticky_drops_owned_partitions_it_may_no_longer_have() {
    // "a" owns a partition of a topic it left, one past the topic's end
    // (it shrank, or was recreated) and one of a deleted topic.
    let members = [
        owning(member("a", &["t"]), &tps("t-0, u-0, t-9, gone-0")),
        member("b", &["t", "u"]),
    ];
    let result = run(
        Assignor::CooperativeSticky,
        &members,
        &counts(&[("t", 2), ("u", 1)]),
    );
    // Only t-0 is kept; u-0, which only b may take, is placed first.
    assert_eq!(result["a"], tps("t-0, t-1"));
    assert_eq!(result["b"], tps("u-0"));
}

#[test]
fn sticky_balances_members_with_different_subscriptions() {
    // "wide" owns everything; "narrow" may only take t. Balance moves t
    // partitions to narrow until the two are within one.
    let members = [
        owning(
            member("wide", &["t", "u"]),
            &tps("t-0, t-1, t-2, t-3, u-0, u-1"),
        ),
        member("narrow", &["t"]),
    ];
    let result = run(
        Assignor::CooperativeSticky,
        &members,
        &counts(&[("t", 4), ("u", 2)]),
    );
    assert_eq!(result["wide"].len(), 3);
    assert_eq!(result["narrow"].len(), 3);
    assert!(result["wide"].contains(&tp("u", 0)) && result["wide"].contains(&tp("u", 1)));
}

/// Topic partition counts, and per member a subscription (topic indexes;
/// index `counts.len()` is a topic that does not exist) and owned
/// (topic index, partition) pairs, some of them invalid.
type Raw = (Vec<u32>, Vec<(BTreeSet<usize>, BTreeSet<(usize, u32)>)>);

fn raw_group() -> impl Strategy<Value = Raw> {
    proptest::collection::vec(0u32..10, 1..=4).prop_flat_map(|counts| {
        let n = counts.len();
        let member = (
            proptest::collection::btree_set(0..=n, 0..=n + 1),
            proptest::collection::btree_set((0..=n, 0u32..12), 0..12),
        );
        (Just(counts), proptest::collection::vec(member, 1..8))
    })
}

fn topic_name(i: usize, n: usize) -> TopicName {
    if i == n {
        topic("ghost")
    } else {
        topic(&format!("t{i}"))
    }
}

/// Member ids not in index order (5 is coprime to 8), so sorting matters.
fn member_id(i: usize) -> String {
    format!("m{}", (i * 5) % 8)
}

fn build(raw: &Raw) -> (Vec<Member>, BTreeMap<TopicName, u32>) {
    let (topic_counts, raw_members) = raw;
    let n = topic_counts.len();
    let partitions = (0..n)
        .map(|i| (topic_name(i, n), topic_counts[i]))
        .collect();
    let members = raw_members
        .iter()
        .enumerate()
        .map(|(i, (subscribed, owned))| Member {
            id: member_id(i),
            topics: subscribed.iter().map(|&t| topic_name(t, n)).collect(),
            owned: owned
                .iter()
                .map(|&(t, p)| TopicPartition::new(topic_name(t, n), p))
                .collect(),
        })
        .collect();
    (members, partitions)
}

/// A group whose members all subscribe to the same topics; `owners`
/// picks, for each of 12 partition slots per topic (some past the end),
/// an owning member or none.
fn same_subscription_group() -> impl Strategy<Value = (Vec<u32>, BTreeSet<usize>, usize, Vec<usize>)>
{
    (
        proptest::collection::vec(0u32..10, 1..=4),
        proptest::collection::btree_set(0usize..5, 1..=5),
        1usize..8,
        proptest::collection::vec(0usize..16, 4 * 12),
    )
}

fn build_same(
    counts: &[u32],
    subscribed: &BTreeSet<usize>,
    members: usize,
    owners: &[usize],
) -> (Vec<Member>, BTreeMap<TopicName, u32>) {
    let n = counts.len();
    let partitions = (0..n).map(|i| (topic_name(i, n), counts[i])).collect();
    let topics: BTreeSet<TopicName> = subscribed
        .iter()
        .filter(|&&t| t <= n)
        .map(|&t| topic_name(t, n))
        .collect();
    let mut group: Vec<Member> = (0..members)
        .map(|i| Member {
            id: member_id(i),
            topics: topics.clone(),
            owned: BTreeSet::new(),
        })
        .collect();
    for t in 0..n {
        for p in 0..12u32 {
            // Owner index `members` or above means unowned.
            let owner = owners[t * 12 + p as usize] % (members + 1);
            if owner < members {
                group[owner]
                    .owned
                    .insert(TopicPartition::new(topic_name(t, n), p));
            }
        }
    }
    (group, partitions)
}

fn total_partitions(members: &[Member], partitions: &BTreeMap<TopicName, u32>) -> usize {
    partitions
        .iter()
        .filter(|(t, _)| members.iter().any(|m| m.topics.contains(*t)))
        .map(|(_, &n)| n as usize)
        .sum()
}

fn spread(result: &Assignment) -> usize {
    let sizes = result.values().map(BTreeSet::len);
    sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0)
}

proptest! {
    #[test]
    fn every_assignor_is_valid_and_deterministic(raw in raw_group()) {
        let (members, partitions) = build(&raw);
        let mut reversed = members.clone();
        reversed.reverse();
        for a in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            let result = run(a, &members, &partitions);
            prop_assert_eq!(&run(a, &reversed, &partitions), &result, "{:?} depends on input order", a);
            prop_assert_eq!(&run(a, &members, &partitions), &result);
        }
    }

    #[test]
    fn range_balances_each_topic(raw in raw_group()) {
        let (members, partitions) = build(&raw);
        let result = run(Assignor::Range, &members, &partitions);
        for t in partitions.keys() {
            let held: Vec<usize> = members
                .iter()
                .filter(|m| m.topics.contains(t))
                .map(|m| result[&m.id].iter().filter(|tp| &tp.topic == t).count())
                .collect();
            let max = held.iter().max().copied().unwrap_or(0);
            let min = held.iter().min().copied().unwrap_or(0);
            prop_assert!(max - min <= 1, "topic {}: {:?}", t, held);
        }
    }

    #[test]
    fn sticky_balances_members_with_identical_subscriptions(raw in raw_group()) {
        let (members, partitions) = build(&raw);
        let result = run(Assignor::CooperativeSticky, &members, &partitions);
        // Topics that do not exist make no difference to a subscription.
        let effective = |m: &Member| -> BTreeSet<TopicName> {
            m.topics.iter().filter(|t| partitions.contains_key(*t)).cloned().collect()
        };
        for a in &members {
            for b in &members {
                if effective(a) == effective(b) {
                    let (x, y) = (result[&a.id].len(), result[&b.id].len());
                    prop_assert!(x.abs_diff(y) <= 1, "{} has {}, {} has {}", a.id, x, b.id, y);
                }
            }
        }
    }

    #[test]
    fn identical_subscriptions_balance_totals(
        (counts, subscribed, n, owners) in same_subscription_group(),
    ) {
        let (members, partitions) = build_same(&counts, &subscribed, n, &owners);
        for a in [Assignor::RoundRobin, Assignor::CooperativeSticky] {
            let result = run(a, &members, &partitions);
            prop_assert!(spread(&result) <= 1, "{:?}: {:?}", a, result);
        }
    }

    #[test]
    fn sticky_keeps_as_many_owned_partitions_as_balance_allows(
        (counts, subscribed, n, owners) in same_subscription_group(),
    ) {
        let (members, partitions) = build_same(&counts, &subscribed, n, &owners);
        let result = run(Assignor::CooperativeSticky, &members, &partitions);
        // Owned partitions a member may keep; disjoint by construction.
        let valid: Vec<usize> = members
            .iter()
            .map(|m| m.owned.iter().filter(|tp| m.topics.contains(&tp.topic) && in_range(tp, &partitions)).count())
            .collect();
        let total = total_partitions(&members, &partitions);
        let (quota, extra) = (total / members.len(), total % members.len());
        // The best a balanced assignment can do: everyone keeps up to the
        // quota, and `extra` of those owning more keep one more.
        let best = valid.iter().map(|&o| o.min(quota)).sum::<usize>()
            + extra.min(valid.iter().filter(|&&o| o > quota).count());
        let kept: usize = members.iter().map(|m| result[&m.id].intersection(&m.owned).count()).sum();
        prop_assert_eq!(kept, best);
    }

    #[test]
    fn adding_a_member_moves_only_what_balance_needs(
        (counts, subscribed, n, _owners) in same_subscription_group(),
    ) {
        let (members, partitions) = build_same(&counts, &subscribed, n, &[0; 48]);
        let fresh: Vec<Member> = members.iter().map(|m| owning(m.clone(), &BTreeSet::new())).collect();
        let before = run(Assignor::CooperativeSticky, &fresh, &partitions);
        let mut grown: Vec<Member> = fresh.iter().map(|m| owning(m.clone(), &before[&m.id])).collect();
        grown.push(Member { id: "newcomer".to_owned(), topics: fresh[0].topics.clone(), owned: BTreeSet::new() });
        let after = run(Assignor::CooperativeSticky, &grown, &partitions);
        let quota = total_partitions(&grown, &partitions) / grown.len();
        for m in &fresh {
            let kept = after[&m.id].intersection(&before[&m.id]).count();
            prop_assert!(kept >= before[&m.id].len().min(quota), "{} kept {} of {}", m.id, kept, before[&m.id].len());
        }
        prop_assert!(spread(&after) <= 1);
    }
}
