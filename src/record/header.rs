//! The fixed 61-byte batch header: layout constants, parse, write, CRC.

use std::mem::size_of;

use super::{BatchHeader, Compression, TimestampType, BATCH_HEADER_BYTES, LOG_OVERHEAD};
use crate::error::FormatError;
use crate::types::Offset;

/// Position of `baseOffset` (int64).
pub const BASE_OFFSET_OFFSET: usize = 0;
/// Position of `batchLength` (int32): bytes after this field.
pub const LENGTH_OFFSET: usize = BASE_OFFSET_OFFSET + size_of::<i64>();
/// Position of `partitionLeaderEpoch` (int32).
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = LENGTH_OFFSET + size_of::<i32>();
/// Position of `magic` (int8).
pub const MAGIC_OFFSET: usize = PARTITION_LEADER_EPOCH_OFFSET + size_of::<i32>();
/// Position of `crc` (uint32).
pub const CRC_OFFSET: usize = MAGIC_OFFSET + size_of::<i8>();
/// Position of `attributes` (int16): the CRC covers from here to the end.
pub const ATTRIBUTES_OFFSET: usize = CRC_OFFSET + size_of::<u32>();
/// Position of `lastOffsetDelta` (int32).
pub const LAST_OFFSET_DELTA_OFFSET: usize = ATTRIBUTES_OFFSET + size_of::<i16>();
/// Position of `baseTimestamp` (int64).
pub const BASE_TIMESTAMP_OFFSET: usize = LAST_OFFSET_DELTA_OFFSET + size_of::<i32>();
/// Position of `maxTimestamp` (int64).
pub const MAX_TIMESTAMP_OFFSET: usize = BASE_TIMESTAMP_OFFSET + size_of::<i64>();
/// Position of `producerId` (int64).
pub const PRODUCER_ID_OFFSET: usize = MAX_TIMESTAMP_OFFSET + size_of::<i64>();
/// Position of `producerEpoch` (int16).
pub const PRODUCER_EPOCH_OFFSET: usize = PRODUCER_ID_OFFSET + size_of::<i64>();
/// Position of `baseSequence` (int32).
pub const BASE_SEQUENCE_OFFSET: usize = PRODUCER_EPOCH_OFFSET + size_of::<i16>();
/// Position of `recordsCount` (int32).
pub const RECORDS_COUNT_OFFSET: usize = BASE_SEQUENCE_OFFSET + size_of::<i32>();
/// Position of the first record (or of the compressed records).
pub const RECORDS_OFFSET: usize = RECORDS_COUNT_OFFSET + size_of::<i32>();

/// The only magic byte moldau reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Smallest valid `batchLength`: a header with no records.
pub(crate) const MIN_BATCH_LENGTH: i32 = (RECORDS_OFFSET - LOG_OVERHEAD) as i32;

const _: () = assert!(RECORDS_OFFSET == BATCH_HEADER_BYTES);
const _: () = assert!(ATTRIBUTES_OFFSET == 21);
const _: () = assert!(LOG_OVERHEAD == PARTITION_LEADER_EPOCH_OFFSET);

/// Attribute bits 0-2: compression codec.
pub(crate) const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamps are log-append time.
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Attribute bit 4: part of a transaction.
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction markers).
pub(crate) const CONTROL_BIT: i16 = 0x20;

type Raw = [u8; BATCH_HEADER_BYTES];

/// Copies `N` bytes at `at`; with constant arguments the bounds are checked at compile time.
#[inline]
fn field<const N: usize>(h: &Raw, at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&h[at..at + N]);
    a
}

impl BatchHeader {
    /// Decodes the 61 header bytes without checking them.
    fn decode(h: &Raw) -> BatchHeader {
        BatchHeader {
            base_offset: i64::from_be_bytes(field(h, BASE_OFFSET_OFFSET)),
            batch_length: i32::from_be_bytes(field(h, LENGTH_OFFSET)),
            partition_leader_epoch: i32::from_be_bytes(field(h, PARTITION_LEADER_EPOCH_OFFSET)),
            magic: i8::from_be_bytes(field(h, MAGIC_OFFSET)),
            crc: u32::from_be_bytes(field(h, CRC_OFFSET)),
            attributes: i16::from_be_bytes(field(h, ATTRIBUTES_OFFSET)),
            last_offset_delta: i32::from_be_bytes(field(h, LAST_OFFSET_DELTA_OFFSET)),
            base_timestamp: i64::from_be_bytes(field(h, BASE_TIMESTAMP_OFFSET)),
            max_timestamp: i64::from_be_bytes(field(h, MAX_TIMESTAMP_OFFSET)),
            producer_id: i64::from_be_bytes(field(h, PRODUCER_ID_OFFSET)),
            producer_epoch: i16::from_be_bytes(field(h, PRODUCER_EPOCH_OFFSET)),
            base_sequence: i32::from_be_bytes(field(h, BASE_SEQUENCE_OFFSET)),
            record_count: i32::from_be_bytes(field(h, RECORDS_COUNT_OFFSET)),
        }
    }

