//! The group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups and ListGroups, over `classic`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::classic::{JoinOutcome, JoinSpec, State, Step, SyncOutcome};
use super::conn::Ctx;
use super::errors::{self, Code, NONE};
use super::Shared;
use crate::group::GROUP_ID_MAX_BYTES;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Whether `id` can name a group.
fn valid_group(id: &str) -> bool {
    !id.is_empty() && id.len() <= GROUP_ID_MAX_BYTES
}

/// Whether the log's in-process coordinator has members in `group`: a
/// group is either classic or in-process, never both.
fn in_process_members(shared: &Shared, group: &str) -> bool {
    shared
        .log
        .describe_group(group)
        .is_ok_and(|d| !d.members.is_empty())
}

/// FindCoordinator: this broker coordinates every group.
pub(crate) fn find_coordinator(
    shared: &Arc<Shared>,
    _req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    FindCoordinatorResponse::default()
        .with_node_id(BrokerId(shared.config.node_id))
        .with_host(s(shared.advertised_host.clone()))
        .with_port(shared.advertised_port)
}

pub(crate) async fn join(
    shared: &Arc<Shared>,
    req: JoinGroupRequest,
    ctx: &Ctx,
) -> JoinGroupResponse {
    let group_id = req.group_id.0.as_str().to_owned();
    let outcome = join_outcome(shared, req, ctx).await;
    let members = outcome
        .members
        .into_iter()
        .map(|(id, meta)| {
            JoinGroupResponseMember::default()
                .with_member_id(s(id))
                .with_metadata(meta)
        })
        .collect();
    tracing::debug!(group = %group_id, code = outcome.error, member = %outcome.member_id, generation = outcome.generation, "join answered");
    let resp = JoinGroupResponse::default();
    // v7 added the protocol type; older versions must leave it unset.
    let resp = match ctx.version >= 7 {
        true => resp.with_protocol_type(outcome.protocol_type.map(s)),
        false => resp,
    };
    resp.with_error_code(outcome.error)
        .with_generation_id(outcome.generation)
        .with_protocol_name(Some(s(outcome.protocol.unwrap_or_default())))
        .with_leader(s(outcome.leader))
        .with_member_id(s(outcome.member_id))
        .with_members(members)
}

async fn join_outcome(shared: &Arc<Shared>, req: JoinGroupRequest, ctx: &Ctx) -> JoinOutcome {
    let group_id = req.group_id.0.as_str().to_owned();
    let refuse = |error: ResponseError| JoinOutcome {
        error: errors::of(error),
        generation: -1,
        member_id: req.member_id.as_str().to_owned(),
        ..JoinOutcome::default()
    };
    if !valid_group(&group_id) {
        return refuse(ResponseError::InvalidGroupId);
    }
    let session = Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(0));
    let cfg = &shared.config;
    if session < cfg.group_min_session_timeout || session > cfg.group_max_session_timeout {
        return refuse(ResponseError::InvalidSessionTimeout);
    }
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance = match req.rebalance_timeout_ms {
        ms if ctx.version >= 1 && ms > 0 => Duration::from_millis(ms as u64),
        _ => session,
    }
    .min(cfg.group_max_session_timeout);
    let Some(group) = shared.groups.get(&group_id, true) else {
        return refuse(ResponseError::CoordinatorNotAvailable);
    };
    let spec = JoinSpec {
        member_id: req.member_id.as_str().to_owned(),
        client_id: ctx.client_id.clone(),
        client_host: ctx.peer.ip().to_string(),
        protocol_type: req.protocol_type.as_str().to_owned(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.as_str().to_owned(), p.metadata))
            .collect(),
        session_timeout: session,
        rebalance_timeout: rebalance,
        require_known_id: ctx.version >= 4,
    };
    let new_id = shared.groups.new_member_id(&ctx.client_id);
    let step = {
        let mut g = group.lock();
        // Claimed under the classic group's lock, so the timer cannot give
        // the group back to in-process consumers in between.
        if let Err(e) = shared.log.inner.groups.claim_external(&group_id) {
            tracing::warn!(group = %group_id, "a classic member cannot join: {e}");
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        g.join(spec, new_id, Instant::now())
    };
    let member_id = req.member_id.as_str().to_owned();
    match step {
        Step::Now(o) => o,
        Step::Wait(rx) => wait(shared, rx).await.unwrap_or_else(|| JoinOutcome {
            error: errors::of(ResponseError::RebalanceInProgress),
            generation: -1,
            member_id,
            ..JoinOutcome::default()
        }),
    }
}

/// Waits for a group answer; `None` if the server stops or the answer was
/// dropped (the member joined again from another request).
async fn wait<T>(shared: &Shared, rx: tokio::sync::oneshot::Receiver<T>) -> Option<T> {
    let mut stopping = shared.stopping.clone();
    tokio::select! {
        r = rx => r.ok(),
        _ = stopping.wait_for(|s| *s) => None,
    }
}

pub(crate) async fn sync(
    shared: &Arc<Shared>,
    req: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = req.group_id.0.as_str();
    let outcome = match shared.groups.get(group_id, false) {
        None => SyncOutcome {
            error: errors::of(ResponseError::UnknownMemberId),
            ..SyncOutcome::default()
        },
        Some(group) => {
            let assignments = req
                .assignments
                .into_iter()
                .map(|a| (a.member_id.as_str().to_owned(), a.assignment))
                .collect();
            let step = group.lock().sync(
                req.member_id.as_str(),
                req.generation_id,
                assignments,
                Instant::now(),
            );
            match step {
                Step::Now(o) => o,
                Step::Wait(rx) => wait(shared, rx).await.unwrap_or_else(|| SyncOutcome {
                    error: errors::of(ResponseError::RebalanceInProgress),
                    ..SyncOutcome::default()
                }),
            }
        }
    };
    let (protocol_type, protocol) = match shared.groups.get(group_id, false) {
        // v5 added these; older versions must leave them unset.
        Some(g) if version >= 5 => {
            let g = g.lock();
            (g.protocol_type.clone(), g.protocol.clone())
        }
        _ => (None, None),
    };
    tracing::debug!(group = %group_id, member = %req.member_id.as_str(), code = outcome.error, "sync answered");
    SyncGroupResponse::default()
        .with_error_code(outcome.error)
        .with_assignment(outcome.assignment)
        .with_protocol_type(protocol_type.map(s))
        .with_protocol_name(protocol.map(s))
}

