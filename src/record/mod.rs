//! The byte format: Kafka RecordBatch v2 (magic 2). Encode, decode, validate; pure, no I/O.
//!
//! `docs/FORMAT.md` describes the same layout in prose.

// Format: one RecordBatch v2, all integers big-endian, offsets in bytes.
//
//   0  baseOffset            int64   offset of the first record
//   8  batchLength           int32   bytes after this field (total size - 12)
//  12  partitionLeaderEpoch  int32
//  16  magic                 int8    always 2
//  17  crc                   uint32  CRC-32C (Castagnoli) of bytes 21..end
//  21  attributes            int16   bits 0-2 codec (0 none, 1 gzip, 2 snappy,
//                                    3 lz4, 4 zstd), bit 3 log-append time,
//                                    bit 4 transactional, bit 5 control
//  23  lastOffsetDelta       int32   last offset - baseOffset
//  27  baseTimestamp         int64   timestamp of the first record
//  35  maxTimestamp          int64   largest timestamp in the batch
//  43  producerId            int64   -1 without an idempotent producer
//  51  producerEpoch         int16   -1 likewise
//  53  baseSequence          int32   -1 likewise
//  57  recordsCount          int32   number of records
//  61  records               the records, compressed as one block if the codec is set
//
// Each record, with zigzag varints (varint = i32, varlong = i64):
//
//   length          varint   bytes after this field
//   attributes      int8     unused, 0
//   timestampDelta  varlong  timestamp - baseTimestamp
//   offsetDelta     varint   offset - baseOffset
//   keyLength       varint   -1 for a null key
//   key             bytes
//   valueLength     varint   -1 for a null value (tombstone)
//   value           bytes
//   headersCount    varint
//   headers         each: keyLength varint (>= 0), key, valueLength varint
//                   (-1 for null), value

mod compression;
mod decode;
mod encode;
mod filter;
mod header;
#[cfg(test)]
mod tests;
pub(crate) mod varint;

use bytes::Bytes;

use crate::types::{Offset, Timestamp};

pub use decode::{validate_batch, Batch, HeaderRefs, Records};
pub use encode::{
    encode_batch, encode_batch_fitting, encode_batch_to_vec, encode_compressed_batch, plan_batch,
    BatchPlan, EncodedBatch,
};
pub(crate) use filter::{empty_batch_like, retain_records, Retained};
pub use header::{
    set_base_offset, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET, BASE_SEQUENCE_OFFSET,
    BASE_TIMESTAMP_OFFSET, CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, MAGIC_OFFSET,
    MAGIC_V2, MAX_TIMESTAMP_OFFSET, PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET,
    PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET, RECORDS_OFFSET,
};

/// Bytes before `batchLength` counts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header.
pub const BATCH_HEADER_BYTES: usize = 61;

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The key, used for partitioning and compaction; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Create time; `None` takes the time of the append.
    pub timestamp: Option<Timestamp>,
    /// Headers, in order; keys may repeat.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with `value`, no key, no headers, stamped at append time.
    pub fn new(value: impl Into<Bytes>) -> Record {
        Record {
            value: Some(value.into()),
            ..Record::default()
        }
    }

    /// A tombstone for `key`: a null value, which compaction treats as a delete.
    pub fn tombstone(key: impl Into<Bytes>) -> Record {
        Record {
            key: Some(key.into()),
            ..Record::default()
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Sets the create time.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Record {
        self.timestamp = Some(timestamp);
        self
    }

    /// Appends a header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Record {
        self.headers.push(Header::new(key, value));
        self
    }
}

/// A record header: a key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key (UTF-8 by Kafka's convention; not enforced).
    pub key: Bytes,
    /// Header value; `None` is null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a non-null value.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's offset.
    pub offset: Offset,
    /// The record's timestamp.
    pub timestamp: Timestamp,
    /// The key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<Header>,
}

/// A record borrowed from the batch it was read from, for reading without
/// allocation or reference counting; see [`Batches::for_each_record`].
///
/// [`StoredRecord`] is the owned form.
///
/// [`Batches::for_each_record`]: crate::Batches::for_each_record
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's offset.
    pub offset: Offset,
    /// The record's timestamp.
    pub timestamp: Timestamp,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: Option<&'a [u8]>,
    /// The encoded headers after their count, already validated.
    headers: &'a [u8],
    header_count: u32,
}

impl<'a> RecordRef<'a> {
    /// The headers, in order, decoded as they are iterated (no allocation).
    pub fn headers(&self) -> HeaderRefs<'a> {
        HeaderRefs::new(self.headers, self.header_count)
    }
}

/// A record header borrowed from its batch; [`Header`] is the owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// Header key.
    pub key: &'a [u8],
    /// Header value; `None` is null.
    pub value: Option<&'a [u8]>,
}

/// The fixed 61-byte header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the batchLength field.
    pub batch_length: i32,
    /// Leader epoch.
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// CRC-32C of attributes..end.
    pub crc: u32,
    /// Compression, timestamp type, transactional, control bits.
    pub attributes: i16,
    /// Offset of the last record minus base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses and sanity-checks the header at the start of `buf`.
    ///
    /// Errors: fewer than 61 bytes (`Truncated`), magic other than 2
    /// (`BadMagic`), batchLength below 49 (`BadLength`), a negative base
    /// offset, record count or lastOffsetDelta, or more records than offsets
    /// (`Inconsistent`). Neither the CRC nor the presence of the whole batch
    /// is checked.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, crate::error::FormatError> {
        BatchHeader::parse_checked(buf)
    }
    /// Total bytes of the batch, header included.
    pub fn total_size(&self) -> usize {
        // A parsed header has batch_length >= 49; a hand-built negative one counts as 0.
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        // A parsed header cannot overflow here; saturate for hand-built ones.
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// How a batch's records are compressed (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Not compressed (0).
    #[default]
    None,
    /// gzip (1), feature `gzip`.
    Gzip,
    /// Snappy (2), xerial-framed as the Java client writes it; feature `snappy`.
    Snappy,
    /// LZ4 frame format (3), feature `lz4`.
    Lz4,
    /// Zstandard (4), feature `zstd`.
    Zstd,
}

impl Compression {
    /// The codec's number in the attributes field.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with number `id`, if Kafka defines one.
    pub const fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// What a batch's timestamps mean (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer; each record carries its own.
    CreateTime,
    /// Set by the broker on append; every record takes the batch's maxTimestamp.
    LogAppendTime,
}
