//! Classic consumer groups with the broker as coordinator: the
//! MEMBER_ID_REQUIRED handshake, a rebalance when a second member joins
//! (REBALANCE_IN_PROGRESS on heartbeat), the leader's assignment relayed by
//! SyncGroup, ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID, the batch LeaveGroup,
//! session expiry, commits into the log's offset store, and a group that is
//! in-process refusing classic members.
#![cfg(feature = "broker")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::broker::{test_config, wait_until, Client, TestBroker};
use common::kafka::topic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use moldau::{ConsumerConfig, Offset, TopicName, TopicPartition};

const GROUP: &str = "workers";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn join_req(member: &str, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from(format!("meta-{member}")))])
}

/// Joins with the v5 handshake; returns the response (blocks until the
/// rebalance completes).
fn join(c: &mut Client, member: Option<&str>, session_ms: i32) -> JoinGroupResponse {
    let id = match member {
        Some(id) => id.to_owned(),
        None => {
            let first = c.call(&join_req("", session_ms), 5);
            assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
            assert!(!first.member_id.is_empty());
            first.member_id.as_str().to_owned()
        }
    };
    c.call(&join_req(&id, session_ms), 5)
}

fn sync(c: &mut Client, member: &str, generation: i32, assign: &[(&str, &str)]) -> (i16, Bytes) {
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_assignments(
            assign
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from(a.to_string()))
                })
                .collect(),
        );
    let resp = c.call(&req, 5);
    (resp.error_code, resp.assignment)
}

fn heartbeat(c: &mut Client, member: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    c.call(&req, 4).error_code
}

fn commit(c: &mut Client, member: &str, generation: i32, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic("jobs"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("m")))])]);
    c.call(&req, 8).topics[0].partitions[0].error_code
}

fn group_state(c: &mut Client) -> String {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(GROUP))]);
    c.call(&req, 5).groups[0].group_state.as_str().to_owned()
}

#[test]
fn two_members_rebalance_share_commit_and_leave() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("jobs", 2, None).unwrap();
    let mut a = broker.client();
    let coordinator = a.call(&FindCoordinatorRequest::default().with_key(s(GROUP)), 3);
    assert_eq!(
        (coordinator.error_code, coordinator.port),
        (0, broker.addr.port() as i32)
    );

    // A alone: generation 1, A leads.
    let ja = join(&mut a, None, 10_000);
    assert_eq!(ja.error_code, 0);
    let a_id = ja.member_id.as_str().to_owned();
    assert_eq!((ja.generation_id, ja.leader.as_str()), (1, a_id.as_str()));
    assert_eq!(ja.members.len(), 1);
    assert_eq!(
        sync(&mut a, &a_id, 1, &[(&a_id, "all")]),
        (0, Bytes::from("all"))
    );
    assert_eq!(heartbeat(&mut a, &a_id, 1), 0);
    assert_eq!(group_state(&mut a), "Stable");

    // B joins: its join waits until A rejoins; A learns from its heartbeat.
    let addr = broker.addr;
    let b_thread = std::thread::spawn(move || {
        let mut b = Client::connect(addr);
        let jb = join(&mut b, None, 10_000);
        (b, jb)
    });
    assert!(wait_until(Duration::from_secs(10), || heartbeat(
        &mut a, &a_id, 1
    ) == 27));
    let ja = join(&mut a, Some(&a_id), 10_000);
    let (mut b, jb) = b_thread.join().unwrap();
    let b_id = jb.member_id.as_str().to_owned();
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.leader.as_str(), a_id, "the leader stays");
    // Only the leader sees the members and their metadata.
    let mut seen: Vec<(String, Bytes)> = ja
        .members
        .iter()
        .map(|m| (m.member_id.as_str().to_owned(), m.metadata.clone()))
        .collect();
    seen.sort();
    let mut want = vec![
        (a_id.clone(), Bytes::from(format!("meta-{a_id}"))),
        (b_id.clone(), Bytes::from(format!("meta-{b_id}"))),
    ];
    want.sort();
    assert_eq!(seen, want);
    assert!(jb.members.is_empty());

    // B's sync waits for the leader's assignment.
    let b_id2 = b_id.clone();
    let b_sync = std::thread::spawn(move || {
        let got = sync(&mut b, &b_id2, 2, &[]);
        (b, got)
    });
    assert_eq!(
        sync(&mut a, &a_id, 2, &[(&a_id, "p0"), (&b_id, "p1")]),
        (0, Bytes::from("p0"))
    );
    let (mut b, got) = b_sync.join().unwrap();
    assert_eq!(got, (0, Bytes::from("p1")));
    assert_eq!(heartbeat(&mut b, &b_id, 2), 0);
    assert_eq!(heartbeat(&mut b, &b_id, 1), 22, "ILLEGAL_GENERATION");
    assert_eq!(sync(&mut b, &b_id, 1, &[]).0, 22, "ILLEGAL_GENERATION");
    assert_eq!(sync(&mut b, "stranger", 2, &[]).0, 25, "UNKNOWN_MEMBER_ID");
    // A stable group answers a repeated sync with the member's assignment.
    assert_eq!(sync(&mut b, &b_id, 2, &[]), (0, Bytes::from("p1")));
    assert_eq!(heartbeat(&mut b, "stranger", 2), 25, "UNKNOWN_MEMBER_ID");

    // Commits: current generation only; they land in the log's offset store.
    assert_eq!(commit(&mut b, &b_id, 1, 5), 22);
    assert_eq!(commit(&mut b, &b_id, 2, 7), 0);
    let tp = TopicPartition::new(TopicName::new("jobs").unwrap(), 1);
    assert_eq!(
        broker.log.committed(GROUP, &tp).unwrap().unwrap().offset,
        Offset(7)
    );
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic("jobs"))
            .with_partition_indexes(vec![0, 1])]));
    let resp = a.call(&fetch, 7);
    let parts = &resp.topics[0].partitions;
    assert_eq!(
        (parts[0].committed_offset, parts[1].committed_offset),
        (-1, 7)
    );
    assert_eq!(parts[1].metadata.as_ref().unwrap().as_str(), "m");
    // Null topics: every committed partition.
    let resp = a.call(&fetch.clone().with_topics(None), 7);
    assert_eq!(resp.topics[0].partitions.len(), 1);

    // Listed and described.
    let listed = a.call(&ListGroupsRequest::default(), 4);
    assert!(listed.groups.iter().any(|g| g.group_id.0.as_str() == GROUP));
    let described = a.call(
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(GROUP))]),
        5,
    );
    assert_eq!(described.groups[0].members.len(), 2);
    assert_eq!(described.groups[0].protocol_data.as_str(), "range");

    // Batch leave (v3+): B leaves, a stranger is unknown; A must rejoin.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s(&b_id)),
            MemberIdentity::default().with_member_id(s("stranger")),
        ]);
    let resp = b.call(&leave, 5);
    let codes: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, [0, 25]);
    assert_eq!(heartbeat(&mut a, &a_id, 2), 27);
    assert_eq!(sync(&mut a, &a_id, 2, &[]).0, 27, "REBALANCE_IN_PROGRESS");
    let ja = join(&mut a, Some(&a_id), 10_000);
    assert_eq!(
        (ja.error_code, ja.generation_id, ja.members.len()),
        (0, 3, 1)
    );
}

