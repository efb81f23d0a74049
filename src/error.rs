//! The one public error type, [`Error`], and the reasons a byte range fails validation.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::types::Offset;

/// Everything that can go wrong in moldau.
///
/// Variants carry the data needed to act on the failure: which file, which
/// position, which limit. The enum is `#[non_exhaustive]`: later versions add
/// variants without a breaking change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed on `path`.
    #[error("I/O error during {op} on {path}: {source}")]
    Io {
        /// What moldau was doing (`"open"`, `"fsync"`, `"fallocate"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The error the operating system returned.
        #[source]
        source: io::Error,
    },

    /// Bytes on disk fail validation at `position` of `path`.
    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corrupt {
        /// The file holding the bad bytes.
        path: PathBuf,
        /// Byte position in that file where the bad data starts.
        position: u64,
        /// What is wrong with them.
        reason: FormatError,
    },

    /// A record batch handed to [`append_batch`](crate::PartitionLog::append_batch)
    /// is malformed.
    #[error("invalid record batch: {reason}")]
    InvalidBatch {
        /// What is wrong with it.
        reason: FormatError,
    },

    /// A record (or the batch holding it) exceeds the configured maximum.
    #[error("record batch of {size} bytes exceeds max_record_bytes ({max})")]
    RecordTooLarge {
        /// The encoded size in bytes.
        size: u64,
        /// The configured limit in bytes.
        max: u64,
    },

    /// The requested offset is outside the partition's readable range.
    #[error("offset {offset} is out of range: valid offsets are {start}..{end}")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: Offset,
        /// The log start offset (first readable offset).
        start: Offset,
        /// The log end offset (the offset the next record will get).
        end: Offset,
    },

    /// A configuration value is unusable.
    #[error("invalid configuration: {field} {reason}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// Why the value is refused.
        reason: String,
    },

    /// An earlier write or fsync failed; the partition refuses further work,
    /// because after a failed fsync the page cache can no longer be trusted.
    #[error("partition {path} is unusable after an earlier failure: {cause}")]
    Poisoned {
        /// The partition directory.
        path: PathBuf,
        /// The first failure.
        #[source]
        cause: Arc<Error>,
    },

    /// Another handle, in this or another process, holds the directory lock.
    #[error("{dir} is locked by another moldau instance")]
    Locked {
        /// The locked directory.
        dir: PathBuf,
    },

    /// A topic name breaks Kafka's rule (1 to 249 characters of
    /// `[a-zA-Z0-9._-]`, not `.` or `..`); refused before any file is touched.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The topic does not exist (never created, or deleted).
    #[error("unknown topic {topic}")]
    UnknownTopic {
        /// The topic's name.
        topic: String,
    },

    /// The topic exists but has no such partition.
    #[error("unknown partition {partition} of topic {topic} (it has {partitions})")]
    UnknownPartition {
        /// The topic's name.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },

    /// `create_topic` for a name that is already taken.
    #[error("topic {topic} already exists")]
    TopicExists {
        /// The topic's name.
        topic: String,
    },

    /// An argument is unusable (an empty subscription, a zero partition count,
    /// a partition not assigned to this consumer, ...).
    #[error("invalid argument: {what} {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },

    /// A consumer-group operation came from a member whose generation is no
    /// longer current (it was removed from the group, for example after not
    /// polling within `max_poll_interval`). Nothing was changed; the member
    /// rejoins on its next poll.
    #[error("group {group}: member {member} of generation {generation} is stale (group is at generation {current})")]
    StaleGeneration {
        /// The group.
        group: String,
        /// The member's id.
        member: String,
        /// The generation the member presented.
        generation: u32,
        /// The group's current generation.
        current: u32,
    },

    /// A consumer with `auto_offset_reset = None` has no committed offset, or
    /// an out-of-range one, for a partition.
    #[error("no valid offset for {topic}-{partition} and auto_offset_reset is None")]
    NoOffset {
        /// The topic's name.
        topic: String,
        /// The partition.
        partition: u32,
    },

    /// A record of an internal topic (`__consumer_offsets`) passed its batch
    /// checksum but does not decode.
    #[error("record at offset {offset} of {partition} does not decode: {reason}")]
    CorruptRecord {
        /// The partition, as `topic-partition`.
        partition: String,
        /// The record's offset.
        offset: Offset,
        /// What is wrong with it.
        reason: FormatError,
    },

    /// A well-formed record the partition refuses: a record without a key
    /// sent to a compacted topic (Kafka's `INVALID_RECORD`).
    #[error("record refused by {path}: {reason}")]
    InvalidRecord {
        /// The partition directory.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// The handle has been closed.
    #[error("{path} is closed")]
    Closed {
        /// The partition directory.
        path: PathBuf,
    },
}

impl Error {
    /// Wraps an [`io::Error`] from operation `op` on `path`.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A validation failure at byte `position` of `path`.
    pub(crate) fn corrupt(path: &Path, position: u64, reason: FormatError) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            position,
            reason,
        }
    }
}

/// Shorthand for `std::result::Result<T, moldau::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a byte range is not a valid Kafka record batch (or index, or checkpoint).
///
/// Positions inside a variant are relative to the start of the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes are present than the structure needs.
    #[error("truncated: needed {needed} bytes, {available} available")]
    Truncated {
        /// Bytes required.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The magic byte is not 2 (RecordBatch v2).
    #[error("unsupported magic byte {0} (only RecordBatch v2, magic 2, is supported)")]
    BadMagic(i8),
    /// The stored CRC-32C does not match the bytes.
    #[error("checksum mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the data.
        expected: u32,
        /// The checksum computed over the data.
        actual: u32,
    },
    /// A length field is negative or inconsistent with its surroundings.
    #[error("bad length: {0}")]
    BadLength(String),
    /// A varint runs past its maximum width.
    #[error("malformed varint at byte {0}")]
    BadVarint(u64),
    /// The batch holds an offset, count or timestamp that cannot be right.
    #[error("inconsistent batch: {0}")]
    Inconsistent(String),
    /// The batch is compressed with a codec this build cannot decode.
    #[error("compression codec {0} is not supported by this build")]
    UnsupportedCompression(u8),
    /// Compressed records are corrupt or decompress past the size limit (a
    /// decompression bomb), or records could not be compressed.
    #[error("compression codec {codec}: {reason}")]
    Codec {
        /// The codec's number in the batch attributes (1 gzip, 2 snappy, 3 lz4, 4 zstd).
        codec: u8,
        /// What went wrong, with the codec library's own message.
        reason: String,
    },
    /// A file's version or type tag is unknown.
    #[error("unknown format version {0}")]
    UnknownVersion(u32),
}
