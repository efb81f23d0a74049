//! The byte format: Kafka RecordBatch v2 (magic 2). Encode, decode, validate; pure, no I/O.
//!
//! CONTRACT STUB: the codec helper replaces the bodies; signatures are fixed.

use bytes::Bytes;

use crate::error::FormatError;
use crate::types::{Offset, Timestamp};

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

/// A record header: a key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key (UTF-8 by Kafka's convention; not enforced).
    pub key: Bytes,
    /// Header value; `None` is null.
    pub value: Option<Bytes>,
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
    pub fn parse(_buf: &[u8]) -> Result<BatchHeader, FormatError> {
        unimplemented!()
    }
    /// Total bytes of the batch, header included.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
}

/// Rewrites baseOffset in an encoded batch; the CRC does not cover it.
pub fn set_base_offset(_batch: &mut [u8], _base: Offset) {
    unimplemented!()
}

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

/// How many records from the front of `records` fit in one batch of at most
/// `max_bytes`. `Err(size)` if the first record alone makes a batch of `size > max_bytes`.
pub fn plan_batch(
    _records: &[Record],
    _default_timestamp: Timestamp,
    _max_bytes: usize,
) -> Result<BatchPlan, usize> {
    unimplemented!()
}

/// Encodes `records` as one uncompressed batch into `out` (at least the planned size).
pub fn encode_batch(
    _out: &mut [u8],
    _base_offset: Offset,
    _records: &[Record],
    _default_timestamp: Timestamp,
) -> EncodedBatch {
    unimplemented!()
}

/// Validates one whole batch (header, length, CRC, and record structure when uncompressed).
pub fn validate_batch(_bytes: &[u8]) -> Result<BatchHeader, FormatError> {
    unimplemented!()
}

/// One whole batch.
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Bytes,
    header: BatchHeader,
}

impl Batch {
    /// Parses the batch at the start of `bytes` (header and length only).
    pub fn parse(_bytes: Bytes) -> Result<Batch, FormatError> {
        unimplemented!()
    }
    /// The header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }
    /// The batch's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
    /// Verifies the CRC, then iterates the records lazily.
    pub fn records(&self) -> Result<Records, FormatError> {
        unimplemented!()
    }
}

/// Lazy iterator over a batch's records.
#[derive(Debug)]
pub struct Records {}

impl Iterator for Records {
    type Item = Result<StoredRecord, FormatError>;
    fn next(&mut self) -> Option<Self::Item> {
        unimplemented!()
    }
}
