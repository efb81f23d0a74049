//! Encoding: plan how many records fit in a batch, write them straight into
//! the caller's buffer (a memory map on the append path), compress.

use super::compression;
use super::header::{compute_crc, CRC_OFFSET, MAGIC_V2, RECORDS_OFFSET};
use super::varint::{put_varint, put_varlong, varint_size, varlong_size};
use super::{BatchHeader, Compression, Record, BATCH_HEADER_BYTES, LOG_OVERHEAD};
use crate::error::FormatError;
use crate::types::{Offset, Timestamp};

/// Largest batch the format can describe: batchLength is an int32.
const MAX_BATCH_BYTES: usize = LOG_OVERHEAD + i32::MAX as usize;

/// Summary of an encoded batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedBatch {
    /// Bytes written.
    pub size: usize,
    /// Offset delta of the last record (record count - 1).
    pub last_offset_delta: u32,
    /// Largest timestamp.
    pub max_timestamp: Timestamp,
}

/// The front of a record slice that fits in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    /// How many records (at least 1).
    pub count: usize,
    /// Encoded batch size in bytes.
    pub size: usize,
}

#[inline(always)]
fn timestamp_of(r: &Record, default_timestamp: Timestamp) -> i64 {
    r.timestamp.unwrap_or(default_timestamp).0
}

/// A byte length as Kafka's int32 length field. Lengths past `i32::MAX`
/// cannot be encoded; they only reach here in records too large for any
/// batch, which `plan_batch` refuses, so the clamp never changes a written byte.
#[inline(always)]
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Encoded size of a nullable byte string: varint length (or -1) + bytes.
#[inline(always)]
fn nullable_size(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_size(len_i32(b.len())) + b.len(),
    }
}

/// Bytes of a record after its length varint.
#[inline(always)]
fn body_size(r: &Record, timestamp_delta: i64, offset_delta: i32) -> usize {
    let mut size = 1 // attributes
        + varlong_size(timestamp_delta)
        + varint_size(offset_delta)
        + nullable_size(r.key.as_deref())
        + nullable_size(r.value.as_deref())
        + varint_size(len_i32(r.headers.len()));
    for h in &r.headers {
        size += varint_size(len_i32(h.key.len())) + h.key.len() + nullable_size(h.value.as_deref());
    }
    size
}

/// Bytes of a whole record, length varint included.
#[inline(always)]
fn record_size(r: &Record, timestamp_delta: i64, offset_delta: i32) -> usize {
    let body = body_size(r, timestamp_delta, offset_delta);
    varint_size(len_i32(body)) + body
}

/// How many records from the front of `records` fit in one batch of at most
/// `max_bytes`. `Err(size)` if the first record alone makes a batch of `size > max_bytes`.
///
/// Sizes are computed from varint widths, without encoding or allocating. A
/// batch never exceeds the format's own limit (batchLength is an int32), so
/// `Err` also comes back for a first record beyond 2 GiB whatever `max_bytes`
/// is. An empty `records` plans `count: 0` and a bare header.
pub fn plan_batch(
    records: &[Record],
    default_timestamp: Timestamp,
    max_bytes: usize,
) -> Result<BatchPlan, usize> {
    let limit = max_bytes.min(MAX_BATCH_BYTES);
    let Some(first) = records.first() else {
        return Ok(BatchPlan {
            count: 0,
            size: RECORDS_OFFSET,
        });
    };
    let base_ts = timestamp_of(first, default_timestamp);
    let mut size = RECORDS_OFFSET;
    for (i, r) in records.iter().enumerate() {
        // offsetDelta is an int32; a batch this long is far beyond any byte limit anyway.
        let Ok(offset_delta) = i32::try_from(i) else {
            return Ok(BatchPlan { count: i, size });
        };
        let ts_delta = timestamp_of(r, default_timestamp).wrapping_sub(base_ts);
        let next = size.saturating_add(record_size(r, ts_delta, offset_delta));
        if next > limit {
            return if i == 0 {
                Err(next)
            } else {
                Ok(BatchPlan { count: i, size })
            };
        }
        size = next;
    }
    Ok(BatchPlan {
        count: records.len(),
        size,
    })
}