pub(crate) fn heartbeat(shared: &Arc<Shared>, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = match shared.groups.get(req.group_id.0.as_str(), false) {
        None => errors::of(ResponseError::UnknownMemberId),
        Some(g) => g
            .lock()
            .heartbeat(req.member_id.as_str(), req.generation_id, Instant::now()),
    };
    if code != NONE {
        tracing::debug!(group = %req.group_id.0.as_str(), member = %req.member_id.as_str(), code, "heartbeat refused");
    }
    HeartbeatResponse::default().with_error_code(code)
}

pub(crate) fn leave(shared: &Arc<Shared>, req: LeaveGroupRequest) -> LeaveGroupResponse {
    // v0-2 name one member; v3+ a list of them.
    let ids: Vec<String> = match req.members.is_empty() {
        true => vec![req.member_id.as_str().to_owned()],
        false => req
            .members
            .iter()
            .map(|m| m.member_id.as_str().to_owned())
            .collect(),
    };
    let group = shared.groups.get(req.group_id.0.as_str(), false);
    let now = Instant::now();
    let results: Vec<(String, Code)> = ids
        .into_iter()
        .map(|id| {
            let code = match &group {
                None => errors::of(ResponseError::UnknownMemberId),
                Some(g) => g.lock().leave(&id, now),
            };
            (id, code)
        })
        .collect();
    let top = match req.members.is_empty() {
        true => results.first().map_or(NONE, |(_, c)| *c),
        false => NONE,
    };
    let members = match req.members.is_empty() {
        true => Vec::new(),
        false => results
            .into_iter()
            .map(|(id, code)| {
                MemberResponse::default()
                    .with_member_id(s(id))
                    .with_error_code(code)
            })
            .collect(),
    };
    LeaveGroupResponse::default()
        .with_error_code(top)
        .with_members(members)
}

pub(crate) fn describe(shared: &Arc<Shared>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| describe_one(shared, id))
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

fn describe_one(shared: &Shared, id: GroupId) -> DescribedGroup {
    let name = id.0.as_str().to_owned();
    let out = DescribedGroup::default()
        .with_group_id(id)
        .with_authorized_operations(i32::MIN);
    if !valid_group(&name) {
        return out.with_error_code(errors::of(ResponseError::InvalidGroupId));
    }
    if let Some(g) = shared.groups.get(&name, false) {
        let g = g.lock();
        if g.state != State::Empty || !g.members.is_empty() {
            let members = g
                .members
                .iter()
                .map(|(mid, m)| {
                    let meta = m
                        .protocols
                        .iter()
                        .find(|(n, _)| Some(n) == g.protocol.as_ref())
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default();
                    DescribedGroupMember::default()
                        .with_member_id(s(mid.clone()))
                        .with_client_id(s(m.client_id.clone()))
                        .with_client_host(s(format!("/{}", m.client_host)))
                        .with_member_metadata(meta)
                        .with_member_assignment(m.assignment.clone())
                })
                .collect();
            return out
                .with_group_state(s(g.state.name()))
                .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
                .with_protocol_data(s(g.protocol.clone().unwrap_or_default()))
                .with_members(members);
        }
    }
    // An in-process group (or one that only has committed offsets).
    match shared.log.describe_group(&name) {
        Ok(d) if !d.members.is_empty() => {
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(s(m.member_id))
                        .with_client_id(s("moldau-in-process"))
                        .with_client_host(s("/in-process"))
                })
                .collect();
            out.with_group_state(s("Stable"))
                .with_protocol_type(s("consumer"))
                .with_protocol_data(s(d.assignor.map(|a| a.name()).unwrap_or_default()))
                .with_members(members)
        }
        _ => out.with_group_state(s("Empty")),
    }
}

pub(crate) fn list(
    shared: &Arc<Shared>,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut groups: Vec<(String, String, String)> = shared
        .groups
        .list()
        .into_iter()
        .map(|(id, state, ptype)| (id, state.name().to_owned(), ptype.unwrap_or_default()))
        .collect();
    for id in shared.log.list_groups() {
        if !groups.iter().any(|(g, _, _)| *g == id) {
            let state = match in_process_members(shared, &id) {
                true => "Stable",
                false => "Empty",
            };
            groups.push((id, state.to_owned(), "consumer".to_owned()));
        }
    }
    let wanted: Vec<&str> = req.states_filter.iter().map(|s| s.as_str()).collect();
    let listed = groups
        .into_iter()
        .filter(|(_, state, _)| {
            wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(state))
        })
        .map(|(id, state, ptype)| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(s(id)))
                .with_protocol_type(s(ptype));
            // v4 added the state.
            match version >= 4 {
                true => g.with_group_state(s(state)),
                false => g,
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

/// The code for a commit by a member of a classic group, or NONE.
pub(crate) fn check_commit(shared: &Shared, group: &str, member: &str, generation: i32) -> Code {
    match shared.groups.get(group, false) {
        Some(g) => g.lock().check_commit(member, generation, Instant::now()),
        None if generation < 0 => NONE,
        None => errors::of(ResponseError::UnknownMemberId),
    }
}
