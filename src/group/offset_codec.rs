//! Committed offsets as Kafka stores them in its internal `__consumer_offsets`
//! topic, key and value, so Kafka's own tools can read what moldau writes.
//! Pure, no I/O. `docs/FORMAT.md` describes the same bytes in prose.

// Format: all integers big-endian and signed, as Kafka's generated
// `OffsetCommitKey` / `OffsetCommitValue` messages (group-coordinator module,
// `common/message/OffsetCommit{Key,Value}.json`), each prefixed by an int16
// version (`MessageUtil.toVersionPrefixedBytes`).
//
// Key:
//   version     int16   0 or 1: an offset commit (moldau writes 1);
//                       2: group metadata (GroupMetadataKey), skipped;
//                       anything else is unknown
//   group       string  int16 length (>= 0), then that many UTF-8 bytes
//   topic       string
//   partition   int32   >= 0
//
// Value (null value = tombstone: the committed offset was deleted):
//   version          int16   0..=4 (moldau writes 3)
//   offset           int64   >= 0
//   leaderEpoch      int32   versions 3+; -1 (any negative) = none
//   metadata         string  versions 0-3: int16 length + UTF-8;
//                            version 4: compact string, unsigned varint
//                            length + 1, then UTF-8
//   commitTimestamp  int64   ms since the epoch
//   expireTimestamp  int64   version 1 only; read and dropped
//   tagged fields            version 4 only: unsigned varint count, then
//                            per field unsigned varint tag, unsigned varint
//                            size, size bytes; all skipped
//
// Nothing may follow the last field.

use crate::error::FormatError;
use crate::types::{Offset, PartitionId, Timestamp, TopicName, TopicPartition};

/// Longest string (group id, metadata) the format holds, in bytes: Kafka's
/// `string` has an int16 length. The coordinator must refuse longer ones
/// before they reach [`encode_key`] or [`encode_value`].
pub(crate) const STRING_BYTES_MAX: usize = i16::MAX as usize;