/// Writes one record into `rec`, which is exactly its encoded size.
///
/// Index arithmetic stays within `rec`: the caller sized it with
/// `record_size` for the same record and deltas, so every index check passes.
/// Each field is written at the index the previous one returned.
#[inline(always)]
fn write_record(
    rec: &mut [u8],
    r: &Record,
    body_len: usize,
    timestamp_delta: i64,
    offset_delta: i32,
) {
    let mut i = put_varint(rec, 0, len_i32(body_len));
    rec[i] = 0; // record attributes: unused by Kafka
    i = put_varlong(rec, i + 1, timestamp_delta);
    i = put_varint(rec, i, offset_delta);
    i = put_nullable(rec, i, r.key.as_deref());
    i = put_nullable(rec, i, r.value.as_deref());
    i = put_varint(rec, i, len_i32(r.headers.len()));
    for h in &r.headers {
        i = put_nullable(rec, i, Some(&h.key[..]));
        i = put_nullable(rec, i, h.value.as_deref());
    }
    debug_assert_eq!(i, rec.len(), "record_size and write_record disagree");
}

#[inline(always)]
fn put_nullable(rec: &mut [u8], i: usize, b: Option<&[u8]>) -> usize {
    match b {
        None => put_varint(rec, i, -1),
        Some(b) => {
            let i = put_varint(rec, i, len_i32(b.len()));
            rec[i..i + b.len()].copy_from_slice(b);
            i + b.len()
        }
    }
}

/// Writes `header` into the front of `batch` (exactly one batch), then the
/// CRC computed over it; returns the CRC. `header.crc` is ignored.
///
/// The CRC is returned rather than stored into `header`: a caller reading
/// the header right after would otherwise stall on a store-to-load
/// forwarding of the narrow field (measured on the one-record path).
#[inline(always)]
pub(super) fn seal(batch: &mut [u8], header: &BatchHeader) -> u32 {
    let Some(head) = batch.first_chunk_mut::<BATCH_HEADER_BYTES>() else {
        // Callers pass a buffer that already holds the records after the header.
        unreachable!("a batch is at least {BATCH_HEADER_BYTES} bytes");
    };
    header.write(head);
    head[CRC_OFFSET..CRC_OFFSET + 4].fill(0);
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    crc
}

/// Encodes as many records from the front of `records` as fit in `out`,
/// header included, and returns the header it wrote. `Err(size)` if not even
/// the first record fits: `size` is the batch that record alone would make.
///
/// Record sizes are computed as the records are written, so a caller that
/// does not know the batch size in advance needs no planning pass.
#[inline]
fn encode_fitting(
    out: &mut [u8],
    base_offset: Offset,
    records: &[Record],
    default_timestamp: Timestamp,
) -> Result<BatchHeader, usize> {
    debug_assert!(!records.is_empty(), "a batch holds at least one record");
    debug_assert!(i64::try_from(base_offset.0).is_ok(), "offset exceeds int64");
    let base_ts = records
        .first()
        .map_or(default_timestamp.0, |r| timestamp_of(r, default_timestamp));
    let body = match out.split_first_chunk_mut::<BATCH_HEADER_BYTES>() {
        Some((_, body)) => body,
        None => &mut [],
    };
    let room = body.len().min(MAX_BATCH_BYTES - RECORDS_OFFSET);
    let mut written = 0;
    let mut max_ts = base_ts;
    let mut count = 0;
    for (i, r) in records.iter().enumerate() {
        // offsetDelta is an int32; a batch this long is far beyond any byte limit anyway.
        let Ok(offset_delta) = i32::try_from(i) else {
            break;
        };
        let ts = timestamp_of(r, default_timestamp);
        let ts_delta = ts.wrapping_sub(base_ts);
        let body_len = body_size(r, ts_delta, offset_delta);
        let end = written + varint_size(len_i32(body_len)) + body_len;
        if end > room {
            if i == 0 {
                return Err(RECORDS_OFFSET.saturating_add(end));
            }
            break;
        }
        write_record(&mut body[written..end], r, body_len, ts_delta, offset_delta);
        max_ts = max_ts.max(ts);
        written = end;
        count = i + 1;
    }
    let size = RECORDS_OFFSET + written;
    let mut header = BatchHeader {
        base_offset: base_offset.0 as i64,
        batch_length: len_i32(size - LOG_OVERHEAD),
        partition_leader_epoch: 0,
        magic: MAGIC_V2,
        crc: 0,
        attributes: 0,
        last_offset_delta: len_i32(count.saturating_sub(1)),
        base_timestamp: base_ts,
        max_timestamp: max_ts,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: len_i32(count),
    };
    header.crc = seal(&mut out[..size], &header);
    Ok(header)
}

