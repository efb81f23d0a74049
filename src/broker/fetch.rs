//! Fetch: stored batches from the one holding the fetch offset on, shared
//! with the segment's memory map (no copy until the response is encoded),
//! with a long poll on the partitions' doorbell until `min_bytes` arrive or
//! `max_wait_ms` passes. Sessionless: every response has session id 0.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::{errors, Shared};
use crate::error::{Error, Result};
use crate::log::Partition;
use crate::notify::Doorbell;
use crate::partition::Subscription;
use crate::types::{Offset, PartitionId};

/// Longest long poll, whatever the client asks: a bound on how long a
/// connection can be parked.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// One requested partition, looked up once per request.
struct Wanted {
    index: i32,
    offset: i64,
    max_bytes: usize,
    partition: Result<Arc<Partition>>,
}

pub(crate) async fn handle(shared: &Arc<Shared>, req: FetchRequest, version: i16) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(shared.config.max_fetch_bytes);
    let wanted: Vec<(TopicName, Vec<Wanted>)> = req
        .topics
        .into_iter()
        .map(|t| {
            let topic =
                crate::types::TopicName::new(t.topic.0.as_str()).and_then(|n| shared.log.topic(&n));
            let parts = t
                .partitions
                .into_iter()
                .map(|p| Wanted {
                    index: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    partition: match &topic {
                        Ok(topic) => u32::try_from(p.partition)
                            .map_err(|_| Error::UnknownTopic {
                                topic: topic.name.to_string(),
                            })
                            .and_then(|i| topic.partition(PartitionId(i))),
                        Err(_) => Err(Error::UnknownTopic {
                            topic: t.topic.0.as_str().to_owned(),
                        }),
                    },
                })
                .collect();
            (t.topic, parts)
        })
        .collect();
    let mut stopping = shared.stopping.clone();
    let bell = Doorbell::new();
    let mut subscriptions: Option<Vec<Subscription>> = None;
    loop {
        let (resp, bytes, failed) = read_all(&wanted, max_bytes, version);
        let done = bytes >= min_bytes || failed || Instant::now() >= deadline || *stopping.borrow();
        if done {
            return resp;
        }
        if subscriptions.is_none() {
            // Subscribe, then read again: a ring between the read above and
            // the subscription would otherwise be missed.
            subscriptions = Some(
                wanted
                    .iter()
                    .flat_map(|(_, parts)| parts.iter())
                    .filter_map(|w| w.partition.as_ref().ok())
                    .map(|p| p.log.subscribe(&bell))
                    .collect(),
            );
            continue;
        }
        tokio::select! {
            _ = bell.rung() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
    }
}

/// Reads every wanted partition; returns the response, its record bytes,
/// and whether a partition failed (which answers at once, as Kafka).
fn read_all(
    wanted: &[(TopicName, Vec<Wanted>)],
    max_bytes: usize,
    version: i16,
) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut failed = false;
    let mut topics = Vec::with_capacity(wanted.len());
    for (name, parts) in wanted {
        let mut out = Vec::with_capacity(parts.len());
        for w in parts {
            let data = PartitionData::default()
                .with_partition_index(w.index)
                .with_aborted_transactions(Some(Vec::new()));
            let p = match &w.partition {
                Ok(p) => p,
                Err(e) => {
                    failed = true;
                    out.push(unknown(data, e));
                    continue;
                }
            };
            let (start, end) = (p.log.start_offset(), p.log.end_offset());
            let data = data
                .with_high_watermark(end.0 as i64)
                .with_last_stable_offset(end.0 as i64);
            // v5 added the log start offset.
            let data = match version >= 5 {
                true => data.with_log_start_offset(start.0 as i64),
                false => data,
            };
            // Once the response is full, later partitions report offsets only.
            let room = max_bytes.saturating_sub(total).min(w.max_bytes);
            if room == 0 && total > 0 {
                out.push(data.with_records(Some(Bytes::new())));
                continue;
            }
            let read = u64::try_from(w.offset)
                .map_err(|_| Error::OffsetOutOfRange {
                    offset: Offset(0),
                    start,
                    end,
                })
                .and_then(|o| p.log.read(Offset(o), room.max(1)));
            match read {
                Ok(batches) => {
                    let bytes = batches.bytes().clone();
                    // At least one batch, however large, but only as the
                    // first data of the response, so clients always progress.
                    if total > 0 && bytes.len() > room {
                        out.push(data.with_records(Some(Bytes::new())));
                        continue;
                    }
                    total += bytes.len();
                    out.push(data.with_records(Some(bytes)));
                }
                Err(e) => {
                    failed = true;
                    tracing::debug!(partition = %p.tp, offset = w.offset, "fetch: {e}");
                    out.push(
                        data.with_error_code(errors::code(&e))
                            .with_records(Some(Bytes::new())),
                    );
                }
            }
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(name.clone())
                .with_partitions(out),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        failed,
    )
}

fn unknown(data: PartitionData, e: &Error) -> PartitionData {
    tracing::debug!("fetch: {e}");
    data.with_error_code(errors::of(ResponseError::UnknownTopicOrPartition))
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_records(Some(Bytes::new()))
}
