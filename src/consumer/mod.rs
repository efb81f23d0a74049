//! The consumer: manual assignment or group subscription, positions,
//! polling that blocks without spinning, pause/resume, and commits.

mod config;
mod fetch;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use config::{AutoOffsetReset, ConsumerConfig};
use fetch::Assigned;

use crate::error::{Error, Result};
use crate::group::{JoinSpec, Membership, OffsetAndMetadata, SyncPlan};
use crate::log::{Log, Partition, OFFSETS_TOPIC};
use crate::notify::Doorbell;
use crate::record::Header;
use crate::types::{Offset, PartitionId, Timestamp, TopicName, TopicPartition};

/// A record read by a [`Consumer`]. Key, value and header bytes share the
/// segment's memory (no copy) unless the batch was compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: TopicName,
    /// The partition.
    pub partition: PartitionId,
    /// The record's offset.
    pub offset: Offset,
    /// The record's timestamp.
    pub timestamp: Timestamp,
    /// The key.
    pub key: Option<Bytes>,
    /// The value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// Callbacks around a group rebalance (Kafka's `ConsumerRebalanceListener`).
///
/// Each gets the consumer, so it can commit or seek. With an eager assignor
/// (range, round-robin) a rebalance revokes every partition and assigns the
/// new set; with cooperative-sticky only the partitions that move are
/// revoked, and the rest keep being consumed.
pub trait RebalanceListener: Send {
    /// Partitions are about to be taken away; the consumer still owns them,
    /// so this is the place to commit what was processed. An error is
    /// returned by the `poll` that ran the callback (the partitions are
    /// released all the same).
    fn on_partitions_revoked(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let _ = (consumer, partitions);
        Ok(())
    }
    /// Partitions were assigned; their positions are the committed offsets.
    fn on_partitions_assigned(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let _ = (consumer, partitions);
        Ok(())
    }
    /// The member was removed from the group (it did not poll within
    /// `max_poll_interval`); its partitions already have other owners and
    /// commits for them fail. Calls `on_partitions_revoked` unless overridden.
    fn on_partitions_lost(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// Reads records from partitions, assigned by hand ([`Consumer::assign`]) or
/// by a consumer group ([`Consumer::subscribe`]).
///
/// Like Kafka's consumer it is used from one thread (`Send`, not `Sync`).
/// Dropping it leaves its group (committing first under auto-commit).
///
/// ```
/// use std::time::Duration;
/// use moldau::{AutoOffsetReset, ConsumerConfig, Log, LogConfig, ProducerConfig, Record};
/// # let tmp = tempfile::tempdir()?;
/// let log = Log::open(tmp.path(), LogConfig::default())?;
/// log.create_topic("orders", 2, None)?;
/// log.producer(ProducerConfig::default())?.send("orders", Record::new("pizza").with_key("o-1"))?;
///
/// let config = ConsumerConfig { auto_offset_reset: AutoOffsetReset::Earliest, ..Default::default() };
/// let mut consumer = log.consumer(config)?;
/// consumer.subscribe("kitchen", &["orders"])?;
/// let records = consumer.poll(Duration::from_secs(5))?;
/// assert_eq!(records[0].value.as_deref(), Some(&b"pizza"[..]));
/// consumer.commit()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer {
    log: Log,
    config: ConsumerConfig,
    /// Rung by assigned partitions when data arrives, and by the group
    /// coordinator when the assignment changes.
    bell: Doorbell,
    group: Option<GroupState>,
    /// Manually assigned partitions (no group).
    manual: bool,
    /// The group whose offsets a manually assigned consumer starts from and
    /// commits to ([`Consumer::assign_in_group`]).
    standalone: Option<String>,
    assigned: BTreeMap<TopicPartition, Assigned>,
    /// Which partition goes first at the next fetch, for fairness.
    rotation: usize,
    listener: Option<Box<dyn RebalanceListener>>,
    last_auto_commit: Timestamp,
}

struct GroupState {
    membership: Membership,
    generation: u32,
    topics: BTreeSet<TopicName>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.group.as_ref().map(|g| &g.membership))
            .field("assignment", &self.assigned.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// A new consumer of this log.
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        self.inner.check_open()?;
        Ok(Consumer {
            log: self.clone(),
            bell: Doorbell::new(),
            group: None,
            manual: false,
            standalone: None,
            assigned: BTreeMap::new(),
            rotation: 0,
            listener: None,
            last_auto_commit: self.inner.config.clock.now(),
            config,
        })
    }
}