/// Encodes all of `records` into `out`, or says how much room they need.
fn encode_all(
    out: &mut [u8],
    base_offset: Offset,
    records: &[Record],
    default_timestamp: Timestamp,
) -> Result<BatchHeader, FormatError> {
    let header = match records {
        [] => None,
        _ => encode_fitting(out, base_offset, records, default_timestamp).ok(),
    };
    match header {
        Some(h) if h.record_count as usize == records.len() => Ok(h),
        _ => Err(FormatError::Truncated {
            needed: batch_size(records, default_timestamp) as u64,
            available: out.len() as u64,
        }),
    }
}

fn summary(header: &BatchHeader) -> EncodedBatch {
    EncodedBatch {
        size: header.total_size(),
        last_offset_delta: header.last_offset_delta.unsigned_abs(),
        max_timestamp: Timestamp(header.max_timestamp),
    }
}

/// Encodes all of `records` (at least one) as one uncompressed batch into
/// `out`, which needs at least the size [`plan_batch`] computes.
///
/// Writes the records in place, then the header, then the CRC-32C over
/// attributes..end. producerId, producerEpoch and baseSequence are -1,
/// partitionLeaderEpoch 0, attributes 0 (create time, no compression).
/// [`FormatError::Truncated`] (with the size needed) if `out` is too small
/// or the records cannot make one batch.
pub fn encode_batch(
    out: &mut [u8],
    base_offset: Offset,
    records: &[Record],
    default_timestamp: Timestamp,
) -> Result<EncodedBatch, FormatError> {
    encode_all(out, base_offset, records, default_timestamp).map(|h| summary(&h))
}

/// Encodes as many records from the front of `records` as fit in `out` as
/// one uncompressed batch (layout as [`encode_batch`]), in a single pass with
/// no planning. The batch holds `last_offset_delta + 1` records.
/// `Err(size)` if the first record alone needs a batch of `size` bytes,
/// more than `out.len()`; nothing meaningful is left in `out` then.
pub fn encode_batch_fitting(
    out: &mut [u8],
    base_offset: Offset,
    records: &[Record],
    default_timestamp: Timestamp,
) -> Result<EncodedBatch, usize> {
    if records.is_empty() {
        return Err(RECORDS_OFFSET);
    }
    encode_fitting(out, base_offset, records, default_timestamp).map(|h| summary(&h))
}

/// Exact size of one batch holding all of `records`.
fn batch_size(records: &[Record], default_timestamp: Timestamp) -> usize {
    match plan_batch(records, default_timestamp, usize::MAX) {
        Ok(plan) => plan.size,
        Err(size) => size,
    }
}

/// Encodes `records` (at least one) as one uncompressed batch into a new
/// `Vec`. Fails like [`encode_batch`] when they cannot make one batch
/// (over 2 GiB, or over `i32::MAX` records).
pub fn encode_batch_to_vec(
    records: &[Record],
    default_timestamp: Timestamp,
    base_offset: Offset,
) -> Result<Vec<u8>, FormatError> {
    let mut out = vec![0u8; batch_size(records, default_timestamp)];
    let encoded = encode_batch(&mut out, base_offset, records, default_timestamp)?;
    out.truncate(encoded.size);
    Ok(out)
}

/// Encodes `records` as one batch whose records are compressed with `compression`.
///
/// Errors with [`FormatError::UnsupportedCompression`] when this build lacks
/// the codec's feature.
pub fn encode_compressed_batch(
    records: &[Record],
    default_timestamp: Timestamp,
    base_offset: Offset,
    compression: Compression,
) -> Result<Vec<u8>, FormatError> {
    let mut plain = vec![0u8; batch_size(records, default_timestamp)];
    let mut header = encode_all(&mut plain, base_offset, records, default_timestamp)?;
    if compression == Compression::None {
        plain.truncate(header.total_size());
        return Ok(plain);
    }
    let packed = compression::compress(compression, &plain[RECORDS_OFFSET..header.total_size()])?;
    let mut out = Vec::with_capacity(RECORDS_OFFSET + packed.len());
    out.extend_from_slice(&plain[..RECORDS_OFFSET]);
    out.extend_from_slice(&packed);
    let Ok(batch_length) = i32::try_from(out.len() - LOG_OVERHEAD) else {
        return Err(FormatError::BadLength(format!(
            "compressed batch of {} bytes exceeds int32",
            out.len()
        )));
    };
    header.batch_length = batch_length;
    header.attributes |= i16::from(compression.id());
    seal(&mut out, &header);
    Ok(out)
}
