//! Kafka's topic config names (`retention.ms`, `cleanup.policy`, ...) mapped
//! onto the typed [`TopicConfig`]: the one translation the broker and the
//! command line share.

use std::time::Duration;

use super::config::{CleanupPolicy, TopicConfig};
use crate::config::FlushPolicy;
use crate::error::{Error, Result};

/// The Kafka topic config keys moldau understands, in the order
/// [`TopicConfig::kafka_entries`] lists them.
pub const KAFKA_TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "delete.retention.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
];

/// Kafka's "no limit" for `flush.messages` and `flush.ms` (`Long.MAX_VALUE`).
const KAFKA_NO_FLUSH: u64 = i64::MAX as u64;

impl TopicConfig {
    /// Sets one setting by its Kafka name, parsing `value` as Kafka does:
    /// `retention.ms=-1` and `retention.bytes=-1` keep records forever,
    /// `flush.messages=1` fsyncs before every acknowledgement
    /// ([`FlushPolicy::Always`]), `cleanup.policy` is `delete`, `compact` or
    /// `compact,delete`.
    ///
    /// Errors: [`Error::InvalidConfig`] naming the key and the accepted form,
    /// for an unknown key or a value that does not parse. Limits between
    /// settings are checked later, by [`TopicConfig::validate`].
    ///
    /// ```
    /// use moldau::{FlushPolicy, TopicConfig};
    /// let mut config = TopicConfig::default();
    /// config.set_kafka("flush.messages", "1")?;
    /// config.set_kafka("retention.ms", "-1")?;
    /// assert_eq!(config.flush, FlushPolicy::Always);
    /// assert_eq!(config.retention_ms, None);
    /// assert!(config.set_kafka("retention.mss", "1").is_err());
    /// # Ok::<(), moldau::Error>(())
    /// ```
    pub fn set_kafka(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        match key {
            "cleanup.policy" => self.cleanup_policy = parse_cleanup(value)?,
            "delete.retention.ms" => {
                self.delete_retention_ms = Duration::from_millis(non_negative(key, value)?)
            }
            "flush.messages" => self.flush = flush_messages(self.flush, value)?,
            "flush.ms" => self.flush = flush_ms(self.flush, value)?,
            "index.interval.bytes" => self.index_interval_bytes = non_negative(key, value)?,
            "max.message.bytes" => self.max_record_bytes = non_negative(key, value)?,
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = match value.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => r,
                    _ => {
                        return Err(bad(
                            "min.cleanable.dirty.ratio",
                            "a number from 0 to 1",
                            value,
                        ))
                    }
                }
            }
            "min.compaction.lag.ms" => {
                self.min_compaction_lag_ms = Duration::from_millis(non_negative(key, value)?)
            }
            "retention.bytes" => self.retention_bytes = unlimited_or(key, value)?,
            "retention.ms" => {
                self.retention_ms = unlimited_or(key, value)?.map(Duration::from_millis)
            }
            "segment.bytes" => self.segment_bytes = non_negative(key, value)?,
            "segment.index.bytes" => self.segment_index_bytes = non_negative(key, value)?,
            "segment.ms" => {
                self.segment_ms = match non_negative(key, value)? {
                    KAFKA_NO_FLUSH => None,
                    ms => Some(Duration::from_millis(ms)),
                }
            }
            _ => {
                return Err(Error::InvalidConfig {
                    field: "topic config",
                    reason: format!(
                        "unknown key {key:?}; known keys: {}",
                        KAFKA_TOPIC_CONFIG_KEYS.join(", ")
                    ),
                })
            }
        }
        Ok(())
    }

    /// Every setting under its Kafka name with its value written as Kafka
    /// writes it, in [`KAFKA_TOPIC_CONFIG_KEYS`] order; each value parses
    /// back through [`TopicConfig::set_kafka`] to the same setting.
    pub fn kafka_entries(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| d.as_millis().min(i64::MAX as u128).to_string();
        let (flush_messages, flush_ms) = match self.flush {
            FlushPolicy::Always => ("1".to_owned(), KAFKA_NO_FLUSH.to_string()),
            FlushPolicy::EveryRecords(n) => (n.to_string(), KAFKA_NO_FLUSH.to_string()),
            FlushPolicy::Interval(d) => (KAFKA_NO_FLUSH.to_string(), ms(d)),
            FlushPolicy::Never => (KAFKA_NO_FLUSH.to_string(), KAFKA_NO_FLUSH.to_string()),
        };
        let cleanup = match self.cleanup_policy {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        };
        vec![
            ("cleanup.policy", cleanup.to_owned()),
            ("delete.retention.ms", ms(self.delete_retention_ms)),
            ("flush.messages", flush_messages),
            ("flush.ms", flush_ms),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("max.message.bytes", self.max_record_bytes.to_string()),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            ("min.compaction.lag.ms", ms(self.min_compaction_lag_ms)),
            (
                "retention.bytes",
                self.retention_bytes
                    .map_or("-1".to_owned(), |b| b.to_string()),
            ),
            (
                "retention.ms",
                self.retention_ms.map_or("-1".to_owned(), ms),
            ),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            (
                "segment.ms",
                self.segment_ms.map_or(KAFKA_NO_FLUSH.to_string(), ms),
            ),
        ]
    }
}