/// Key versions 0 and 1 are both offset commits; Kafka writes 1.
const KEY_OFFSET_COMMIT_V0: i16 = 0;
/// The key version moldau writes.
const KEY_OFFSET_COMMIT: i16 = 1;
/// A GroupMetadataKey: the group's membership, not an offset.
const KEY_GROUP_METADATA: i16 = 2;
/// The value version moldau writes: the newest non-flexible one, as Kafka
/// writes when the commit has no expire timestamp.
const VALUE_VERSION: i16 = 3;
/// The first value version with compact strings and tagged fields.
const VALUE_FLEXIBLE: i16 = 4;
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`.
const NO_LEADER_EPOCH: i32 = -1;

/// The key of a committed offset: which group, which partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitKey {
    /// The group id.
    pub(crate) group: String,
    /// The partition whose offset is committed.
    pub(crate) partition: TopicPartition,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitValue {
    /// The next offset the group will consume from the partition.
    pub(crate) offset: Offset,
    /// The leader epoch of the last consumed record, if the client sent one.
    pub(crate) leader_epoch: Option<i32>,
    /// Free-form metadata from the committing client.
    pub(crate) metadata: String,
    /// When the commit was made.
    pub(crate) commit_timestamp: Timestamp,
}

/// Encodes `key` as a version 1 offset commit key.
///
/// # Panics
///
/// If the group id is longer than [`STRING_BYTES_MAX`] bytes; the
/// coordinator validates group ids before committing.
pub(crate) fn encode_key(key: &CommitKey) -> Vec<u8> {
    let topic = key.partition.topic.as_str();
    let mut out = Vec::with_capacity(2 + 2 + key.group.len() + 2 + topic.len() + 4);
    out.extend_from_slice(&KEY_OFFSET_COMMIT.to_be_bytes());
    put_string(&mut out, &key.group);
    // A TopicName has at most 249 characters, all ASCII.
    put_string(&mut out, topic);
    // Kafka's partition is an int32; moldau's PartitionId is a u32 that
    // topics never take past i32::MAX, so the bits are the same.
    out.extend_from_slice(&key.partition.partition.0.to_be_bytes());
    out
}

/// Decodes a `__consumer_offsets` key: `Ok(None)` for a group metadata key
/// (version 2), which is not an offset.
pub(crate) fn decode_key(bytes: &[u8]) -> Result<Option<CommitKey>, FormatError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    match version {
        KEY_OFFSET_COMMIT_V0 | KEY_OFFSET_COMMIT => {}
        KEY_GROUP_METADATA => return Ok(None),
        other => return Err(unknown_version(other)),
    }
    let group = r.string("group")?;
    let topic = r.string("topic")?;
    let topic = TopicName::new(&topic)
        .map_err(|e| FormatError::Inconsistent(format!("offset commit key: {e}")))?;
    let partition = r.i32()?;
    let partition = u32::try_from(partition).map_err(|_| {
        FormatError::Inconsistent(format!("offset commit key: negative partition {partition}"))
    })?;
    r.finish("offset commit key")?;
    Ok(Some(CommitKey {
        group,
        partition: TopicPartition::new(topic, PartitionId(partition)),
    }))
}

/// Encodes `value` as a version 3 offset commit value; a `leader_epoch` of
/// `None` (or a negative one) is written as -1.
///
/// # Panics
///
/// If the metadata is longer than [`STRING_BYTES_MAX`] bytes or the offset
/// is above `i64::MAX`; the coordinator validates commits first (Kafka's
/// `offset.metadata.max.bytes` is 4096, and no log reaches 2^63 records).
pub(crate) fn encode_value(value: &CommitValue) -> Vec<u8> {
    let Ok(offset) = i64::try_from(value.offset.0) else {
        panic!("offset {} is beyond int64", value.offset);
    };
    let epoch = value
        .leader_epoch
        .filter(|&e| e >= 0)
        .unwrap_or(NO_LEADER_EPOCH);
    let mut out = Vec::with_capacity(2 + 8 + 4 + 2 + value.metadata.len() + 8);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    put_string(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp.0.to_be_bytes());
    out
}

/// Decodes a non-null `__consumer_offsets` value of version 0 to 4. A null
/// value (a tombstone) never reaches here: it means the offset was deleted.
pub(crate) fn decode_value(bytes: &[u8]) -> Result<CommitValue, FormatError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=VALUE_FLEXIBLE).contains(&version) {
        return Err(unknown_version(version));
    }
    let offset = r.i64()?;
    let offset = u64::try_from(offset).map_err(|_| {
        FormatError::Inconsistent(format!("offset commit value: negative offset {offset}"))
    })?;
    let leader_epoch = if version >= 3 {
        Some(r.i32()?).filter(|&e| e >= 0)
    } else {
        None
    };
    let metadata = if version >= VALUE_FLEXIBLE {
        r.compact_string("metadata")?
    } else {
        r.string("metadata")?
    };
    let commit_timestamp = Timestamp(r.i64()?);
    if version == 1 {
        // expireTimestamp: Kafka's pre-2.1 per-commit retention, which the
        // broker's offsets.retention.minutes replaced; nothing to keep.
        r.i64()?;
    }
    if version >= VALUE_FLEXIBLE {
        r.skip_tagged_fields()?;
    }
    r.finish("offset commit value")?;
    Ok(CommitValue {
        offset: Offset(offset),
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

/// Appends `s` as a Kafka `string`: int16 length, then the UTF-8 bytes.
fn put_string(out: &mut Vec<u8>, s: &str) {
    // A panic rather than a truncated length, which would corrupt every
    // field after it. Callers keep strings within STRING_BYTES_MAX.
    let Ok(len) = i16::try_from(s.len()) else {
        panic!("string of {} bytes exceeds int16", s.len());
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `UnknownVersion` carries a u32; a version is the 16 bits as written, so a
/// negative one reads as 32768 and up.
fn unknown_version(version: i16) -> FormatError {
    FormatError::UnknownVersion(u32::from(version as u16))
}

/// Reads big-endian fields from a byte slice, front to back; every read
/// checks the length first, so bad input is an error and never a panic.
struct Reader<'a> {
    /// The whole key or value.
    bytes: &'a [u8],
    /// Where the next field starts.
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(FormatError::Truncated {
                needed: self.pos as u64 + n as u64,
                available: self.bytes.len() as u64,
            });
        };
        let field = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(field)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, FormatError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, FormatError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, FormatError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A non-nullable Kafka `string`: int16 length >= 0, then UTF-8.
    fn string(&mut self, what: &str) -> Result<String, FormatError> {
        let at = self.pos;
        let len = self.i16()?;
        let len = usize::try_from(len)
            .map_err(|_| FormatError::BadLength(format!("{what} at byte {at} has length {len}")))?;
        self.utf8(len, what)
    }

    /// A non-nullable compact string: unsigned varint length + 1 (0 would
    /// be null), then UTF-8; at most 32767 bytes, as Kafka's reader checks.
    fn compact_string(&mut self, what: &str) -> Result<String, FormatError> {
        let at = self.pos;
        let len_plus_one = self.unsigned_varint()?;
        let Some(len) = len_plus_one.checked_sub(1) else {
            return Err(FormatError::Inconsistent(format!(
                "{what} at byte {at} is null"
            )));
        };
        let len = len as usize;
        if len > STRING_BYTES_MAX {
            return Err(FormatError::BadLength(format!(
                "{what} at byte {at} has length {len}, above {STRING_BYTES_MAX}"
            )));
        }
        self.utf8(len, what)
    }

    fn utf8(&mut self, len: usize, what: &str) -> Result<String, FormatError> {
        let at = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            FormatError::Inconsistent(format!("{what} at byte {at} is not UTF-8: {e}"))
        })
    }

    /// Kafka's unsigned varint (no zigzag), at most 5 bytes for 32 bits.
    fn unsigned_varint(&mut self) -> Result<u32, FormatError> {
        crate::record::varint::get_unsigned_varint(self.bytes, &mut self.pos)
    }

    /// Skips a tagged-field section. Version 4 defines no tagged fields, so
    /// any present are ones a later Kafka added; like Kafka, ignore them.
    fn skip_tagged_fields(&mut self) -> Result<(), FormatError> {
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            // Each field takes at least two bytes, so a huge count runs out
            // of input (Truncated) long before it runs out of iterations.
            let _tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            self.take(size as usize)?;
        }
        Ok(())
    }

    /// Fails if bytes are left over: a key or value is exactly its fields.
    fn finish(self, what: &str) -> Result<(), FormatError> {
        let left = self.bytes.len() - self.pos;
        if left == 0 {
            Ok(())
        } else {
            Err(FormatError::BadLength(format!(
                "{left} bytes after the end of the {what} at byte {}",
                self.pos
            )))
        }
    }
}

#[cfg(test)]
mod tests;
