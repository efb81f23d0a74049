//! Entry points for fuzz targets and decoder property tests (feature
//! `fuzzing`): thin wrappers over decoders of files that are otherwise
//! internal. Each takes arbitrary bytes and must return, never panic.
//!
//! Record batches, segment files and indexes need no wrapper: the public
//! [`record`](crate::record) API and [`PartitionLog`](crate::PartitionLog)
//! over a directory of arbitrary files reach them.

use crate::error::FormatError;

/// Decodes a `partition.checkpoint` file. With `framed`, `bytes` is only the
/// payload: it gets a valid header and CRC first, so that the payload decoder
/// is reached (a fuzzer cannot forge CRCs).
pub fn partition_checkpoint(bytes: &[u8], framed: bool) -> Result<(), FormatError> {
    crate::partition::fuzz_decode_checkpoint(bytes, framed)
}

/// Decodes a `topics.checkpoint` file (the topic catalog); `framed` as in
/// [`partition_checkpoint`].
pub fn topic_catalog(bytes: &[u8], framed: bool) -> Result<(), FormatError> {
    crate::log::fuzz_decode_catalog(bytes, framed)
}

/// Decodes the key and the value of a `__consumer_offsets` record (Kafka's
/// offset-commit format).
pub fn offset_commit(key: &[u8], value: &[u8]) -> Result<(), FormatError> {
    crate::group::offset_codec::decode_key(key)?;
    crate::group::offset_codec::decode_value(value).map(|_| ())
}

/// Decodes a broker request frame (the bytes after its length prefix): the
/// request header, the API key and version checks, and the body, exactly as
/// the broker does before it runs a request. Returns the API's name, or why
/// the broker would close the connection.
#[cfg(feature = "broker")]
pub fn request_frame(frame: &[u8]) -> Result<String, String> {
    crate::broker::fuzz_decode_request(frame)
}
