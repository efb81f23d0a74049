//! Kafka's classic consumer-group protocol with this broker as coordinator:
//! the group state machine (Empty → PreparingRebalance → CompletingRebalance
//! → Stable), member ids, generations, and session and rebalance timeouts.
//!
//! A JoinGroup waits until every known member has rejoined (or the rebalance
//! timeout removes those that did not); the leader then gets every member's
//! subscription, computes the assignment client-side and sends it with its
//! SyncGroup, which answers the followers waiting in theirs. Waiting requests
//! hold a oneshot sender in the member; a timer task ([`run_timer`]) expires
//! sessions and rebalances. Offsets are committed to the log's offset store
//! (see `offsets`); this module only decides whether a commit is current.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::errors::{self, Code, NONE};
use super::Shared;

/// Most members of one group (Kafka's `group.max.size` default is unlimited;
/// a bound keeps one group from holding unbounded memory).
const MEMBERS_MAX: usize = 1000;
/// Most groups; new groups are refused beyond it.
const GROUPS_MAX: usize = 100_000;

/// The classic groups of one broker.
#[derive(Debug, Default)]
pub(crate) struct ClassicGroups {
    /// Groups by id. Held only to find, add or list groups; each group has
    /// its own lock, held for state changes only (never across I/O or an await).
    groups: Mutex<HashMap<String, Arc<Mutex<Group>>>>,
    next_member: AtomicU64,
}

/// A group's phase, as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// One classic group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) state: State,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until they join or expire.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
}

/// One member of a classic group.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    /// Supported assignment protocols with their metadata, in preference order.
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    /// The waiting JoinGroup of this member, if any.
    join: Option<oneshot::Sender<JoinOutcome>>,
    /// The waiting SyncGroup of this member, if any.
    sync: Option<oneshot::Sender<SyncOutcome>>,
    /// When the session expires unless the member is heard from.
    expires: Instant,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinOutcome {
    pub(crate) error: Code,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: String,
    pub(crate) member_id: String,
    /// Every member's metadata for the chosen protocol; for the leader only.
    pub(crate) members: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncOutcome {
    pub(crate) error: Code,
    pub(crate) assignment: Bytes,
}

/// An answer now, or one to wait for.
#[derive(Debug)]
pub(crate) enum Step<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// What a JoinGroup asks for.
#[derive(Debug)]
pub(crate) struct JoinSpec {
    pub(crate) member_id: String,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    /// v4+: a new member first gets its id with MEMBER_ID_REQUIRED.
    pub(crate) require_known_id: bool,
}

fn fail(error: ResponseError) -> Code {
    errors::of(error)
}

impl ClassicGroups {
    pub(crate) fn new() -> ClassicGroups {
        ClassicGroups::default()
    }

    /// The group `id`, created empty if `create`.
    pub(crate) fn get(&self, id: &str, create: bool) -> Option<Arc<Mutex<Group>>> {
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get(id) {
            return Some(Arc::clone(g));
        }
        if !create || groups.len() >= GROUPS_MAX {
            return None;
        }
        let g = Arc::new(Mutex::new(Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
        }));
        groups.insert(id.to_owned(), Arc::clone(&g));
        Some(g)
    }

    /// Every group's id with its state and protocol type.
    pub(crate) fn list(&self) -> Vec<(String, State, Option<String>)> {
        let groups: Vec<_> = self
            .groups
            .lock()
            .iter()
            .map(|(id, g)| (id.clone(), Arc::clone(g)))
            .collect();
        groups
            .into_iter()
            .map(|(id, g)| {
                let g = g.lock();
                (id, g.state, g.protocol_type.clone())
            })
            .collect()
    }

    /// A fresh member id, unique within this broker's lifetime.
    pub(crate) fn new_member_id(&self, client_id: &str) -> String {
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        let prefix: String = client_id.chars().take(64).collect();
        format!("{prefix}-{n}-{}", std::process::id())
    }

    /// Expires sessions and completes overdue rebalances; `release` is
    /// called, under the group's lock, for each group left without members.
    pub(crate) fn tick(&self, now: Instant, release: &dyn Fn(&str)) {
        let groups: Vec<_> = self
            .groups
            .lock()
            .iter()
            .map(|(id, g)| (id.clone(), Arc::clone(g)))
            .collect();
        for (id, g) in groups {
            let mut g = g.lock();
            g.tick(now);
            if g.members.is_empty() && g.pending.is_empty() {
                release(&id);
            }
        }
    }
}