impl Consumer {
    /// Consumes exactly `partitions` (replacing any earlier assignment),
    /// without a group. Positions of partitions kept are kept; new ones start
    /// per `auto_offset_reset` unless sought.
    ///
    /// Errors: [`Error::UnknownTopic`], [`Error::UnknownPartition`];
    /// [`Error::InvalidArgument`] if the consumer is subscribed to a group.
    /// On error the assignment is unchanged.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.assign_as(None, partitions)
    }

    /// Like [`Consumer::assign`], for a consumer that stores its offsets as
    /// group `group` without joining it (Kafka's `assign` with a `group.id`):
    /// new partitions start at the group's committed offsets, and
    /// [`commit`](Consumer::commit) and auto-commit store to the group, which
    /// is allowed while the group has no members.
    ///
    /// Errors: as [`Consumer::assign`], and [`Error::InvalidArgument`] for an
    /// empty or too long group id.
    pub fn assign_in_group(&mut self, group: &str, partitions: &[TopicPartition]) -> Result<()> {
        crate::group::check_group_id(group)?;
        self.assign_as(Some(group), partitions)
    }

    fn assign_as(&mut self, group: Option<&str>, partitions: &[TopicPartition]) -> Result<()> {
        if self.group.is_some() {
            return Err(Error::InvalidArgument {
                what: "assign",
                reason: "the consumer is subscribed to a group; unsubscribe first".into(),
            });
        }
        let kept = |tp| group == self.standalone.as_deref() && self.assigned.contains_key(tp);
        let mut opened = BTreeMap::new();
        for tp in partitions {
            if !kept(tp) {
                let committed = group.and_then(|g| self.log.inner.groups.committed(g, tp));
                let position = committed.map(|c| c.offset);
                opened.insert(tp.clone(), self.open_partition(tp, position)?);
            }
        }
        self.assigned
            .retain(|tp, _| partitions.contains(tp) && !opened.contains_key(tp));
        self.assigned.append(&mut opened);
        self.manual = !self.assigned.is_empty();
        self.standalone = group.map(str::to_owned);
        Ok(())
    }

    /// Joins consumer group `group`, subscribed to `topics`. The group's
    /// coordinator assigns partitions, which this consumer takes at its next
    /// [`poll`](Consumer::poll), starting at the group's committed offsets.
    /// Topics that do not exist yet are assigned once created.
    ///
    /// Errors: [`Error::InvalidArgument`] for no topics, an empty or too long
    /// group id, an assignor other than the group's, or a manual assignment;
    /// [`Error::InvalidTopic`].
    pub fn subscribe(&mut self, group: &str, topics: &[&str]) -> Result<()> {
        if self.manual {
            return Err(Error::InvalidArgument {
                what: "subscribe",
                reason: "the consumer has a manual assignment; assign(&[]) first".into(),
            });
        }
        let names = topics
            .iter()
            .map(|t| match TopicName::new(t)? {
                n if n.as_str() == OFFSETS_TOPIC => Err(Error::InvalidTopic {
                    name: n.to_string(),
                    reason: "is internal to moldau".into(),
                }),
                n => Ok(n),
            })
            .collect::<Result<BTreeSet<_>>>()?;
        self.log.inner.check_open()?;
        self.unsubscribe()?;
        self.join(group, names)
    }

    /// Sets the callbacks run when a group rebalance changes the assignment.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    /// Leaves the group (committing first under auto-commit, and calling the
    /// listener's revoke callback). Does nothing if not subscribed.
    pub fn unsubscribe(&mut self) -> Result<()> {
        let Some(g) = &self.group else {
            return Ok(());
        };
        let membership = g.membership.clone();
        let owned: Vec<_> = self.assigned.keys().cloned().collect();
        let result = self.release(&owned);
        self.log.inner.groups.leave(&membership);
        self.group = None;
        self.assigned.clear();
        result
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.keys().cloned().collect()
    }

    /// The group member id, if subscribed.
    pub fn member_id(&self) -> Option<&str> {
        self.group.as_ref().map(|g| g.membership.member_id.as_str())
    }

    /// The group generation this consumer last synced to, if subscribed.
    pub fn generation(&self) -> Option<u32> {
        self.group.as_ref().map(|g| g.generation)
    }

    /// Sets the next offset to read from `tp`.
    ///
    /// Errors: [`Error::InvalidArgument`] if `tp` is not assigned,
    /// [`Error::OffsetOutOfRange`] outside the partition's start..=end.
    pub fn seek(&mut self, tp: &TopicPartition, offset: Offset) -> Result<()> {
        let a = self.assigned_mut(tp)?;
        let (start, end) = (a.partition.log.start_offset(), a.partition.log.end_offset());
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        a.seek_to(offset);
        Ok(())
    }

    /// Moves to the first record of each of `partitions` (all assigned ones if empty).
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_each(partitions, |p| p.log.start_offset())
    }

    /// Moves to the end of each of `partitions` (all assigned ones if empty).
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_each(partitions, |p| p.log.end_offset())
    }

    /// The next offset that will be read from `tp`, resolving it by
    /// `auto_offset_reset` if not yet known.
    pub fn position(&mut self, tp: &TopicPartition) -> Result<Offset> {
        let policy = self.config.auto_offset_reset;
        let a = self.assigned_mut(tp)?;
        a.resolve(policy)
    }

    /// Stops returning records from `partitions` until resumed (they stay assigned).
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, true)
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, false)
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let paused = self.assigned.iter().filter(|(_, a)| a.paused);
        paused.map(|(tp, _)| tp.clone()).collect()
    }

    /// Returns records from the assigned partitions, blocking (without
    /// spinning) up to `timeout` until any has data. At most
    /// `max_poll_records`, shared fairly: each partition with data gets an
    /// equal share, and the partition served first rotates.
    ///
    /// In a group, a poll is also when the consumer takes part in
    /// rebalances (revoking and taking partitions, running the listener)
    /// and auto-commits.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            self.log.inner.check_open()?;
            self.sync_group()?;
            self.maybe_auto_commit()?;
            let records = self.fetch()?;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return Ok(records);
            }
            // Wake in time to show the group this member is alive.
            let alive = self.config.max_poll_interval / 2;
            self.bell.wait_timeout(left.min(alive));
        }
    }

    /// Commits the position of every partition this group member owns.
    ///
    /// Errors: [`Error::StaleGeneration`] if the member was removed from the
    /// group; [`Error::InvalidArgument`] if not subscribed.
    pub fn commit(&mut self) -> Result<()> {
        let offsets = self.positions(None);
        self.commit_offsets(&offsets)
    }

    /// Commits `offsets` (the next offset to read, per partition). Every
    /// partition must be assigned to this consumer; otherwise nothing is
    /// committed.
    pub fn commit_offsets(
        &mut self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        let groups = &self.log.inner.groups;
        match (&self.group, &self.standalone) {
            (Some(g), _) => groups.commit(&g.membership, g.generation, offsets)?,
            (None, Some(group)) => {
                if let Some((tp, _)) = offsets
                    .iter()
                    .find(|(tp, _)| !self.assigned.contains_key(tp))
                {
                    return Err(Error::InvalidArgument {
                        what: "offsets",
                        reason: format!("{tp} is not assigned to this consumer"),
                    });
                }
                groups.commit_standalone(group, offsets)?
            }
            (None, None) => {
                return Err(Error::InvalidArgument {
                    what: "commit",
                    reason: "the consumer has no group (use subscribe or assign_in_group)".into(),
                })
            }
        }
        self.last_auto_commit = self.log.inner.config.clock.now();
        Ok(())
    }

    /// The offset the consumer's group committed for `tp`.
    pub fn committed(&self, tp: &TopicPartition) -> Result<Option<OffsetAndMetadata>> {
        match self.group_id() {
            Some(g) => self.log.committed(g, tp),
            None => Ok(None),
        }
    }

    /// The group this consumer commits to, if any.
    pub fn group_id(&self) -> Option<&str> {
        match &self.group {
            Some(g) => Some(&g.membership.group),
            None => self.standalone.as_deref(),
        }
    }

    /// Leaves the group (or, with [`Consumer::assign_in_group`], commits
    /// the positions under auto-commit); reports errors that dropping the
    /// consumer would swallow.
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let mut result = Ok(());
        if self.standalone.is_some() && self.config.enable_auto_commit {
            let offsets = self.positions(None);
            if !offsets.is_empty() {
                result = self.commit_offsets(&offsets);
            }
        }
        // Once: `close` runs this, and then the drop.
        self.standalone = None;
        result.and(self.unsubscribe())
    }

    fn join(&mut self, group: &str, topics: BTreeSet<TopicName>) -> Result<()> {
        let spec = JoinSpec {
            topics: topics.clone(),
            assignor: self.config.assignor,
            max_poll_interval: self.config.max_poll_interval,
            bell: self.bell.clone(),
        };
        let membership = self.log.inner.groups.join(group, spec)?;
        self.group = Some(GroupState {
            membership,
            generation: 0,
            topics,
        });
        Ok(())
    }

    /// Converges to the group's current assignment: releases what must go,
    /// takes what is free. Rejoins if the member was removed.
    fn sync_group(&mut self) -> Result<()> {
        let Some(g) = &self.group else {
            return Ok(());
        };
        let membership = g.membership.clone();
        let log = self.log.clone();
        let groups = &log.inner.groups;
        let plan = match groups.poll(&membership) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Ok(()),
            Err(Error::StaleGeneration { .. }) => return self.rejoin(),
            Err(e) => return Err(e),
        };
        let released = self.release(&plan.revoke);
        if let Err(Error::StaleGeneration { .. }) = released {
            return self.rejoin();
        }
        let taken = match groups.complete_sync(&membership, &plan) {
            Ok(t) => t,
            Err(Error::StaleGeneration { .. }) => return self.rejoin(),
            Err(e) => return Err(e),
        };
        // A failed commit or callback is reported once the assignment moved
        // on, so the next poll does not revoke the same partitions again.
        let took = self.take(&membership, &plan, &taken);
        released.and(took)
    }

    fn take(&mut self, m: &Membership, plan: &SyncPlan, taken: &[TopicPartition]) -> Result<()> {
        if let Some(g) = &mut self.group {
            g.generation = plan.generation;
        }
        for tp in taken {
            let committed = self.log.inner.groups.committed(&m.group, tp);
            let a = self.open_partition(tp, committed.map(|c| c.offset))?;
            self.assigned.insert(tp.clone(), a);
        }
        match taken.is_empty() {
            true => Ok(()),
            false => self.with_listener(|l, c| l.on_partitions_assigned(c, taken)),
        }
    }

    /// Commits (under auto-commit) and runs the revoke callback for
    /// `partitions`, then stops reading them.
    fn release(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut result = Ok(());
        if self.config.enable_auto_commit {
            let offsets = self.positions(Some(partitions));
            result = self.commit_offsets(&offsets);
        }
        let called = self.with_listener(|l, c| l.on_partitions_revoked(c, partitions));
        for tp in partitions {
            self.assigned.remove(tp);
        }
        result.and(called)
    }

    /// The member was removed from its group: its partitions are lost (no
    /// commit is possible), and it joins again as a new member.
    fn rejoin(&mut self) -> Result<()> {
        let Some(g) = self.group.take() else {
            return Ok(());
        };
        let lost: Vec<_> = self.assigned.keys().cloned().collect();
        let called = match lost.is_empty() {
            true => Ok(()),
            false => self.with_listener(|l, c| l.on_partitions_lost(c, &lost)),
        };
        self.assigned.clear();
        self.join(&g.membership.group, g.topics)?;
        called
    }

    fn with_listener(
        &mut self,
        f: impl FnOnce(&mut dyn RebalanceListener, &mut Consumer) -> Result<()>,
    ) -> Result<()> {
        let Some(mut l) = self.listener.take() else {
            return Ok(());
        };
        let result = f(l.as_mut(), self);
        self.listener.get_or_insert(l);
        result
    }

    fn maybe_auto_commit(&mut self) -> Result<()> {
        if !self.config.enable_auto_commit || self.group_id().is_none() {
            return Ok(());
        }
        let now = self.log.inner.config.clock.now();
        let interval =
            i64::try_from(self.config.auto_commit_interval.as_millis()).unwrap_or(i64::MAX);
        if now.0.saturating_sub(self.last_auto_commit.0) < interval {
            return Ok(());
        }
        match self.commit() {
            // Removed from the group: the next poll rejoins.
            Err(Error::StaleGeneration { .. }) => Ok(()),
            r => r,
        }
    }

    /// Positions of `only` (or of every assigned partition) that are known,
    /// leaving out partitions of deleted topics.
    fn positions(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        self.assigned
            .iter()
            .filter(|(tp, a)| only.is_none_or(|o| o.contains(tp)) && a.topic.check_live().is_ok())
            .filter_map(|(tp, a)| Some((tp.clone(), OffsetAndMetadata::new(a.position?))))
            .collect()
    }

    fn fetch(&mut self) -> Result<Vec<ConsumerRecord>> {
        let active: Vec<TopicPartition> = self
            .assigned
            .iter()
            .filter(|(_, a)| !a.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut out = Vec::new();
        if active.is_empty() {
            return Ok(out);
        }
        let n = active.len();
        let share = self.config.max_poll_records.div_ceil(n);
        let start = self.rotation % n;
        self.rotation = self.rotation.wrapping_add(1);
        let (policy, fetch_bytes) = (
            self.config.auto_offset_reset,
            self.config.max_partition_fetch_bytes,
        );
        for i in 0..n {
            let room = self.config.max_poll_records - out.len();
            if room == 0 {
                break;
            }
            let tp = &active[(start + i) % n];
            if let Some(a) = self.assigned.get_mut(tp) {
                a.fetch(share.min(room), fetch_bytes, policy, &mut out)?;
            }
        }
        Ok(out)
    }

    fn open_partition(&self, tp: &TopicPartition, position: Option<Offset>) -> Result<Assigned> {
        let topic = self.log.topic(&tp.topic)?;
        let partition = topic.partition(tp.partition)?;
        let subscription = partition.log.subscribe(&self.bell);
        Ok(Assigned {
            name: TopicName::new(tp.topic.as_str())?,
            topic,
            partition,
            position,
            fetched: None,
            paused: false,
            _subscription: subscription,
        })
    }

    fn assigned_mut(&mut self, tp: &TopicPartition) -> Result<&mut Assigned> {
        self.assigned
            .get_mut(tp)
            .ok_or_else(|| Error::InvalidArgument {
                what: "partition",
                reason: format!("{tp} is not assigned to this consumer"),
            })
    }

    fn seek_each(
        &mut self,
        partitions: &[TopicPartition],
        to: impl Fn(&Partition) -> Offset,
    ) -> Result<()> {
        let tps: Vec<_> = match partitions.is_empty() {
            true => self.assigned.keys().cloned().collect(),
            false => partitions.to_vec(),
        };
        for tp in &tps {
            self.assigned_mut(tp)?;
        }
        for tp in &tps {
            let a = self.assigned_mut(tp)?;
            let offset = to(&a.partition);
            a.seek_to(offset);
        }
        Ok(())
    }

    fn set_paused(&mut self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        for tp in partitions {
            self.assigned_mut(tp)?;
        }
        for tp in partitions {
            self.assigned_mut(tp)?.paused = paused;
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Errors here have no caller to go to; `close` reports them.
        let _ = self.finish();
    }
}
