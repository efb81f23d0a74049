//! Produce: record batches stored verbatim through
//! [`PartitionLog::append_batch`](crate::PartitionLog::append_batch), with
//! duplicate batches of idempotent producers acknowledged, not appended.
//!
//! Batch header fields read here (big-endian, offsets from the batch start;
//! see docs/FORMAT.md): `batchLength: i32` at 8, `magic: i8` at 16,
//! `attributes: i16` at 21, `lastOffsetDelta: i32` at 23, `producerId: i64`
//! at 43, `producerEpoch: i16` at 51, `baseSequence: i32` at 53; 61 bytes in
//! all.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::{self, Code};
use super::producer_ids::{self, BatchProducer, Check};
use super::{blocking, Shared};
use crate::config::FlushPolicy;
use crate::error::Error;
use crate::log::Topic;
use crate::types::{Offset, PartitionId, TopicName, TopicPartition};

/// Bytes of a RecordBatch v2 header.
const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength` counts: `baseOffset` and `batchLength` itself.
const LENGTH_PREFIX_BYTES: usize = 12;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Runs a Produce request; `None` for acks=0, which gets no response.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    if !matches!(acks, -1..=1) {
        return Some(refuse_all(
            &req,
            errors::of(ResponseError::InvalidRequiredAcks),
        ));
    }
    // Appends copy into the memory map, but may wait on the disk: an fsync
    // under a flush policy, or a segment roll (which fsyncs the sealed
    // segment). On a multi-threaded runtime the append runs in place with
    // the worker handed off (`block_in_place`, a few microseconds per
    // request); on a current-thread runtime, on the blocking pool when the
    // topic flushes on append.
    let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let may_fsync = req.topic_data.iter().any(|t| {
        TopicName::new(t.name.0.as_str())
            .and_then(|n| shared.log.topic(&n))
            .is_ok_and(|topic| topic.config().flush != FlushPolicy::Never)
    });
    let resp = match (multi_thread, may_fsync) {
        (true, _) => tokio::task::block_in_place(|| append_all(shared, req, version)),
        (false, false) => append_all(shared, req, version),
        (false, true) => {
            let s = Arc::clone(shared);
            match blocking(move || Ok(append_all(&s, req, version))).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("produce task failed: {e}");
                    ProduceResponse::default()
                }
            }
        }
    };
    (acks != 0).then_some(resp)
}

fn refuse_all(req: &ProduceRequest, code: Code) -> ProduceResponse {
    let responses = req
        .topic_data
        .iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|p| partition_error(p.index, code, None))
                        .collect(),
                )
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn partition_error(index: i32, code: Code, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

fn append_all(shared: &Shared, req: ProduceRequest, version: i16) -> ProduceResponse {
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for t in req.topic_data {
        let topic = TopicName::new(t.name.0.as_str()).and_then(|n| shared.log.topic(&n));
        let parts = t
            .partition_data
            .into_iter()
            .map(|p| {
                let result = match &topic {
                    Ok(topic) => {
                        append_partition(shared, topic, p.index, p.records.unwrap_or_default())
                    }
                    Err(e) => Err(Refusal {
                        code: errors::code(e),
                        message: e.to_string(),
                    }),
                };
                match result {
                    Ok((base, start)) => {
                        let out = PartitionProduceResponse::default()
                            .with_index(p.index)
                            .with_base_offset(base.0 as i64);
                        // v5 added the log start offset.
                        match version >= 5 {
                            true => out.with_log_start_offset(start.0 as i64),
                            false => out,
                        }
                    }
                    Err(r) => {
                        tracing::debug!(topic = %t.name.0.as_str(), partition = p.index, "produce refused: {}", r.message);
                        // v8 added the error message.
                        partition_error(p.index, r.code, (version >= 8).then_some(r.message))
                    }
                }
            })
            .collect();
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(parts),
        );
    }
    ProduceResponse::default().with_responses(responses)
}

/// Appends every batch of `records` to partition `index` of `topic`;
/// returns the first batch's base offset and the log start offset.
fn append_partition(
    shared: &Shared,
    topic: &Arc<Topic>,
    index: i32,
    records: Bytes,
) -> Result<(Offset, Offset), Refusal> {
    let p = u32::try_from(index).map_err(|_| Error::UnknownPartition {
        topic: topic.name.to_string(),
        partition: u32::MAX,
        partitions: topic.partition_count(),
    })?;
    let partition = topic.partition(PartitionId(p))?;
    let batches = split_batches(&records)?;
    // As Kafka (v3+): exactly one batch per partition, so a request is
    // stored whole or not at all.
    let [batch] = batches.as_slice() else {
        return Err(Refusal {
            code: errors::of(ResponseError::InvalidRecord),
            message: format!(
                "{} record batches for one partition; exactly one is allowed",
                batches.len()
            ),
        });
    };
    let base = append_one(shared, topic, &partition.tp, &partition.log, batch)?;
    Ok((base, partition.log.start_offset()))
}

fn append_one(
    shared: &Shared,
    topic: &Topic,
    tp: &TopicPartition,
    log: &crate::PartitionLog,
    batch: &[u8],
) -> Result<Offset, Refusal> {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]);
    if attributes & (ATTR_TRANSACTIONAL | ATTR_CONTROL) != 0 {
        return Err(Refusal {
            code: errors::of(ResponseError::InvalidRecord),
            message: "transactional and control batches are not supported".into(),
        });
    }
    let producer = BatchProducer {
        id: i64::from_be_bytes(field(batch, 43)),
        epoch: i16::from_be_bytes([batch[51], batch[52]]),
        first_seq: i32::from_be_bytes(field(batch, 53)),
        last_seq: producer_ids::last_seq(
            i32::from_be_bytes(field(batch, 53)),
            i32::from_be_bytes(field(batch, 23)),
        ),
    };
    if producer.id < 0 {
        // A partition closed because its topic was deleted: unknown topic.
        return log.append_batch(batch).map_err(|e| topic.map_err(e).into());
    }
    let state = shared.producers.partition(tp);
    let mut state = state.lock();
    match state.check(&producer) {
        Ok(Check::Duplicate(base)) => Ok(base),
        Ok(Check::Append) => {
            let base = log.append_batch(batch).map_err(|e| topic.map_err(e))?;
            state.record(&producer, base);
            Ok(base)
        }
        Err(code) => Err(Refusal {
            code,
            message: format!(
                "producer {} epoch {} sequence {} does not follow its last batches",
                producer.id, producer.epoch, producer.first_seq
            ),
        }),
    }
}

/// Why a partition's batches were refused, as Kafka tells it.
#[derive(Debug)]
struct Refusal {
    code: Code,
    message: String,
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal {
            code: errors::code(&e),
            message: e.to_string(),
        }
    }
}

/// `N` bytes of `batch` from `at`; the caller checked the batch holds a
/// whole header.
fn field<const N: usize>(batch: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&batch[at..at + N]);
    out
}

fn invalid(reason: String) -> Error {
    Error::InvalidBatch {
        reason: crate::error::FormatError::BadLength(reason),
    }
}

/// Splits `records` into whole batches by their length fields.
fn split_batches(records: &[u8]) -> crate::Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        if rest.len() < BATCH_HEADER_BYTES {
            return Err(invalid(format!(
                "{} bytes left, less than a batch header",
                rest.len()
            )));
        }
        let len = i32::from_be_bytes(field(rest, 8));
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(LENGTH_PREFIX_BYTES))
            .filter(|t| (BATCH_HEADER_BYTES..=rest.len()).contains(t))
            .ok_or_else(|| invalid(format!("batch length {len} with {} bytes left", rest.len())))?;
        let (batch, tail) = rest.split_at(total);
        out.push(batch);
        rest = tail;
    }
    Ok(out)
}
