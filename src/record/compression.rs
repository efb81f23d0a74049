//! Compression of a batch's records block: gzip, snappy (xerial-framed or
//! raw), lz4 (frame format), zstd, each behind its cargo feature, with a bound
//! on decompressed size so a decompression bomb is an error, not an OOM.

use super::Compression;
use crate::error::FormatError;

/// Hard cap on one batch's decompressed records, whatever its compressed size.
pub(crate) const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;
/// Ratio allowed between decompressed and compressed size ...
const MAX_RATIO: usize = 64;
/// ... plus this slack, so small batches of very repetitive data still decode.
const RATIO_SLACK_BYTES: usize = 8 << 20;

/// The most bytes `compressed_len` compressed bytes may decompress to.
pub(crate) fn decompressed_limit(compressed_len: usize) -> usize {
    compressed_len
        .saturating_mul(MAX_RATIO)
        .saturating_add(RATIO_SLACK_BYTES)
        .min(MAX_DECOMPRESSED_BYTES)
}

/// A codec failure, keeping the library's message.
#[cfg(any(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
fn codec_error(codec: Compression, reason: impl std::fmt::Display) -> FormatError {
    FormatError::Codec {
        codec: codec.id(),
        reason: reason.to_string(),
    }
}

#[cfg(any(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
fn too_large(codec: Compression, limit: usize) -> FormatError {
    codec_error(
        codec,
        format!("decompressed records exceed the limit of {limit} bytes"),
    )
}

/// Reads `r` to its end, failing once more than `limit` bytes come out.
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
fn read_bounded(
    r: impl std::io::Read,
    limit: usize,
    codec: Compression,
) -> Result<Vec<u8>, FormatError> {
    use std::io::Read;
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    r.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| codec_error(codec, e))?;
    if out.len() > limit {
        return Err(too_large(codec, limit));
    }
    Ok(out)
}

/// Decompresses a batch's records block.
pub(crate) fn decompress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, FormatError> {
    let limit = decompressed_limit(input.len());
    match codec {
        Compression::None => Ok(input.to_vec()),
        #[cfg(feature = "gzip")]
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit, codec),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::decompress(input, limit),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), limit, codec),
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| codec_error(codec, e))?;
            read_bounded(decoder, limit, codec)
        }
        #[allow(unreachable_patterns)]
        other => {
            let _ = limit;
            Err(FormatError::UnsupportedCompression(other.id()))
        }
    }
}

/// Compresses a records block as Kafka's Java client would.
pub(crate) fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, FormatError> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        #[cfg(feature = "gzip")]
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(input).map_err(|e| codec_error(codec, e))?;
            enc.finish().map_err(|e| codec_error(codec, e))
        }
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::compress_xerial(input),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => {
            use std::io::Write;
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(input).map_err(|e| codec_error(codec, e))?;
            enc.finish().map_err(|e| codec_error(codec, e))
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::stream::encode_all(input, 3).map_err(|e| codec_error(codec, e)),
        #[allow(unreachable_patterns)]
        other => Err(FormatError::UnsupportedCompression(other.id())),
    }
}

/// Snappy as Kafka clients write it: the Java client wraps raw snappy blocks
/// in xerial's framing; librdkafka reads both and some producers send a bare
/// raw block.
///
/// Format (xerial): magic `82 53 4e 41 50 50 59 00` ("\x82SNAPPY\0"),
/// version int32 BE, compatible version int32 BE, then blocks, each an int32
/// BE compressed length followed by one raw snappy block.
#[cfg(feature = "snappy")]
mod snappy {
    use super::{codec_error, too_large};
    use crate::error::FormatError;
    use crate::record::Compression;

    const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\0";
    const XERIAL_HEADER_BYTES: usize = 16;
    const XERIAL_VERSION: i32 = 1;
    const XERIAL_COMPATIBLE_VERSION: i32 = 1;
    /// Uncompressed bytes per block, as the Java client's SnappyOutputStream.
    const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

