//! Small metadata files with a version and a checksum, replaced atomically.
//!
//! Format:
//! ```text
//! [4 bytes magic, names the file kind][u32 BE version][u32 BE payload length]
//! [payload: postcard][u32 BE CRC-32C of everything before]
//! ```

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, FormatError, Result};
use crate::fsutil;

const HEADER_BYTES: usize = 12;
const CRC_BYTES: usize = 4;

/// Encodes `value` as a checkpoint of kind `magic`, version `version`.
pub(crate) fn encode<T: Serialize>(magic: [u8; 4], version: u32, value: &T) -> Vec<u8> {
    // postcard only fails on writer errors or unsupported serde features; an
    // alloc Vec writer and plain structs have neither.
    let payload = postcard::to_allocvec(value).unwrap_or_default();
    frame(magic, version, &payload)
}

/// Frames an encoded `payload` as a checkpoint file: header, payload, CRC.
pub(crate) fn frame(magic: [u8; 4], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len() + CRC_BYTES);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a checkpoint of kind `magic`; `version` is the only one understood.
pub(crate) fn decode<T: DeserializeOwned>(
    magic: [u8; 4],
    version: u32,
    bytes: &[u8],
) -> Result<T, FormatError> {
    if bytes.len() < HEADER_BYTES + CRC_BYTES {
        return Err(FormatError::Truncated {
            needed: (HEADER_BYTES + CRC_BYTES) as u64,
            available: bytes.len() as u64,
        });
    }
    if bytes[..4] != magic {
        return Err(FormatError::Inconsistent(format!(
            "magic {:?} is not {:?}",
            &bytes[..4],
            magic
        )));
    }
    let be32 =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let found_version = be32(4);
    if found_version != version {
        return Err(FormatError::UnknownVersion(found_version));
    }
    let len = be32(8) as usize;
    let end = HEADER_BYTES + len;
    if bytes.len() != end + CRC_BYTES {
        return Err(FormatError::BadLength(format!(
            "payload of {len} bytes does not match a file of {} bytes",
            bytes.len()
        )));
    }
    let expected = be32(end);
    let actual = crc32c::crc32c(&bytes[..end]);
    if expected != actual {
        return Err(FormatError::ChecksumMismatch { expected, actual });
    }
    postcard::from_bytes(&bytes[HEADER_BYTES..end])
        .map_err(|e| FormatError::Inconsistent(format!("payload does not decode: {e}")))
}

/// Decodes checkpoint `bytes` of kind `magic` as a `T`, for fuzz targets
/// (feature `fuzzing`); with `framed`, `bytes` is only the payload and gets
/// a valid header and CRC first, so that the payload decoder is reached.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_decode<T: DeserializeOwned>(
    magic: [u8; 4],
    version: u32,
    bytes: &[u8],
    framed: bool,
) -> Result<T, FormatError> {
    match framed {
        true => decode(magic, version, &frame(magic, version, bytes)),
        false => decode(magic, version, bytes),
    }
}

/// Writes a checkpoint file crash-safely.
pub(crate) fn write<T: Serialize>(
    path: &Path,
    magic: [u8; 4],
    version: u32,
    value: &T,
) -> Result<()> {
    fsutil::write_atomic(path, &encode(magic, version, value))
}

/// Reads a checkpoint file: `Ok(None)` if it does not exist.
pub(crate) fn read<T: DeserializeOwned>(
    path: &Path,
    magic: [u8; 4],
    version: u32,
) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    decode(magic, version, &bytes)
        .map(Some)
        .map_err(|r| Error::corrupt(path, 0, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct T {
        a: u64,
        b: bool,
    }

    #[test]
    fn round_trip_and_every_corruption_is_detected() {
        let v = T { a: 42, b: true };
        let bytes = encode(*b"TEST", 1, &v);
        assert_eq!(decode::<T>(*b"TEST", 1, &bytes).unwrap(), v);
        assert!(matches!(
            decode::<T>(*b"TEST", 2, &bytes),
            Err(FormatError::UnknownVersion(1))
        ));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(
                decode::<T>(*b"TEST", 1, &b).is_err(),
                "flip at {i} undetected"
            );
        }
        for n in 0..bytes.len() {
            assert!(decode::<T>(*b"TEST", 1, &bytes[..n]).is_err());
        }
    }
}
