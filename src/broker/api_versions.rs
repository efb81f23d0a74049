//! ApiVersions: the APIs and version ranges this broker speaks (design §7).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::conn::encode_frame;
use super::errors;

/// Highest ApiVersions version understood; a higher one gets a v0 answer.
pub(crate) const MAX_VERSION: i16 = 4;

/// The advertised range of each supported API. Produce is advertised from
/// v0 (librdkafka picks a compression-bug workaround below v3) but only v3
/// and later are decoded: every client this broker is tested with sends v7+.
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
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
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, MAX_VERSION),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 4),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
];

/// The versions of `api` this broker decodes, if it supports it at all.
pub(crate) fn supported(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|&(k, lo, hi)| {
            // The crate decodes Produce from v3 only (see SUPPORTED).
            match k {
                ApiKey::Produce => (lo.max(3), hi),
                _ => (lo, hi),
            }
        })
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(k, lo, hi)| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect()
}

/// The answer to a supported ApiVersions request.
pub(crate) fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The v0 answer to an ApiVersions request of a version above
/// [`MAX_VERSION`]: UNSUPPORTED_VERSION with the supported ranges.
pub(crate) fn unsupported(correlation_id: i32) -> Bytes {
    let resp = ApiVersionsResponse::default()
        .with_error_code(errors::of(ResponseError::UnsupportedVersion))
        .with_api_keys(api_keys());
    // A v0 ApiVersions response always encodes: fixed fields and a short list.
    encode_frame(correlation_id, &resp, 0).unwrap_or_default()
}