impl Group {
    /// Adds or refreshes a member and starts (or joins) a rebalance.
    pub(crate) fn join(
        &mut self,
        spec: JoinSpec,
        new_id: String,
        now: Instant,
    ) -> Step<JoinOutcome> {
        let refuse = |error| {
            Step::Now(JoinOutcome {
                error,
                member_id: spec.member_id.clone(),
                generation: -1,
                ..JoinOutcome::default()
            })
        };
        if spec.protocols.is_empty() {
            return refuse(fail(ResponseError::InconsistentGroupProtocol));
        }
        if self.state != State::Empty || !self.members.is_empty() {
            let same_type = self.protocol_type.as_deref() == Some(spec.protocol_type.as_str());
            let shared = spec.protocols.iter().any(|(name, _)| {
                self.members
                    .iter()
                    .filter(|(id, _)| **id != spec.member_id)
                    .all(|(_, m)| m.protocols.iter().any(|(n, _)| n == name))
            });
            if !same_type || !shared {
                return refuse(fail(ResponseError::InconsistentGroupProtocol));
            }
        }
        let member_id = match spec.member_id.as_str() {
            "" if spec.require_known_id => {
                if self.pending.len() >= MEMBERS_MAX {
                    return refuse(fail(ResponseError::GroupMaxSizeReached));
                }
                self.pending
                    .insert(new_id.clone(), now + spec.session_timeout);
                return Step::Now(JoinOutcome {
                    error: fail(ResponseError::MemberIdRequired),
                    member_id: new_id,
                    generation: -1,
                    ..JoinOutcome::default()
                });
            }
            "" => new_id,
            id if self.pending.remove(id).is_some() || self.members.contains_key(id) => {
                id.to_owned()
            }
            _ => return refuse(fail(ResponseError::UnknownMemberId)),
        };
        if !self.members.contains_key(&member_id) && self.members.len() >= MEMBERS_MAX {
            return refuse(fail(ResponseError::GroupMaxSizeReached));
        }
        tracing::debug!(member = %member_id, state = self.state.name(), "classic member joins");
        let (tx, rx) = oneshot::channel();
        let member = self.members.entry(member_id).or_insert_with(|| Member {
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: spec.session_timeout,
            rebalance_timeout: spec.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            join: None,
            sync: None,
            expires: now,
        });
        member.client_id = spec.client_id;
        member.client_host = spec.client_host;
        member.session_timeout = spec.session_timeout;
        member.rebalance_timeout = spec.rebalance_timeout;
        member.protocols = spec.protocols;
        member.expires = now + spec.session_timeout;
        // A second join of the same member replaces the first; the first
        // caller gets nothing (its sender is dropped) and retries.
        member.join = Some(tx);
        self.protocol_type = Some(spec.protocol_type);
        if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now, false);
        Step::Wait(rx)
    }

    /// Answers a SyncGroup: the leader's assignment is stored and relayed.
    pub(crate) fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Step<SyncOutcome> {
        let refuse = |error| {
            Step::Now(SyncOutcome {
                error,
                assignment: Bytes::new(),
            })
        };
        let is_leader = self.leader.as_deref() == Some(member_id);
        let Some(member) = self.members.get_mut(member_id) else {
            return refuse(fail(ResponseError::UnknownMemberId));
        };
        if generation != self.generation {
            return refuse(fail(ResponseError::IllegalGeneration));
        }
        member.expires = now + member.session_timeout;
        match self.state {
            State::Empty => refuse(fail(ResponseError::UnknownMemberId)),
            State::PreparingRebalance => refuse(fail(ResponseError::RebalanceInProgress)),
            State::Stable => Step::Now(SyncOutcome {
                error: NONE,
                assignment: member.assignment.clone(),
            }),
            State::CompletingRebalance if !is_leader => {
                let (tx, rx) = oneshot::channel();
                member.sync = Some(tx);
                Step::Wait(rx)
            }
            State::CompletingRebalance => {
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for (id, m) in self.members.iter_mut() {
                    m.assignment = given.remove(id).unwrap_or_default();
                    if let Some(tx) = m.sync.take() {
                        // A follower that went away no longer waits; nothing to do.
                        let _ = tx.send(SyncOutcome {
                            error: NONE,
                            assignment: m.assignment.clone(),
                        });
                    }
                }
                self.state = State::Stable;
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Step::Now(SyncOutcome {
                    error: NONE,
                    assignment,
                })
            }
        }
    }

    /// Answers a Heartbeat, keeping the member's session alive.
    pub(crate) fn heartbeat(&mut self, member_id: &str, generation: i32, now: Instant) -> Code {
        let Some(member) = self.members.get_mut(member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if generation != self.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        member.expires = now + member.session_timeout;
        match self.state {
            State::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            _ => NONE,
        }
    }

    /// Removes a member (LeaveGroup); the others rebalance.
    pub(crate) fn leave(&mut self, member_id: &str, now: Instant) -> Code {
        if self.pending.remove(member_id).is_some() {
            return NONE;
        }
        if self.members.remove(member_id).is_none() {
            return fail(ResponseError::UnknownMemberId);
        }
        self.after_removal(now);
        NONE
    }

    /// Whether a commit by `member_id` at `generation` may be written.
    pub(crate) fn check_commit(&mut self, member_id: &str, generation: i32, now: Instant) -> Code {
        if generation < 0 && member_id.is_empty() {
            // A consumer outside the group (manual assignment): only while
            // the group has no members, as Kafka.
            return match self.members.is_empty() {
                true => NONE,
                false => fail(ResponseError::UnknownMemberId),
            };
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if generation != self.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        member.expires = now + member.session_timeout;
        match self.state {
            State::CompletingRebalance => fail(ResponseError::RebalanceInProgress),
            _ => NONE,
        }
    }

    fn after_removal(&mut self, now: Instant) {
        match self.state {
            State::PreparingRebalance => self.try_complete_join(now, false),
            _ => {
                self.prepare_rebalance(now);
                self.try_complete_join(now, false);
            }
        }
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        // Followers waiting for the old generation's assignment must rejoin.
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync.take() {
                // A follower that went away no longer waits; nothing to do.
                let _ = tx.send(SyncOutcome {
                    error: fail(ResponseError::RebalanceInProgress),
                    assignment: Bytes::new(),
                });
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.state = State::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
    }

    /// Ends the join phase once every member has rejoined, or when `force`d
    /// by the rebalance timeout (members that did not rejoin are removed).
    fn try_complete_join(&mut self, now: Instant, force: bool) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let all_in = self.members.values().all(|m| m.join.is_some()) && self.pending.is_empty();
        if !all_in && !force {
            return;
        }
        self.members.retain(|_, m| m.join.is_some());
        self.pending.clear();
        self.rebalance_deadline = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        let protocol = self.choose_protocol();
        let leader = match &self.leader {
            Some(l) if self.members.contains_key(l) => l.clone(),
            // Not empty (checked above).
            _ => self.members.keys().next().cloned().unwrap_or_default(),
        };
        let metadata: Vec<(String, Bytes)> = self
            .members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (id.clone(), meta)
            })
            .collect();
        self.state = State::CompletingRebalance;
        self.protocol = protocol.clone();
        self.leader = Some(leader.clone());
        tracing::debug!(
            generation = self.generation,
            leader = %leader,
            members = ?self.members.keys().collect::<Vec<_>>(),
            "classic group rebalanced"
        );
        for (id, m) in self.members.iter_mut() {
            m.expires = now + m.session_timeout;
            m.assignment = Bytes::new();
            if let Some(tx) = m.join.take() {
                let outcome = JoinOutcome {
                    error: NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: match *id == leader {
                        true => metadata.clone(),
                        false => Vec::new(),
                    },
                };
                // A member whose connection went away no longer waits; its
                // session expires and the group rebalances without it.
                let _ = tx.send(outcome);
            }
        }
    }

    /// The protocol every member supports that most members prefer.
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(&p)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|n| {
                (
                    votes.get(*n).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|c| c == *n)),
                )
            })
            .map(|n| (*n).clone())
    }

    fn tick(&mut self, now: Instant) {
        let pending = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now);
        if self.pending.len() < pending {
            // A rebalance may have been waiting only for them.
            self.try_complete_join(now, false);
        }
        // Members waiting in a join or sync are alive while their request is
        // open (a closed sender means the client's connection went away).
        let waiting = |t: Option<bool>| t.is_some_and(|closed| !closed);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                !waiting(m.join.as_ref().map(|t| t.is_closed()))
                    && !waiting(m.sync.as_ref().map(|t| t.is_closed()))
                    && m.expires <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(member = %id, "classic group member's session expired");
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.after_removal(now);
        }
        if self.state == State::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| d <= now)
        {
            self.try_complete_join(now, true);
        }
    }
}

/// Runs the group timer until the server stops.
pub(crate) async fn run_timer(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.config.group_timer_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stopping = shared.stopping.clone();
    loop {
        tokio::select! {
            _ = interval.tick() => {
                // An empty classic group goes back to in-process consumers.
                let coordinator = &shared.log.inner.groups;
                shared.groups.tick(Instant::now(), &|id| coordinator.release_external(id));
            }
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
