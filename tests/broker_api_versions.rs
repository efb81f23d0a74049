//! ApiVersions advertises design §7's ranges; a version above 4 gets a v0
//! body with UNSUPPORTED_VERSION and the ranges (KIP-511).
#![cfg(feature = "broker")]

mod common;

use bytes::{Buf, BufMut, BytesMut};
use common::broker::{test_config, TestBroker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::io::Write;

const EXPECTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 10),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 4),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
];

fn check_ranges(resp: &ApiVersionsResponse) {
    for (key, lo, hi) in EXPECTED {
        let v = resp
            .api_keys
            .iter()
            .find(|v| v.api_key == *key as i16)
            .unwrap_or_else(|| panic!("{key:?} missing"));
        assert_eq!((v.min_version, v.max_version), (*lo, *hi), "{key:?}");
    }
    for key in [ApiKey::DescribeGroups, ApiKey::ListGroups] {
        assert!(
            resp.api_keys.iter().any(|v| v.api_key == key as i16),
            "{key:?}"
        );
    }
}

#[test]
fn every_supported_version_answers_with_the_ranges() {
    let broker = TestBroker::start(test_config());
    let mut c = broker.client();
    for version in 0..=4 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("test"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let resp = c.call(&req, version);
        assert_eq!(resp.error_code, 0, "v{version}");
        check_ranges(&resp);
    }
}

#[test]
fn a_newer_version_gets_a_v0_body_with_unsupported_version() {
    let broker = TestBroker::start(test_config());
    let mut c = broker.client();
    // ApiVersions v9: a body this broker cannot decode, answered anyway.
    let mut frame = BytesMut::new();
    let body = [
        &18i16.to_be_bytes()[..],
        &9i16.to_be_bytes(),
        &77i32.to_be_bytes(),
        &[0xff, 0xff, 0, 0, 0, 0],
    ]
    .concat();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    c.stream.write_all(&frame).unwrap();
    let mut resp = c.read_frame().unwrap();
    assert_eq!(resp.get_i32(), 77, "correlation id, v0 header");
    let resp = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    check_ranges(&resp);
    // The connection stays usable.
    let resp = c.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(resp.error_code, 0);
}