    /// Appends one raw snappy block's content to `out`, within `limit` in total.
    fn raw_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), FormatError> {
        let err = |e: snap::Error| codec_error(Compression::Snappy, e);
        // The block states its decompressed length up front: check it before allocating.
        let len = snap::raw::decompress_len(block).map_err(err)?;
        let start = out.len();
        if len > limit.saturating_sub(start) {
            return Err(too_large(Compression::Snappy, limit));
        }
        out.resize(start + len, 0);
        let n = snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(err)?;
        out.truncate(start + n);
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        if !input.starts_with(&XERIAL_MAGIC) {
            raw_block(input, &mut out, limit)?;
            return Ok(out);
        }
        let Some(mut rest) = input.get(XERIAL_HEADER_BYTES..) else {
            return Err(codec_error(
                Compression::Snappy,
                "xerial header shorter than 16 bytes",
            ));
        };
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_be_bytes(*len) as usize;
            let Some(block) = tail.get(..len) else {
                return Err(codec_error(
                    Compression::Snappy,
                    format!("xerial block of {len} bytes runs past the end"),
                ));
            };
            raw_block(block, &mut out, limit)?;
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(codec_error(
                Compression::Snappy,
                "trailing bytes after the last xerial block",
            ));
        }
        Ok(out)
    }

    pub(super) fn compress_xerial(input: &[u8]) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + input.len() / 2);
        out.extend_from_slice(&XERIAL_MAGIC);
        out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
        out.extend_from_slice(&XERIAL_COMPATIBLE_VERSION.to_be_bytes());
        let mut enc = snap::raw::Encoder::new();
        for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
            let block = enc
                .compress_vec(chunk)
                .map_err(|e| codec_error(Compression::Snappy, e))?;
            // A block of at most 32 KiB compresses to well under 4 GiB.
            out.extend_from_slice(&(block.len() as u32).to_be_bytes());
            out.extend_from_slice(&block);
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn snappy_reads_xerial_and_raw() {
            let data: Vec<u8> = (0..100_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect();
            let framed = compress_xerial(&data).unwrap();
            assert!(framed.starts_with(&XERIAL_MAGIC));
            assert_eq!(decompress(&framed, usize::MAX).unwrap(), data);
            let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
            assert_eq!(decompress(&raw, usize::MAX).unwrap(), data);
            // The declared length is checked before anything is allocated.
            assert!(matches!(
                decompress(&raw, 1000),
                Err(FormatError::Codec { codec: 2, .. })
            ));
            // A cut-off frame is an error.
            assert!(decompress(&framed[..framed.len() - 3], usize::MAX).is_err());
            assert!(decompress(&framed[..10], usize::MAX).is_err());
            // A raw block that claims 200 MiB (varint 0x0c800000) in a few bytes.
            let liar = [0x80, 0x80, 0x80, 0x64, 0x00];
            assert!(matches!(
                decompress(&liar, super::super::decompressed_limit(liar.len())),
                Err(FormatError::Codec { codec: 2, .. })
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompressed_limit_is_bounded() {
        assert_eq!(decompressed_limit(0), RATIO_SLACK_BYTES);
        assert_eq!(decompressed_limit(1000), 64_000 + RATIO_SLACK_BYTES);
        assert_eq!(decompressed_limit(usize::MAX), MAX_DECOMPRESSED_BYTES);
    }

    #[test]
    fn codecs_round_trip_and_refuse_bombs() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 97).to_be_bytes())
            .collect();
        // 16 MiB of zeros compresses far beyond the allowed ratio, except with
        // snappy, whose ratio tops out near 21x (its test checks the declared length).
        let bomb = vec![0u8; 16 << 20];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            match compress(codec, &data) {
                Ok(packed) => {
                    assert_eq!(decompress(codec, &packed).unwrap(), data, "{codec:?}");
                    let packed = compress(codec, &bomb).unwrap();
                    assert!(
                        codec == Compression::Snappy
                            || matches!(decompress(codec, &packed), Err(FormatError::Codec { .. })),
                        "{codec:?} bomb of {} compressed bytes",
                        packed.len()
                    );
                    // Garbage is an error, not a panic.
                    assert!(decompress(codec, &data[..100]).is_err(), "{codec:?}");
                }
                Err(e) => {
                    assert_eq!(e, FormatError::UnsupportedCompression(codec.id()));
                    assert_eq!(
                        decompress(codec, &data),
                        Err(FormatError::UnsupportedCompression(codec.id()))
                    );
                }
            }
        }
    }
}
