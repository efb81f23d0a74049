//! Reliability suite 5, the broker's request frames: the decoder every
//! request passes through (`moldau::fuzzing::request_frame`, the path of
//! `src/broker/conn.rs`) never panics on arbitrary bytes, nor on valid frames
//! of the common APIs with bytes changed, cut or appended. The valid frames
//! are also the fuzz target's seed corpus (`fuzz/corpus/request_frame`);
//! `MOLDAU_WRITE_FUZZ_SEEDS=1` rewrites it from here.
#![cfg(all(feature = "fuzzing", feature = "broker"))]

mod common;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, FetchRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, MetadataRequest, OffsetCommitRequest, RequestHeader,
};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use moldau::{fuzzing, Offset, Record, Timestamp};
use proptest::collection::vec;
use proptest::prelude::*;

/// The bytes after the length prefix of a request frame.
fn frame<R: Request>(req: &R, version: i16) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let hv = ApiKey::try_from(R::KEY)
        .unwrap()
        .request_header_version(version);
    let mut buf = BytesMut::new();
    header.encode(&mut buf, hv).unwrap();
    req.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Valid frames of the APIs clients send most, at old and new versions.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let records = moldau::record::encode_batch_to_vec(
        &[
            Record::new("v1").with_key("k1"),
            Record::new("v2").with_header("h", "x"),
        ],
        Timestamp(1_700_000_000_000),
        Offset(0),
    )
    .unwrap();
    let produce = common::kafka::produce_request("t", 0, records.into(), 1);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(common::kafka::topic("t"))),
    ]));
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(common::kafka::topic("t"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(3)
                .with_partition_max_bytes(1 << 20)])]);
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(bytes::Bytes::from_static(&[
                0, 1, 0, 0, 0, 1, 0, 1, b't',
            ]))]);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(s("m"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(common::kafka::topic("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(7)])]);
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(1000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(common::kafka::topic("t"))
            .with_num_partitions(3)
            .with_replication_factor(1)]);
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(1)
        .with_member_id(s("m"));
    let find = FindCoordinatorRequest::default().with_key(s("g"));
    vec![
        ("api-versions-v0", frame(&ApiVersionsRequest::default(), 0)),
        (
            "api-versions-v3",
            frame(
                &ApiVersionsRequest::default()
                    .with_client_software_name(s("seed"))
                    .with_client_software_version(s("1")),
                3,
            ),
        ),
        ("metadata-v1", frame(&metadata, 1)),
        ("metadata-v12", frame(&metadata, 12)),
        ("produce-v3", frame(&produce, 3)),
        ("produce-v9", frame(&produce, 9)),
        ("fetch-v4", frame(&fetch, 4)),
        ("fetch-v12", frame(&fetch, 12)),
        ("join-group-v5", frame(&join, 5)),
        ("offset-commit-v8", frame(&commit, 8)),
        ("create-topics-v5", frame(&create, 5)),
        ("heartbeat-v4", frame(&heartbeat, 4)),
        ("find-coordinator-v1", frame(&find, 1)),
        ("find-coordinator-v3", frame(&find, 3)),
    ]
}

#[test]
fn seed_frames_decode_and_match_the_committed_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request_frame");
    let write = std::env::var_os("MOLDAU_WRITE_FUZZ_SEEDS").is_some();
    for (name, bytes) in seeds() {
        let api = fuzzing::request_frame(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!api.is_empty());
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap_or_default(),
            bytes,
            "{name}: the committed seed differs (MOLDAU_WRITE_FUZZ_SEEDS=1 rewrites it)"
        );
    }
}

#[test]
fn short_and_unknown_frames_are_refused_with_a_reason() {
    for bad in [&[][..], &[0, 18, 0], &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]] {
        let why = fuzzing::request_frame(bad).unwrap_err();
        assert!(!why.is_empty());
    }
    // ApiVersions above the newest version decodes (answered with v0, KIP-511).
    assert!(fuzzing::request_frame(&[0, 18, 0, 99, 0, 0, 0, 1]).is_ok());
}

/// Regression (found by the `request_frame` fuzz target in its first
/// minute): a Metadata v1 frame whose topic array claims 943 million
/// entries (count 0x38383838). The fuzz workspace had been built against upstream
/// kafka-protocol, not the patched copy the broker uses, and upstream sizes
/// the vector from the count: a 122 GB allocation that aborts the process.
/// The patched decoder refuses the count first.
#[test]
fn a_huge_array_count_is_refused_without_the_allocation() {
    let frame = [
        0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x0c, 0x00, 0x04, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x2a, 0x00, 0x04, 0x73, 0x65, 0x65, 0x64, 0x00, 0x02, 0x67, 0x00, 0x38, 0x38,
        0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x04, 0x73, 0x65, 0x65, 0x64, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x01, 0x74,
    ];
    let why = fuzzing::request_frame(&frame).unwrap_err();
    assert!(why.contains("Metadata"), "{why}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_frames_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = fuzzing::request_frame(&bytes);
    }

    #[test]
    fn damaged_valid_frames_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        tail in vec(any::<u8>(), 0..16),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[pick.index(seeds.len())].1.clone();
        for (at, b) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let mut buf = BytesMut::from(&bytes[..]);
        buf.put_slice(&tail);
        let _ = fuzzing::request_frame(&buf);
    }
}
