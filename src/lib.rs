//! moldau: an embeddable, Kafka-compatible, partitioned commit log.
//!
//! moldau keeps Apache Kafka's storage model inside one process: append-only
//! segment files of Kafka record batches (RecordBatch v2, byte for byte) at
//! increasing offsets, with memory-mapped sparse offset and time indexes,
//! zero-copy reads, waiting for new data without spinning, fsync policies with
//! group commit, and crash recovery that loses nothing acknowledged.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use moldau::{FlushPolicy, Offset, PartitionConfig, PartitionLog, Record};
//!
//! # let tmp = tempfile::tempdir()?;
//! let config = PartitionConfig { flush: FlushPolicy::Always, ..Default::default() };
//! let log = PartitionLog::open(tmp.path().join("payments-0"), config)?;
//!
//! // Durable when append returns: concurrent appenders share fsyncs.
//! let first = log.append(&[
//!     Record::new("42.00 EUR").with_key("alice"),
//!     Record::new("13.37 EUR").with_key("bob").with_header("source", "web"),
//! ])?;
//! assert_eq!(first, Offset(0));
//!
//! // Whole batches, zero-copy; records decode lazily, each batch CRC-checked.
//! let batches = log.read(Offset(1), 64 * 1024)?;
//! let bob = batches.records().next().unwrap()?;
//! assert_eq!(bob.key.as_deref(), Some(&b"bob"[..]));
//!
//! // A reader can block until the next record arrives.
//! assert!(!log.wait_for(log.end_offset(), Duration::from_millis(1))?);
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `compression` (default): decode (and encode) gzip, snappy, lz4 and zstd
//!   record batches; each codec also has its own feature (`gzip`, `snappy`,
//!   `lz4`, `zstd`).
//!
//! # Layout
//!
//! - `record`: the byte format, Kafka RecordBatch v2; pure, no I/O (public:
//!   [`record::Batch`], [`Record`], [`StoredRecord`]).
//! - `segment`: one `.log` file with its `.index` and `.timeindex`; index
//!   lookups and rebuilding.
//! - `partition`: [`PartitionLog`], the ordered segments of one partition,
//!   one file per concern: `append`, `read` (and waiting), `flush` with
//!   `durability` (group commit), `recovery`, `truncate`.
//! - `producer`: [`Producer`] (made by [`Log::producer`]) with
//!   [`ProducerConfig`] and [`RecordMetadata`]; `partitioner` ([`murmur2`] and
//!   [`partition_for_key`], as Kafka's Java client, and sticky partitions for
//!   keyless records) and `combiner` (concurrent sends to one partition
//!   become one batch).
//! - `mmap`: the memory maps, the only module with `unsafe`; `prefault`:
//!   the worker that faults in newly allocated log pages ahead of the writer.
//! - `notify`: [`Doorbell`]s that partitions ring when their end moves.
//! - `batches`: [`Batches`], the zero-copy result of a read, with owned
//!   records ([`Batches::records`], [`StoredRecord`]) or borrowed ones
//!   ([`Batches::for_each_record`], [`RecordRef`], no allocation).
//! - `checkpoint`, `fsutil`: versioned, checksummed metadata files, written
//!   atomically; preallocation and directory fsync.
//! - `producer`: choosing partitions as Kafka's Java producer does
//!   ([`murmur2`], [`partition_for_key`], sticky partitioning of keyless
//!   records).
//! - `group`: consumer groups; the partition assignors ([`Assignor`]) and the
//!   `__consumer_offsets` codec for committed offsets.
//! - `config`, `clock`, `error`, `types`: [`PartitionConfig`], [`Clock`],
//!   [`Error`], [`Offset`] and [`Timestamp`].
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod batches;
mod checkpoint;
mod clock;
mod config;
mod consumer;
mod error;
mod fsutil;
mod group;
mod log;
mod mmap;
mod notify;
mod partition;
mod prefault;
mod producer;
pub mod record;
mod segment;
mod types;

pub use batches::{BatchIter, Batches, RecordIter};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{FlushPolicy, PartitionConfig};
pub use consumer::{AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, RebalanceListener};
pub use error::{Error, FormatError, Result};
pub use group::assignor::Assignor;
pub use group::{
    GroupDescription, MemberDescription, OffsetAndMetadata, PartitionLag, GROUP_ID_MAX_BYTES,
    OFFSET_METADATA_MAX_BYTES,
};
pub use log::{
    CleanupPolicy, Log, LogConfig, PartitionDescription, TopicConfig, TopicDescription,
    MAX_PARTITIONS, OFFSETS_TOPIC,
};
pub use notify::{Doorbell, Rung};
pub use partition::{PartitionLog, PartitionStats, Subscription};
pub use producer::partitioner::{murmur2, partition_for_key};
pub use producer::{Producer, ProducerConfig, RecordMetadata};
pub use record::{Header, HeaderRef, Record, RecordRef, StoredRecord};
pub use types::{Offset, PartitionId, Timestamp, TopicName, TopicPartition, TOPIC_NAME_MAX_CHARS};