    /// Parses and sanity-checks the header at the start of `buf`.
    ///
    /// Checks the magic byte, that `batchLength` covers at least the header,
    /// and that offsets and counts agree. Does not check the CRC, nor that the
    /// whole batch is present.
    pub(crate) fn parse_checked(buf: &[u8]) -> Result<BatchHeader, FormatError> {
        let Some(raw) = buf.first_chunk::<BATCH_HEADER_BYTES>() else {
            return Err(FormatError::Truncated {
                needed: BATCH_HEADER_BYTES as u64,
                available: buf.len() as u64,
            });
        };
        let h = BatchHeader::decode(raw);
        if h.magic != MAGIC_V2 {
            return Err(FormatError::BadMagic(h.magic));
        }
        if h.batch_length < MIN_BATCH_LENGTH {
            return Err(FormatError::BadLength(format!(
                "batchLength {} is below the minimum {MIN_BATCH_LENGTH}",
                h.batch_length
            )));
        }
        if h.base_offset < 0 {
            return Err(FormatError::Inconsistent(format!(
                "negative base offset {}",
                h.base_offset
            )));
        }
        if h.last_offset_delta < 0 {
            return Err(FormatError::Inconsistent(format!(
                "negative lastOffsetDelta {}",
                h.last_offset_delta
            )));
        }
        if h.record_count < 0 {
            return Err(FormatError::Inconsistent(format!(
                "negative record count {}",
                h.record_count
            )));
        }
        // Compaction may leave fewer records than offsets, never more.
        if i64::from(h.record_count) > i64::from(h.last_offset_delta) + 1 {
            return Err(FormatError::Inconsistent(format!(
                "{} records cannot fit in {} offsets",
                h.record_count,
                i64::from(h.last_offset_delta) + 1
            )));
        }
        if h.base_offset
            .checked_add(i64::from(h.last_offset_delta))
            .is_none()
        {
            return Err(FormatError::Inconsistent(format!(
                "last offset overflows: base {} + delta {}",
                h.base_offset, h.last_offset_delta
            )));
        }
        Ok(h)
    }

    /// Writes all 61 header bytes (the `crc` field as stored in `self`).
    pub(crate) fn write(&self, out: &mut Raw) {
        out[BASE_OFFSET_OFFSET..LENGTH_OFFSET].copy_from_slice(&self.base_offset.to_be_bytes());
        out[LENGTH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET]
            .copy_from_slice(&self.batch_length.to_be_bytes());
        out[PARTITION_LEADER_EPOCH_OFFSET..MAGIC_OFFSET]
            .copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out[MAGIC_OFFSET..CRC_OFFSET].copy_from_slice(&self.magic.to_be_bytes());
        out[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&self.crc.to_be_bytes());
        out[ATTRIBUTES_OFFSET..LAST_OFFSET_DELTA_OFFSET]
            .copy_from_slice(&self.attributes.to_be_bytes());
        out[LAST_OFFSET_DELTA_OFFSET..BASE_TIMESTAMP_OFFSET]
            .copy_from_slice(&self.last_offset_delta.to_be_bytes());
        out[BASE_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET]
            .copy_from_slice(&self.base_timestamp.to_be_bytes());
        out[MAX_TIMESTAMP_OFFSET..PRODUCER_ID_OFFSET]
            .copy_from_slice(&self.max_timestamp.to_be_bytes());
        out[PRODUCER_ID_OFFSET..PRODUCER_EPOCH_OFFSET]
            .copy_from_slice(&self.producer_id.to_be_bytes());
        out[PRODUCER_EPOCH_OFFSET..BASE_SEQUENCE_OFFSET]
            .copy_from_slice(&self.producer_epoch.to_be_bytes());
        out[BASE_SEQUENCE_OFFSET..RECORDS_COUNT_OFFSET]
            .copy_from_slice(&self.base_sequence.to_be_bytes());
        out[RECORDS_COUNT_OFFSET..RECORDS_OFFSET].copy_from_slice(&self.record_count.to_be_bytes());
    }

    /// The compression codec (attribute bits 0-2); codes 5-7 are
    /// [`FormatError::UnsupportedCompression`].
    pub fn compression(&self) -> Result<Compression, FormatError> {
        let id = (self.attributes & COMPRESSION_MASK) as u8;
        Compression::from_id(id).ok_or(FormatError::UnsupportedCompression(id))
    }

