//! Domain numbers as types: [`Offset`], [`Timestamp`], [`PartitionId`],
//! [`TopicName`] (validated on construction) and [`TopicPartition`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The position of a record in a partition: 0 for the first record ever
/// appended, increasing by one per record.
///
/// Kafka puts offsets on the wire as `int64`; moldau never produces a negative
/// one, so it keeps them as `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    /// The offset `n` records after this one.
    #[must_use]
    pub const fn plus(self, n: u64) -> Offset {
        Offset(self.0 + n)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Offset {
    fn from(v: u64) -> Self {
        Offset(v)
    }
}

/// Milliseconds since the Unix epoch, as Kafka stores record timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    #[must_use]
    pub fn now() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for Timestamp {
    fn from(v: i64) -> Self {
        Timestamp(v)
    }
}

/// A partition's number within its topic, from 0.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct PartitionId(pub u32);

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for PartitionId {
    fn from(v: u32) -> Self {
        PartitionId(v)
    }
}

/// Longest topic name Kafka accepts (a partition directory adds `-<n>` and
/// must fit in 255 bytes).
pub const TOPIC_NAME_MAX_CHARS: usize = 249;

/// A topic name that follows Kafka's rule: 1 to 249 characters of
/// `[a-zA-Z0-9._-]`, and neither `.` nor `..`.
///
/// Checked on construction, so a `TopicName` is always safe to use as part of
/// a path. Cheap to clone.
///
/// ```
/// use moldau::TopicName;
/// assert!(TopicName::new("orders.v1").is_ok());
/// assert!(TopicName::new("../etc").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Validates `name`; [`Error::InvalidTopic`] says what is wrong with it.
    pub fn new(name: impl AsRef<str>) -> Result<TopicName> {
        let name = name.as_ref();
        let invalid = |reason: &str| Error::InvalidTopic {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid("is empty"));
        }
        if name == "." || name == ".." {
            return Err(invalid("cannot be \".\" or \"..\""));
        }
        if name.chars().count() > TOPIC_NAME_MAX_CHARS {
            return Err(invalid("is longer than 249 characters"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(invalid(&format!(
                "contains {c:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
            )));
        }
        Ok(TopicName(Arc::from(name)))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Hash and Eq of `TopicName` are those of the `str` (derived through `Arc<str>`),
// so maps keyed by `TopicName` can be searched with a `&str`.
impl std::borrow::Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TopicName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        TopicName::new(s)
    }
}

impl TryFrom<&str> for TopicName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        TopicName::new(s)
    }
}

impl From<TopicName> for String {
    fn from(t: TopicName) -> String {
        t.0.to_string()
    }
}

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    /// The topic.
    pub topic: TopicName,
    /// The partition's number.
    pub partition: PartitionId,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: TopicName, partition: impl Into<PartitionId>) -> TopicPartition {
        TopicPartition {
            topic,
            partition: partition.into(),
        }
    }
}

impl fmt::Display for TopicPartition {
    /// `topic-partition`, the name of the partition's directory.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        for ok in ["a", "orders", "a.b_c-D9", &"x".repeat(249), "..."] {
            assert!(TopicName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "caf\u{e9}",
            &"x".repeat(250),
            "a\0",
        ] {
            assert!(
                matches!(TopicName::new(bad), Err(Error::InvalidTopic { .. })),
                "{bad:?}"
            );
        }
    }
}