#[test]
fn a_silent_member_is_removed_after_its_session_timeout() {
    let broker = TestBroker::start(test_config());
    let mut a = broker.client();
    let ja = join(&mut a, None, 300);
    let id = ja.member_id.as_str().to_owned();
    assert_eq!(sync(&mut a, &id, 1, &[(&id, "x")]).0, 0);
    assert_eq!(group_state(&mut a), "Stable");
    // No more heartbeats: the timer removes the member and empties the group.
    assert!(wait_until(Duration::from_secs(10), || group_state(&mut a) == "Empty"));
    assert_eq!(heartbeat(&mut a, &id, 1), 25);
    // Too short a session is refused.
    let resp = a.call(&join_req("", 10), 5);
    assert_eq!(resp.error_code, 26, "INVALID_SESSION_TIMEOUT");
}

#[test]
fn an_in_process_group_refuses_classic_members() {
    let broker = TestBroker::start(test_config());
    broker.log.create_topic("jobs", 2, None).unwrap();
    let mut consumer = broker.log.consumer(ConsumerConfig::default()).unwrap();
    consumer.subscribe(GROUP, &["jobs"]).unwrap();
    let mut c = broker.client();
    let resp = c.call(&join_req("", 10_000), 5);
    assert_eq!(resp.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    // A commit from outside the group is refused too.
    assert_eq!(commit(&mut c, "", -1, 3), 23);
    drop(consumer);

    // The other way round: a classic group refuses in-process consumers
    // until it has no members left.
    let mut a = broker.client();
    let ja = join(&mut a, None, 300);
    assert_eq!(ja.error_code, 0, "the in-process member left when dropped");
    let mut consumer = broker.log.consumer(ConsumerConfig::default()).unwrap();
    let err = consumer.subscribe(GROUP, &["jobs"]).unwrap_err();
    assert!(err.to_string().contains("classic"), "{err}");
    // The member's session expires; the timer hands the group back.
    assert!(wait_until(Duration::from_secs(10), || consumer
        .subscribe(GROUP, &["jobs"])
        .is_ok()));
}
