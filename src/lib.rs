//! moldau: an embeddable, Kafka-compatible, partitioned commit log.
//!
//! moldau keeps Apache Kafka's storage and consumer model inside one
//! process: topics split into partitions, append-only segment files of Kafka
//! record batches (RecordBatch v2, byte for byte) at increasing offsets, with
//! memory-mapped sparse offset and time indexes; producers with Kafka's
//! partitioning; consumers that poll, seek and block for new data without
//! spinning; consumer groups that share partitions and commit offsets
//! durably; fsync policies with group commit, and crash recovery that loses
//! nothing acknowledged.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use moldau::{AutoOffsetReset, ConsumerConfig, Log, LogConfig, ProducerConfig, Record};
//!
//! # let tmp = tempfile::tempdir()?;
//! // One data directory: topics, consumer groups, committed offsets.
//! let log = Log::open(tmp.path(), LogConfig::default())?;
//! log.create_topic("payments", 3, None)?;
//!
//! // Keys pick partitions as Kafka's Java client does.
//! let producer = log.producer(ProducerConfig::default())?;
//! let sent = producer.send("payments", Record::new("42.00 EUR").with_key("alice"))?;
//! println!("stored at partition {} offset {}", sent.partition, sent.offset);
//!
//! // A consumer group shares the partitions among its members and commits
//! // offsets to the internal topic `__consumer_offsets`.
//! let mut consumer = log.consumer(ConsumerConfig {
//!     auto_offset_reset: AutoOffsetReset::Earliest,
//!     ..ConsumerConfig::default()
//! })?;
//! consumer.subscribe("billing", &["payments"])?;
//! let records = consumer.poll(Duration::from_secs(1))?;
//! assert_eq!(records[0].key.as_deref(), Some(&b"alice"[..]));
//! consumer.commit()?;
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One partition can also be used alone, as a [`PartitionLog`]: appends,
//! zero-copy reads of whole batches, waiting, flush policies, truncation,
//! retention and compaction.
//!
//! # Feature flags
//!
//! - `compression` (default): decode (and encode) gzip, snappy, lz4 and zstd
//!   record batches; each codec also has its own feature (`gzip`, `snappy`,
//!   `lz4`, `zstd`).
//! - `broker`: `broker::Server`, the Kafka wire protocol over TCP (tokio,
//!   kafka-protocol, tracing), so Kafka clients produce, consume and run
//!   consumer groups against a [`Log`]; `examples/broker.rs` runs it.
//! - `cli`: the `moldau` command-line tool (`src/bin/moldau`: topics,
//!   produce, consume, groups, dump, serve, bench); enables `broker` and
//!   adds clap, clap_complete, indicatif, serde_json, chrono, tempfile and
//!   tracing-subscriber, none of which a build without it compiles.
//! - `fault-injection` (tests only): `moldau::fault_injection` reports every
//!   completed fsync to an observer, so a crash test can simulate a power
//!   cut (throw away what no fsync covered). Off, it costs nothing.
//! - `fuzzing` (tests only): `moldau::fuzzing` exposes decoders of internal files
//!   (checkpoints, the topic catalog, committed offsets) to fuzz targets.
//!
//! # Layout
//!
//! - `log`: [`Log`], one data directory: the topic catalog (`topics`),
//!   [`LogConfig`] and [`TopicConfig`] (with `kafka_config`, Kafka's topic
//!   config names mapped onto it), the directory lock, `shutdown` (the
//!   clean-shutdown marker that lets an open skip recovery), and
//!   `maintenance` (the thread and [`Log::run_maintenance`]: retention,
//!   compaction, interval flushes).
//! - `producer`: [`Producer`] (made by [`Log::producer`]) with
//!   [`ProducerConfig`] and [`RecordMetadata`]; `partitioner` ([`murmur2`] and
//!   [`partition_for_key`], as Kafka's Java client, and sticky partitions for
//!   keyless records) and `combiner` (concurrent sends to one partition
//!   become one batch).
//! - `consumer`: [`Consumer`] (made by [`Log::consumer`]): assignment,
//!   polling, commits, [`RebalanceListener`]; `fetch`, one assigned
//!   partition with its position and the rest of its last read.
//! - `group`: the group coordinator (members, generations, convergence to
//!   the target assignment, fencing), the assignors ([`Assignor`]), and
//!   committed offsets (`offsets`, stored in `__consumer_offsets` with
//!   `offset_codec`, Kafka's own record format).
//! - `partition`: [`PartitionLog`], the ordered segments of one partition,
//!   one file per concern: `append`, `read` (and waiting), `flush` with
//!   `durability` (group commit), `recovery`, `truncate`, `retention`
//!   (deleting segments from the front), and `compact` (the key map, the
//!   cleaning pass, and the crash-safe `swap` of rewritten segments).
//! - `segment`: one `.log` file with its `.index` and `.timeindex`; index
//!   lookups and rebuilding.
//! - `record`: the byte format, Kafka RecordBatch v2; pure, no I/O (public:
//!   [`record::Batch`], [`Record`], [`StoredRecord`]).
//! - `batches`: [`Batches`], the zero-copy result of a read, with owned
//!   records ([`Batches::records`], [`StoredRecord`]) or borrowed ones
//!   ([`Batches::for_each_record`], [`RecordRef`], no allocation).
//! - `broker` (feature `broker`): `broker::Server` and `broker::BrokerConfig`;
//!   `conn` (framing, dispatch, response order), one file per API or group
//!   of APIs (`produce`, `fetch`, `metadata`, `list_offsets`, `groups` over
//!   the `classic` group state machine, `offsets`, `admin`, `api_versions`,
//!   `producer_ids`), and `errors`, the only place Kafka error codes live.
//! - `inspect` (public): offline walks of segment files (`.log` batches
//!   with CRC validity, `.index` and `.timeindex` entries), reporting the
//!   position of the first corruption; `moldau dump` uses them.
//! - `mmap`: the memory maps, the only module with `unsafe`; `prefault`:
//!   the worker that faults in newly allocated log pages ahead of the writer;
//!   `worker`: the process-wide background threads it and the background
//!   fsync of rolled segments (`partition::sealed`) run on.
//! - `notify`: [`Doorbell`]s that partitions ring when their end moves.
//! - `checkpoint`, `fsutil`: versioned, checksummed metadata files, written
//!   atomically; preallocation and directory fsync.
//! - `config`, `clock`, `error`, `types`: [`PartitionConfig`], [`Clock`],
//!   [`Error`], and the domain types [`Offset`], [`Timestamp`],
//!   [`TopicName`], [`PartitionId`], [`TopicPartition`].
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// The README's example is compiled (not run) with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

mod batches;
#[cfg(feature = "broker")]
pub mod broker;
mod checkpoint;
mod clock;
mod config;
mod consumer;
mod error;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
mod fsutil;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod group;
pub mod inspect;
mod log;
mod mmap;
mod notify;
mod partition;
mod prefault;
mod producer;
pub mod record;
mod segment;
mod sync;
mod types;
mod worker;

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
    CleanupPolicy, Log, LogConfig, MaintenanceReport, PartitionDescription, TopicConfig,
    TopicDescription, KAFKA_TOPIC_CONFIG_KEYS, MAX_PARTITIONS, OFFSETS_TOPIC,
};
pub use notify::{Doorbell, Rung};
pub use partition::{
    CompactionOutcome, CompactionSettings, PartitionLog, PartitionStats, Retention,
    RetentionOutcome, Subscription,
};
pub use producer::partitioner::{murmur2, partition_for_key};
pub use producer::{Producer, ProducerConfig, RecordMetadata};
pub use record::{Header, HeaderRef, Record, RecordRef, StoredRecord};
pub use segment::OpenSegments;
pub use types::{Offset, PartitionId, Timestamp, TopicName, TopicPartition, TOPIC_NAME_MAX_CHARS};