fn bad(key: &'static str, form: &str, value: &str) -> Error {
    Error::InvalidConfig {
        field: key,
        reason: format!("expects {form}, got {value:?}"),
    }
}

/// The static spelling of `key`, so errors can name it.
fn static_key(key: &str) -> &'static str {
    KAFKA_TOPIC_CONFIG_KEYS
        .iter()
        .find(|k| **k == key)
        .copied()
        .unwrap_or("topic config")
}

fn non_negative(key: &str, value: &str) -> Result<u64> {
    value
        .parse::<u64>()
        .map_err(|_| bad(static_key(key), "a whole number of at least 0", value))
}

/// `-1` means no limit (`None`), as in Kafka.
fn unlimited_or(key: &str, value: &str) -> Result<Option<u64>> {
    match value {
        "-1" => Ok(None),
        v => v.parse::<u64>().map(Some).map_err(|_| {
            bad(
                static_key(key),
                "a whole number of at least 1, or -1 for no limit",
                value,
            )
        }),
    }
}

fn parse_cleanup(value: &str) -> Result<CleanupPolicy> {
    let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
    parts.sort_unstable();
    match parts.as_slice() {
        ["delete"] => Ok(CleanupPolicy::Delete),
        ["compact"] => Ok(CleanupPolicy::Compact),
        ["compact", "delete"] => Ok(CleanupPolicy::CompactDelete),
        _ => Err(bad(
            "cleanup.policy",
            "delete, compact or compact,delete",
            value,
        )),
    }
}

/// `flush.messages`: 1 fsyncs every append, n every n records, Kafka's
/// `Long.MAX_VALUE` (the default) turns off record-count flushing only, so
/// that it does not undo a `flush.ms` set alongside.
fn flush_messages(current: FlushPolicy, value: &str) -> Result<FlushPolicy> {
    match value.parse::<u64>() {
        Ok(0) | Err(_) => Err(bad(
            "flush.messages",
            "a whole number of at least 1 (1 fsyncs before every acknowledgement)",
            value,
        )),
        Ok(1) => Ok(FlushPolicy::Always),
        Ok(KAFKA_NO_FLUSH) => Ok(match current {
            FlushPolicy::Interval(_) => current,
            _ => FlushPolicy::Never,
        }),
        Ok(n) => Ok(FlushPolicy::EveryRecords(n)),
    }
}

/// `flush.ms`: 0 fsyncs every append; Kafka's `Long.MAX_VALUE` turns off
/// time-based flushing only.
fn flush_ms(current: FlushPolicy, value: &str) -> Result<FlushPolicy> {
    match value.parse::<u64>() {
        Err(_) => Err(bad("flush.ms", "a whole number of milliseconds", value)),
        Ok(0) => Ok(FlushPolicy::Always),
        Ok(KAFKA_NO_FLUSH) => Ok(match current {
            FlushPolicy::Interval(_) => FlushPolicy::Never,
            _ => current,
        }),
        Ok(ms) => Ok(FlushPolicy::Interval(Duration::from_millis(ms))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_back_to_the_same_config() {
        let mut configs = vec![TopicConfig::default()];
        let mut c = TopicConfig::default();
        for (k, v) in [
            ("flush.messages", "1"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000"),
            ("cleanup.policy", "delete,compact"),
            ("segment.ms", "60000"),
            ("min.cleanable.dirty.ratio", "0.25"),
        ] {
            c.set_kafka(k, v).unwrap();
        }
        configs.push(c.clone());
        c.set_kafka("flush.ms", "250").unwrap();
        configs.push(c);
        for config in configs {
            let mut back = TopicConfig::default();
            for (k, v) in config.kafka_entries() {
                back.set_kafka(k, &v).unwrap();
            }
            assert_eq!(back, config);
        }
        let keys: Vec<_> = TopicConfig::default()
            .kafka_entries()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, KAFKA_TOPIC_CONFIG_KEYS);
    }

    #[test]
    fn errors_name_the_key_and_the_form() {
        let mut c = TopicConfig::default();
        let e = c.set_kafka("retention.mss", "5").unwrap_err().to_string();
        assert!(
            e.contains("retention.mss") && e.contains("retention.ms"),
            "{e}"
        );
        let e = c.set_kafka("retention.ms", "soon").unwrap_err().to_string();
        assert!(
            e.contains("retention.ms") && e.contains("-1 for no limit"),
            "{e}"
        );
        let e = c
            .set_kafka("cleanup.policy", "shred")
            .unwrap_err()
            .to_string();
        assert!(e.contains("compact,delete"), "{e}");
        assert!(c.set_kafka("flush.messages", "0").is_err());
        assert_eq!(c, TopicConfig::default());
    }
}