    /// Create time or log-append time (attribute bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records such as transaction markers (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Rewrites baseOffset in an encoded batch (bytes 0..8); the CRC does not cover it.
///
/// A batch shorter than 8 bytes is left alone, and an offset above
/// `i64::MAX` is written as its bit pattern (a negative baseOffset that every
/// parse then rejects); both are caller bugs, caught by `debug_assert`.
pub fn set_base_offset(batch: &mut [u8], base: Offset) {
    debug_assert!(i64::try_from(base.0).is_ok(), "offset {base} exceeds int64");
    debug_assert!(
        batch.len() >= LENGTH_OFFSET,
        "not a batch: {} bytes",
        batch.len()
    );
    if let Some(dst) = batch.get_mut(BASE_OFFSET_OFFSET..LENGTH_OFFSET) {
        dst.copy_from_slice(&base.0.to_be_bytes());
    }
}

/// CRC-32C of a whole batch's covered bytes (attributes to the end).
#[inline]
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or_default())
}

/// Checks the stored CRC of a whole batch (`batch` is exactly the batch).
pub(crate) fn verify_crc(batch: &[u8], header: &BatchHeader) -> Result<(), FormatError> {
    let actual = compute_crc(batch);
    if actual == header.crc {
        Ok(())
    } else {
        Err(FormatError::ChecksumMismatch {
            expected: header.crc,
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BatchHeader {
        BatchHeader {
            base_offset: 0x0102_0304_0506_0708,
            batch_length: 49,
            partition_leader_epoch: 7,
            magic: 2,
            crc: 0xdead_beef,
            attributes: 0x0012,
            last_offset_delta: 3,
            base_timestamp: -5,
            max_timestamp: 1_700_000_000_000,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 99,
            record_count: 4,
        }
    }

    #[test]
    fn layout_offsets_match_kafka() {
        assert_eq!(
            [
                BASE_OFFSET_OFFSET,
                LENGTH_OFFSET,
                PARTITION_LEADER_EPOCH_OFFSET,
                MAGIC_OFFSET,
                CRC_OFFSET,
                ATTRIBUTES_OFFSET,
                LAST_OFFSET_DELTA_OFFSET,
                BASE_TIMESTAMP_OFFSET,
                MAX_TIMESTAMP_OFFSET,
                PRODUCER_ID_OFFSET,
                PRODUCER_EPOCH_OFFSET,
                BASE_SEQUENCE_OFFSET,
                RECORDS_COUNT_OFFSET,
                RECORDS_OFFSET
            ],
            [0, 8, 12, 16, 17, 21, 23, 27, 35, 43, 51, 53, 57, 61]
        );
        assert_eq!(MIN_BATCH_LENGTH, 49);
    }

    #[test]
    fn header_write_parse_round_trip() {
        let h = sample();
        let mut raw = [0u8; BATCH_HEADER_BYTES];
        h.write(&mut raw);
        assert_eq!(&raw[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(raw[MAGIC_OFFSET], 2);
        assert_eq!(
            &raw[CRC_OFFSET..ATTRIBUTES_OFFSET],
            &[0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(BatchHeader::parse_checked(&raw), Ok(h));
        assert_eq!(h.compression(), Ok(Compression::Snappy));
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    }

    #[test]
    fn header_rejects_bad_fields() {
        let check = |edit: &dyn Fn(&mut BatchHeader)| {
            let mut h = sample();
            edit(&mut h);
            let mut raw = [0u8; BATCH_HEADER_BYTES];
            h.write(&mut raw);
            BatchHeader::parse_checked(&raw)
        };
        assert_eq!(check(&|h| h.magic = 1), Err(FormatError::BadMagic(1)));
        assert!(matches!(
            check(&|h| h.batch_length = 48),
            Err(FormatError::BadLength(_))
        ));
        assert!(matches!(
            check(&|h| h.batch_length = -1),
            Err(FormatError::BadLength(_))
        ));
        assert!(matches!(
            check(&|h| h.base_offset = -1),
            Err(FormatError::Inconsistent(_))
        ));
        assert!(matches!(
            check(&|h| h.record_count = -1),
            Err(FormatError::Inconsistent(_))
        ));
        assert!(matches!(
            check(&|h| h.last_offset_delta = -1),
            Err(FormatError::Inconsistent(_))
        ));
        assert!(matches!(
            check(&|h| h.record_count = 5),
            Err(FormatError::Inconsistent(_))
        ));
        assert!(matches!(
            check(&|h| h.base_offset = i64::MAX),
            Err(FormatError::Inconsistent(_))
        ));
        // Fewer records than offsets is what compaction leaves: fine.
        assert!(check(&|h| h.record_count = 1).is_ok());
        assert_eq!(
            BatchHeader::parse_checked(&[0u8; 60]),
            Err(FormatError::Truncated {
                needed: 61,
                available: 60
            })
        );
        let h = BatchHeader {
            attributes: 0x0006,
            ..sample()
        };
        assert_eq!(h.compression(), Err(FormatError::UnsupportedCompression(6)));
        let h = BatchHeader {
            attributes: 0x0028,
            ..sample()
        };
        assert!(h.is_control());
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn crc_is_crc32c() {
        // The standard CRC-32C (Castagnoli) check value; plain CRC-32 gives 0xcbf43926.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }
}
