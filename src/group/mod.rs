//! Consumer groups: membership, assignment and committed offsets.
//!
//! The coordinator lives inside the [`Log`](crate::Log). Unlike Kafka's
//! classic protocol, where every member stops and rejoins on a rebalance,
//! it works like Kafka's newer consumer protocol (KIP-848): the coordinator
//! computes each member's target assignment at once, members converge to it
//! at their next poll, and a partition is handed to its new owner only after
//! the old owner has released it (after its revoke callback and commit). So
//! a partition never has two owners, and members that keep their partitions
//! (with the cooperative-sticky assignor) never stop consuming them.

pub(crate) mod assignor;
pub(crate) mod offset_codec;
mod offsets;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::Topic;
use crate::notify::Doorbell;
use crate::types::{Timestamp, TopicName, TopicPartition};
use assignor::{Assignor, MemberSpec};
pub use offsets::OffsetAndMetadata;
use offsets::OffsetStore;

/// Longest group id accepted.
pub const GROUP_ID_MAX_BYTES: usize = 255;
/// Longest metadata string stored with a committed offset (Kafka's
/// `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// Tracks consumer groups and their committed offsets.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    offsets: OffsetStore,
    clock: Arc<dyn Clock>,
    /// Partition count of every topic, kept current by the log. Read for a
    /// rebalance; written when a topic is created, grows or is deleted.
    partitions: RwLock<HashMap<TopicName, u32>>,
    /// Groups by id. Held only to find or add a group; each group has its
    /// own lock.
    groups: Mutex<HashMap<String, Arc<Mutex<Group>>>>,
    next_member: AtomicU64,
    /// Group ids whose members another coordinator manages (the broker's
    /// classic groups); in-process consumers may not join them. Locked
    /// after a group's lock, never before.
    external: Mutex<std::collections::HashSet<String>>,
}

/// One group. Its lock serializes membership changes, syncs and commits of
/// the group, and is held across a commit's append (and fsync), so that a
/// commit is checked against the membership it is written under.
#[derive(Debug)]
struct Group {
    id: String,
    /// Chosen by the first member; `None` while the group has no members.
    assignor: Option<Assignor>,
    generation: u32,
    members: BTreeMap<String, Member>,
    /// The member that currently owns each partition.
    owners: HashMap<TopicPartition, String>,
}

#[derive(Debug)]
struct Member {
    topics: BTreeSet<TopicName>,
    /// What the assignor gave this member at the last rebalance.
    target: BTreeSet<TopicPartition>,
    /// What the member has taken (and not yet released).
    owned: BTreeSet<TopicPartition>,
    /// The generation of the member's last completed sync.
    generation: u32,
    last_poll: Timestamp,
    max_poll_interval: Duration,
    /// Rung when the member has something to do at its next poll.
    bell: Doorbell,
}

/// A member's identity, held by its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub(crate) group: String,
    pub(crate) member_id: String,
}

/// What a member is asked to do at a poll: release `revoke`, then call
/// [`GroupCoordinator::complete_sync`] with `generation`.
#[derive(Debug)]
pub(crate) struct SyncPlan {
    pub(crate) generation: u32,
    pub(crate) revoke: Vec<TopicPartition>,
}

/// How a consumer joins a group.
#[derive(Debug)]
pub(crate) struct JoinSpec {
    pub(crate) topics: BTreeSet<TopicName>,
    pub(crate) assignor: Assignor,
    pub(crate) max_poll_interval: Duration,
    pub(crate) bell: Doorbell,
}

/// A group's members, assignment and committed offsets, from
/// [`Log::describe_group`](crate::Log::describe_group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group's id.
    pub group: String,
    /// Incremented by every rebalance.
    pub generation: u32,
    /// The assignor in use; `None` while the group has no members.
    pub assignor: Option<Assignor>,
    /// The members, by id.
    pub members: Vec<MemberDescription>,
    /// Committed offsets and lag of every partition the group has committed
    /// or owns, in order.
    pub offsets: Vec<PartitionLag>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member's id.
    pub member_id: String,
    /// The topics it subscribes to.
    pub topics: Vec<TopicName>,
    /// The partitions it owns now.
    pub assignment: Vec<TopicPartition>,
}

