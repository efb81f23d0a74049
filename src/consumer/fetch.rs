//! One assigned partition of a consumer: its position, and reads that keep
//! what a poll does not take for the next one.

use std::sync::Arc;

use super::{AutoOffsetReset, ConsumerRecord};
use crate::batches::RecordIter;
use crate::error::{Error, Result};
use crate::log::{Partition, Topic};
use crate::partition::Subscription;
use crate::types::{Offset, TopicName};

/// The rest of one read of a partition.
pub(super) struct Fetched {
    pub(super) records: RecordIter,
    /// The offset after the last batch read.
    pub(super) next: Offset,
}

pub(super) struct Assigned {
    /// This consumer's own copy of the name, so that the reference counts
    /// bumped for every record are not shared with other consumer threads.
    pub(super) name: TopicName,
    pub(super) topic: Arc<Topic>,
    pub(super) partition: Arc<Partition>,
    /// The next offset to read; `None` until resolved by the reset policy.
    pub(super) position: Option<Offset>,
    /// Records read but not yet returned; dropped whenever the position is
    /// set from outside.
    pub(super) fetched: Option<Fetched>,
    pub(super) paused: bool,
    pub(super) _subscription: Subscription,
}

impl Assigned {
    pub(super) fn seek_to(&mut self, offset: Offset) {
        self.position = Some(offset);
        self.fetched = None;
    }

    /// The position, resolved by `policy` if unknown.
    pub(super) fn resolve(&mut self, policy: AutoOffsetReset) -> Result<Offset> {
        if let Some(p) = self.position {
            return Ok(p);
        }
        let p = self.reset(policy)?;
        self.position = Some(p);
        Ok(p)
    }

    pub(super) fn reset(&self, policy: AutoOffsetReset) -> Result<Offset> {
        let log = &self.partition.log;
        match policy {
            AutoOffsetReset::Earliest => Ok(log.start_offset()),
            AutoOffsetReset::Latest => Ok(log.end_offset()),
            AutoOffsetReset::None => Err(Error::NoOffset {
                topic: self.partition.tp.topic.to_string(),
                partition: self.partition.tp.partition.0,
            }),
        }
    }

    /// Appends up to `max` records from the position on to `out`. Reads
    /// `max_bytes` at a time and keeps what one poll does not take for the
    /// next (as Kafka's consumer buffers a fetch), so small polls do not
    /// re-read the same stretch of log.
    pub(super) fn fetch(
        &mut self,
        max: usize,
        max_bytes: usize,
        policy: AutoOffsetReset,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        self.topic.check_live()?;
        let mut pos = self.resolve(policy)?;
        let mut taken = 0;
        while taken < max {
            let fetched = match &mut self.fetched {
                Some(f) => f,
                None => {
                    if pos >= self.partition.log.end_offset() {
                        break;
                    }
                    let batches = match self.partition.log.read(pos, max_bytes) {
                        Ok(b) => b,
                        Err(e @ Error::OffsetOutOfRange { .. }) => {
                            // Retention or truncation moved the log past the
                            // position: reset by the policy, or report it.
                            if policy == AutoOffsetReset::None {
                                self.position = Some(pos);
                                return Err(self.topic.map_err(e));
                            }
                            pos = self.reset(policy)?;
                            self.position = Some(pos);
                            continue;
                        }
                        Err(e) => return Err(self.topic.map_err(e)),
                    };
                    let Some(next) = batches.next_offset() else {
                        break;
                    };
                    self.fetched.insert(Fetched {
                        records: batches.records(),
                        next,
                    })
                }
            };
            match fetched.records.next() {
                Some(Ok(r)) if r.offset < pos => {}
                Some(Ok(r)) => {
                    pos = r.offset.plus(1);
                    out.push(ConsumerRecord {
                        topic: self.name.clone(),
                        partition: self.partition.tp.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                    taken += 1;
                }
                Some(Err(e)) => {
                    self.fetched = None;
                    self.position = Some(pos);
                    return Err(e);
                }
                None => {
                    // Past the fetched batches (and any gap inside them).
                    pos = pos.max(fetched.next);
                    self.fetched = None;
                }
            }
        }
        self.position = Some(pos);
        Ok(())
    }
}