/// A partition's committed offset and lag for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The committed offset, if any.
    pub committed: Option<OffsetAndMetadata>,
    /// The partition's end offset.
    pub end_offset: crate::types::Offset,
    /// Records between the committed offset (or the start of the log, if
    /// none) and the end.
    pub lag: u64,
}

impl GroupCoordinator {
    pub(crate) fn load(
        offsets: Arc<Topic>,
        clock: Arc<dyn Clock>,
        partitions: HashMap<TopicName, u32>,
    ) -> Result<Self> {
        Ok(GroupCoordinator {
            offsets: OffsetStore::load(offsets)?,
            clock,
            partitions: RwLock::new(partitions),
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
            external: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Adds a member to `group` (creating the group) and rebalances it.
    pub(crate) fn join(&self, group: &str, spec: JoinSpec) -> Result<Membership> {
        check_group_id(group)?;
        if spec.topics.is_empty() {
            return Err(Error::InvalidArgument {
                what: "topics",
                reason: "a subscription needs at least one topic".into(),
            });
        }
        let g = self.group_entry(group);
        let mut g = g.lock();
        if self.external.lock().contains(group) {
            return Err(Error::InvalidArgument {
                what: "group",
                reason: format!("{group} is a Kafka-protocol (classic) group served by the broker"),
            });
        }
        if let Some(a) = g.assignor.filter(|a| *a != spec.assignor) {
            return Err(Error::InvalidArgument {
                what: "assignor",
                reason: format!(
                    "group {group} uses {}, this consumer asks for {}",
                    a.name(),
                    spec.assignor.name()
                ),
            });
        }
        g.assignor = Some(spec.assignor);
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        let member_id = format!("{group}-member-{n}");
        g.members.insert(
            member_id.clone(),
            Member {
                topics: spec.topics,
                target: BTreeSet::new(),
                owned: BTreeSet::new(),
                generation: 0,
                last_poll: self.clock.now(),
                max_poll_interval: spec.max_poll_interval,
                bell: spec.bell,
            },
        );
        g.rebalance(&self.partitions.read());
        Ok(Membership {
            group: group.to_owned(),
            member_id,
        })
    }

    /// Records a poll of the member and says what it must do: `None` if its
    /// assignment is settled, else the partitions to release first.
    ///
    /// [`Error::StaleGeneration`] if the member is no longer in the group
    /// (it left, or stopped polling for longer than `max_poll_interval`).
    pub(crate) fn poll(&self, m: &Membership) -> Result<Option<SyncPlan>> {
        self.expire_members_of(&m.group);
        let g = self.group(&m.group, m)?;
        let mut g = g.lock();
        let eager = !g.assignor.is_some_and(|a| a.is_cooperative());
        let generation = g.generation;
        let now = self.clock.now();
        let owners = &g.owners;
        let member = match g.members.get(&m.member_id) {
            Some(member) => member,
            None => return Err(stale(&g, m, 0)),
        };
        let revoke: Vec<TopicPartition> = match (eager, member.generation < generation) {
            (true, true) => member.owned.iter().cloned().collect(),
            _ => member.owned.difference(&member.target).cloned().collect(),
        };
        let can_take = member
            .target
            .difference(&member.owned)
            .any(|tp| !owners.contains_key(tp));
        let settled = member.generation == generation && revoke.is_empty() && !can_take;
        if let Some(member) = g.members.get_mut(&m.member_id) {
            member.last_poll = now;
        }
        Ok((!settled).then_some(SyncPlan { generation, revoke }))
    }

    /// Releases `revoked` and takes every partition of the member's target
    /// that nobody owns; returns the partitions taken.
    pub(crate) fn complete_sync(
        &self,
        m: &Membership,
        plan: &SyncPlan,
    ) -> Result<Vec<TopicPartition>> {
        let g = self.group(&m.group, m)?;
        let mut g = g.lock();
        let Group {
            members, owners, ..
        } = &mut *g;
        let Some(member) = members.get_mut(&m.member_id) else {
            return Err(stale(&g, m, plan.generation));
        };
        for tp in &plan.revoke {
            member.owned.remove(tp);
            if owners.get(tp) == Some(&m.member_id) {
                owners.remove(tp);
            }
        }
        let mut taken = Vec::new();
        for tp in member.target.difference(&member.owned) {
            if !owners.contains_key(tp) {
                taken.push(tp.clone());
            }
        }
        for tp in &taken {
            owners.insert(tp.clone(), m.member_id.clone());
            member.owned.insert(tp.clone());
        }
        member.generation = plan.generation;
        // Whoever waits for a partition released here can take it now.
        if !plan.revoke.is_empty() {
            for (id, other) in members.iter() {
                if id != &m.member_id && plan.revoke.iter().any(|tp| other.target.contains(tp)) {
                    other.bell.ring();
                }
            }
        }
        Ok(taken)
    }

    /// Removes the member; its partitions go to the others.
    pub(crate) fn leave(&self, m: &Membership) {
        let Some(g) = self.groups.lock().get(&m.group).cloned() else {
            return;
        };
        let mut g = g.lock();
        if g.remove_member(&m.member_id) {
            g.rebalance(&self.partitions.read());
        }
    }

    /// Commits `offsets` for the member, which must be current and own every
    /// partition named. Nothing is written otherwise.
    pub(crate) fn commit(
        &self,
        m: &Membership,
        generation: u32,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        let g = self.group(&m.group, m)?;
        let g = g.lock();
        let member = match g.members.get(&m.member_id) {
            Some(member) if member.generation == generation => member,
            _ => return Err(stale(&g, m, generation)),
        };
        self.check_offsets(offsets)?;
        if let Some((tp, _)) = offsets.iter().find(|(tp, _)| !member.owned.contains(tp)) {
            return Err(Error::InvalidArgument {
                what: "offsets",
                reason: format!("{tp} is not assigned to member {}", m.member_id),
            });
        }
        self.offsets.commit(&m.group, offsets, self.clock.now())
    }

    /// Commits `offsets` for `group` on behalf of a consumer outside it (one
    /// with a manual assignment), as Kafka allows while the group has no
    /// members. The group's lock is held across the write, so no member can
    /// join in between.
    pub(crate) fn commit_standalone(
        &self,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        check_group_id(group)?;
        let g = self.group_entry(group);
        let g = g.lock();
        if !g.members.is_empty() {
            return Err(Error::InvalidArgument {
                what: "group",
                reason: format!("{group} has members; only they commit for it while it does"),
            });
        }
        self.check_offsets(offsets)?;
        self.offsets.commit(group, offsets, self.clock.now())
    }

    /// Marks `group` as managed elsewhere (the broker's classic groups), so
    /// in-process consumers cannot join it; [`Error::InvalidArgument`] if
    /// in-process members have it now. Idempotent.
    #[cfg(feature = "broker")]
    pub(crate) fn claim_external(&self, group: &str) -> Result<()> {
        check_group_id(group)?;
        let g = self.group_entry(group);
        let g = g.lock();
        if !g.members.is_empty() {
            return Err(Error::InvalidArgument {
                what: "group",
                reason: format!("{group} has in-process members"),
            });
        }
        self.external.lock().insert(group.to_owned());
        Ok(())
    }

    /// Gives `group` back to in-process consumers.
    #[cfg(feature = "broker")]
    pub(crate) fn release_external(&self, group: &str) {
        self.external.lock().remove(group);
    }

    /// Checks that every offset fits Kafka's format and names a partition
    /// that exists.
    fn check_offsets(&self, offsets: &[(TopicPartition, OffsetAndMetadata)]) -> Result<()> {
        let counts = self.partitions.read();
        for (tp, om) in offsets {
            if om.metadata.len() > OFFSET_METADATA_MAX_BYTES {
                return Err(Error::InvalidArgument {
                    what: "metadata",
                    reason: format!(
                        "{} bytes exceeds the limit of {OFFSET_METADATA_MAX_BYTES}",
                        om.metadata.len()
                    ),
                });
            }
            if i64::try_from(om.offset.0).is_err() {
                return Err(Error::InvalidArgument {
                    what: "offset",
                    reason: format!("{} does not fit Kafka's int64", om.offset),
                });
            }
            match counts.get(&tp.topic) {
                None => {
                    return Err(Error::UnknownTopic {
                        topic: tp.topic.to_string(),
                    })
                }
                Some(&n) if tp.partition.0 >= n => {
                    return Err(Error::UnknownPartition {
                        topic: tp.topic.to_string(),
                        partition: tp.partition.0,
                        partitions: n,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The committed offset of `group` for `tp`.
    pub(crate) fn committed(&self, group: &str, tp: &TopicPartition) -> Option<OffsetAndMetadata> {
        self.offsets.get(group, tp)
    }

    /// Removes members that have not polled within their `max_poll_interval`.
    pub(crate) fn expire_members(&self) {
        let groups: Vec<_> = self.groups.lock().values().cloned().collect();
        for g in groups {
            g.lock().expire(self.clock.now(), &self.partitions.read());
        }
    }

    fn expire_members_of(&self, group: &str) {
        let g = self.groups.lock().get(group).cloned();
        if let Some(g) = g {
            g.lock().expire(self.clock.now(), &self.partitions.read());
        }
    }

    /// Records that `topic` now has `partitions` partitions (`None`: it was
    /// deleted) and rebalances the groups subscribed to it.
    pub(crate) fn topic_changed(&self, topic: &TopicName, partitions: Option<u32>) {
        {
            let mut counts = self.partitions.write();
            match partitions {
                Some(n) => counts.insert(topic.clone(), n),
                None => counts.remove(topic),
            };
        }
        let groups: Vec<_> = self.groups.lock().values().cloned().collect();
        for g in groups {
            let mut g = g.lock();
            if g.members.values().any(|m| m.topics.contains(topic)) {
                g.rebalance(&self.partitions.read());
            }
        }
    }

    /// Forgets the committed offsets of a deleted topic and rebalances the
    /// groups subscribed to it.
    pub(crate) fn topic_deleted(&self, topic: &TopicName) -> Result<()> {
        self.topic_changed(topic, None);
        self.offsets.delete_topic(topic)
    }

    /// Ids of groups with members or committed offsets, sorted.
    pub(crate) fn list(&self) -> Vec<String> {
        let mut ids: BTreeSet<String> = self.offsets.groups().into_iter().collect();
        let groups: Vec<_> = self.groups.lock().values().cloned().collect();
        for g in groups {
            let g = g.lock();
            if !g.members.is_empty() {
                ids.insert(g.id.clone());
            }
        }
        ids.into_iter().collect()
    }

    /// Members and committed offsets of `group`; `end_offset` gives a
    /// partition's end offset for the lag.
    pub(crate) fn describe(
        &self,
        group: &str,
        end_offset: &dyn Fn(
            &TopicPartition,
        ) -> Option<(crate::types::Offset, crate::types::Offset)>,
    ) -> Result<GroupDescription> {
        check_group_id(group)?;
        let committed = self.offsets.group(group);
        let g = self.groups.lock().get(group).cloned();
        let (generation, assignor, members) = match g {
            Some(g) => {
                let g = g.lock();
                let members = g
                    .members
                    .iter()
                    .map(|(id, m)| MemberDescription {
                        member_id: id.clone(),
                        topics: m.topics.iter().cloned().collect(),
                        assignment: m.owned.iter().cloned().collect(),
                    })
                    .collect();
                (g.generation, g.assignor, members)
            }
            None => (0, None, Vec::new()),
        };
        let mut tps: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
        for m in &members {
            let m: &MemberDescription = m;
            tps.extend(m.assignment.iter().cloned());
        }
        let offsets = tps
            .into_iter()
            .filter_map(|tp| {
                let (start, end) = end_offset(&tp)?;
                let committed = committed.get(&tp).cloned();
                let from = committed.as_ref().map_or(start, |c| c.offset);
                Some(PartitionLag {
                    lag: end.0.saturating_sub(from.0),
                    end_offset: end,
                    committed,
                    partition: tp,
                })
            })
            .collect();
        Ok(GroupDescription {
            group: group.to_owned(),
            generation,
            assignor,
            members,
            offsets,
        })
    }

    /// Wakes every member; their next poll finds the log closed.
    pub(crate) fn close(&self) {
        let groups: Vec<_> = self.groups.lock().values().cloned().collect();
        for g in groups {
            for m in g.lock().members.values() {
                m.bell.ring();
            }
        }
    }

    fn group_entry(&self, group: &str) -> Arc<Mutex<Group>> {
        let mut groups = self.groups.lock();
        Arc::clone(groups.entry(group.to_owned()).or_insert_with(|| {
            Arc::new(Mutex::new(Group {
                id: group.to_owned(),
                assignor: None,
                generation: 0,
                members: BTreeMap::new(),
                owners: HashMap::new(),
            }))
        }))
    }

    fn group(&self, group: &str, m: &Membership) -> Result<Arc<Mutex<Group>>> {
        self.groups
            .lock()
            .get(group)
            .cloned()
            .ok_or_else(|| Error::StaleGeneration {
                group: group.to_owned(),
                member: m.member_id.clone(),
                generation: 0,
                current: 0,
            })
    }
}

impl Group {
    /// Starts a new generation: computes every member's target and wakes
    /// them all to converge to it.
    fn rebalance(&mut self, counts: &HashMap<TopicName, u32>) {
        self.generation = self.generation.wrapping_add(1);
        let Some(assignor) = self.assignor else {
            return;
        };
        let mut partitions = BTreeMap::new();
        for m in self.members.values() {
            for t in &m.topics {
                if let Some(&n) = counts.get(t) {
                    partitions.insert(t.clone(), n);
                }
            }
        }
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .iter()
            .map(|(id, m)| MemberSpec {
                id,
                topics: &m.topics,
                owned: &m.target,
            })
            .collect();
        let mut targets = assignor::assign(assignor, &specs, &partitions);
        for (id, m) in self.members.iter_mut() {
            m.target = targets.remove(id).unwrap_or_default();
            m.bell.ring();
        }
    }

    fn remove_member(&mut self, id: &str) -> bool {
        let Some(m) = self.members.remove(id) else {
            return false;
        };
        for tp in &m.owned {
            self.owners.remove(tp);
        }
        // Its consumer, if it still polls, learns it was removed.
        m.bell.ring();
        if self.members.is_empty() {
            self.assignor = None;
        }
        true
    }

    fn expire(&mut self, now: Timestamp, counts: &HashMap<TopicName, u32>) {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                let limit = i64::try_from(m.max_poll_interval.as_millis()).unwrap_or(i64::MAX);
                now.0.saturating_sub(m.last_poll.0) > limit
            })
            .map(|(id, _)| id.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        for id in &expired {
            self.remove_member(id);
        }
        self.rebalance(counts);
    }
}

fn stale(g: &Group, m: &Membership, generation: u32) -> Error {
    Error::StaleGeneration {
        group: g.id.clone(),
        member: m.member_id.clone(),
        generation,
        current: g.generation,
    }
}

pub(crate) fn check_group_id(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > GROUP_ID_MAX_BYTES {
        return Err(Error::InvalidArgument {
            what: "group",
            reason: format!(
                "a group id has 1 to {GROUP_ID_MAX_BYTES} bytes, got {}",
                group.len()
            ),
        });
    }
    Ok(())
}
