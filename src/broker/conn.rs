//! One client connection: frames in, requests run one at a time, responses
//! out in request order.
//!
//! Format of a request frame: `length: i32` (big-endian, bytes that follow),
//! then the request header (`api_key: i16`, `api_version: i16`,
//! `correlation_id: i32`, `client_id`, tagged fields in flexible versions)
//! and the body. A response frame is `length: i32`, the response header
//! (`correlation_id`, tagged fields in flexible versions) and the body.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, ProduceRequest,
    RequestHeader, ResponseHeader, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::SemaphorePermit;

use super::{admin, api_versions, fetch, groups, list_offsets, metadata, offsets, produce};
use super::{producer_ids, Shared};

/// Bytes of the fixed part of every request header: key, version, correlation id.
const HEADER_FIXED_BYTES: usize = 8;
/// Read and write buffer of a connection.
const BUFFER_BYTES: usize = 64 << 10;
/// Step by which a request body's buffer and its share of the request-byte
/// budget grow while the body arrives.
const CHUNK_BYTES: usize = 64 << 10;

/// What running one request produced.
pub(crate) enum Reply {
    /// A response frame to send.
    Frame(Bytes),
    /// Nothing to send (a Produce with acks=0).
    Nothing,
}

/// Why a connection is closed instead of answered.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

/// Serves one connection until the client closes it, it sends something
/// that cannot be answered, it idles or trickles past a limit
/// ([`BrokerConfig::connection_idle_timeout`](super::BrokerConfig),
/// `request_timeout`), or the server stops.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    // Responses are written whole; Nagle would only delay them.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(BUFFER_BYTES, rd);
    let mut wr = BufWriter::with_capacity(BUFFER_BYTES, wr);
    let mut stopping = shared.stopping.clone();
    let idle = shared.config.connection_idle_timeout;
    let limit = shared.config.request_timeout;
    loop {
        // Wait for the first byte of the next frame, at most the idle time.
        // Biased to the read: a request already received when the server
        // stops is still answered (graceful shutdown finishes in-flight work).
        tokio::select! {
            biased;
            r = tokio::time::timeout(idle, rd.fill_buf()) => match r {
                // The client closed the connection.
                Ok(Ok([])) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
                Err(_) => {
                    tracing::debug!(%peer, ?idle, "idle connection; closing it");
                    break;
                }
            },
            _ = stopping.wait_for(|s| *s) => break,
        }
        // From the first byte on, the whole frame must arrive within the
        // request timeout, however slowly the client sends it.
        // A stop cuts a frame still arriving (biased: not one already
        // buffered); its client was not answered and retries elsewhere.
        let received = tokio::select! {
            biased;
            r = tokio::time::timeout(limit, read_frame(&shared, &mut rd)) => r,
            _ = stopping.wait_for(|s| *s) => break,
        };
        let (body, _room) = match received {
            Ok(Ok(frame)) => frame,
            Ok(Err(Refused(why))) => {
                tracing::warn!(%peer, "{why}; closing the connection");
                break;
            }
            Err(_) => {
                tracing::warn!(
                    %peer,
                    ?limit,
                    "a request frame did not arrive within the request timeout; closing the connection"
                );
                break;
            }
        };
        match handle(&shared, body.freeze(), peer).await {
            Ok(Reply::Frame(frame)) => {
                if !sent(wr.write_all(&frame), limit, peer, "write").await {
                    break;
                }
            }
            Ok(Reply::Nothing) => {}
            Err(Refused(why)) => {
                tracing::warn!(%peer, "{why}; closing the connection");
                break;
            }
        }
        // Pipelined requests already buffered are answered before flushing,
        // so one write carries many responses.
        if rd.buffer().is_empty() && !sent(wr.flush(), limit, peer, "flush").await {
            break;
        }
    }
    // Bounded too: a client that reads nothing must not keep the task alive.
    match tokio::time::timeout(limit, wr.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "shutdown failed"),
        Err(_) => tracing::debug!(%peer, "shutdown timed out"),
    }
}

/// Reads one request frame: its length, checked before anything else, then
/// the body. The body's buffer and its share of
/// [`Shared::request_bytes`] grow [`CHUNK_BYTES`] at a time as bytes
/// arrive, so a frame declared large but sent slowly (or never) holds at most
/// what arrived plus one chunk, never its declared size.
async fn read_frame<'a>(
    shared: &'a Shared,
    rd: &mut BufReader<OwnedReadHalf>,
) -> Result<(BytesMut, Option<SemaphorePermit<'a>>), Refused> {
    let max = shared.config.max_request_bytes;
    let len = rd
        .read_i32()
        .await
        .map_err(|e| Refused(format!("connection ended inside a frame length: {e}")))?;
    let len = match usize::try_from(len) {
        Ok(n) if (HEADER_FIXED_BYTES..=max).contains(&n) => n,
        _ => {
            return Err(Refused(format!(
                "refused a frame length of {len} bytes (from {HEADER_FIXED_BYTES} to {max})"
            )))
        }
    };
    let mut body = BytesMut::with_capacity(len.min(CHUNK_BYTES));
    let mut room: Option<SemaphorePermit<'a>> = None;
    let mut held = 0usize;
    while body.len() < len {
        let target = len.min(body.len() + CHUNK_BYTES);
        if held < target {
            // At most CHUNK_BYTES, so it fits in u32.
            let more = u32::try_from(target - held).unwrap_or(u32::MAX);
            let Ok(permit) = shared.request_bytes.acquire_many(more).await else {
                return Err(Refused("the server is stopping".into()));
            };
            match &mut room {
                Some(r) => r.merge(permit),
                None => room = Some(permit),
            }
            held = target;
        }
        body.reserve(held - body.len());
        let space = held - body.len();
        let n = rd
            .read_buf(&mut (&mut body).limit(space))
            .await
            .map_err(|e| Refused(format!("read failed inside a frame: {e}")))?;
        if n == 0 {
            return Err(Refused(format!(
                "connection ended inside a frame ({} of {len} bytes)",
                body.len()
            )));
        }
    }
    Ok((body, room))
}

/// A decoded request body, one variant per supported API.
#[derive(Debug)]
pub(crate) enum Request {
    /// An ApiVersions request above the newest version: answered with a v0
    /// body naming the supported ranges (KIP-511).
    NewerApiVersions,
    /// ApiVersions: its body (the client's name) changes nothing in the answer.
    ApiVersions,
    Metadata(Box<MetadataRequest>),
    Produce(Box<ProduceRequest>),
    Fetch(Box<FetchRequest>),
    ListOffsets(Box<ListOffsetsRequest>),
    InitProducerId(Box<InitProducerIdRequest>),
    FindCoordinator(Box<FindCoordinatorRequest>),
    JoinGroup(Box<JoinGroupRequest>),
    SyncGroup(Box<SyncGroupRequest>),
    Heartbeat(Box<HeartbeatRequest>),
    LeaveGroup(Box<LeaveGroupRequest>),
    DescribeGroups(Box<DescribeGroupsRequest>),
    ListGroups(Box<ListGroupsRequest>),
    OffsetCommit(Box<OffsetCommitRequest>),
    OffsetFetch(Box<OffsetFetchRequest>),
    CreateTopics(Box<CreateTopicsRequest>),
    DeleteTopics(Box<DeleteTopicsRequest>),
    DescribeConfigs(Box<DescribeConfigsRequest>),
}

impl Request {
    /// The API's name, for logs and the fuzz target.
    #[cfg_attr(
        not(feature = "fuzzing"),
        expect(dead_code, reason = "used by the fuzzing entry point")
    )]
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Request::NewerApiVersions => "ApiVersions (newer)",
            Request::ApiVersions => "ApiVersions",
            Request::Metadata(_) => "Metadata",
            Request::Produce(_) => "Produce",
            Request::Fetch(_) => "Fetch",
            Request::ListOffsets(_) => "ListOffsets",
            Request::InitProducerId(_) => "InitProducerId",
            Request::FindCoordinator(_) => "FindCoordinator",
            Request::JoinGroup(_) => "JoinGroup",
            Request::SyncGroup(_) => "SyncGroup",
            Request::Heartbeat(_) => "Heartbeat",
            Request::LeaveGroup(_) => "LeaveGroup",
            Request::DescribeGroups(_) => "DescribeGroups",
            Request::ListGroups(_) => "ListGroups",
            Request::OffsetCommit(_) => "OffsetCommit",
            Request::OffsetFetch(_) => "OffsetFetch",
            Request::CreateTopics(_) => "CreateTopics",
            Request::DeleteTopics(_) => "DeleteTopics",
            Request::DescribeConfigs(_) => "DescribeConfigs",
        }
    }
}

/// A request frame's header fields and decoded body.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
    pub(crate) client_id: String,
    pub(crate) request: Request,
}

/// Decodes one request frame (what follows the length): the header, checks
/// of the API key and version against what is advertised, and the body.
/// Pure: the path every request takes before it runs, and what the
/// `request_frame` fuzz target drives.
pub(crate) fn decode_request(mut frame: Bytes) -> Result<Decoded, Refused> {
    if frame.len() < HEADER_FIXED_BYTES {
        return Err(Refused(format!(
            "a frame of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(key).map_err(|_| Refused(format!("unknown API key {key}")))?;
    if api == ApiKey::ApiVersions && version > api_versions::MAX_VERSION {
        return Ok(Decoded {
            version,
            correlation_id,
            client_id: String::new(),
            request: Request::NewerApiVersions,
        });
    }
    let Some(range) = api_versions::supported(api) else {
        return Err(Refused(format!("API {api:?} is not supported")));
    };
    if version < range.0 || version > range.1 {
        return Err(Refused(format!(
            "API {api:?} version {version} is outside {}-{}",
            range.0, range.1
        )));
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| Refused(format!("{api:?} v{version}: bad request header: {e}")))?;
    let client_id = header
        .client_id
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let request = match api {
        ApiKey::ApiVersions => {
            let _body: Box<ApiVersionsRequest> = decode(&mut frame, version, api)?;
            Request::ApiVersions
        }
        ApiKey::Metadata => Request::Metadata(decode(&mut frame, version, api)?),
        ApiKey::Produce => Request::Produce(decode(&mut frame, version, api)?),
        ApiKey::Fetch => Request::Fetch(decode(&mut frame, version, api)?),
        ApiKey::ListOffsets => Request::ListOffsets(decode(&mut frame, version, api)?),
        ApiKey::InitProducerId => Request::InitProducerId(decode(&mut frame, version, api)?),
        ApiKey::FindCoordinator => Request::FindCoordinator(decode(&mut frame, version, api)?),
        ApiKey::JoinGroup => Request::JoinGroup(decode(&mut frame, version, api)?),
        ApiKey::SyncGroup => Request::SyncGroup(decode(&mut frame, version, api)?),
        ApiKey::Heartbeat => Request::Heartbeat(decode(&mut frame, version, api)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(decode(&mut frame, version, api)?),
        ApiKey::DescribeGroups => Request::DescribeGroups(decode(&mut frame, version, api)?),
        ApiKey::ListGroups => Request::ListGroups(decode(&mut frame, version, api)?),
        ApiKey::OffsetCommit => Request::OffsetCommit(decode(&mut frame, version, api)?),
        ApiKey::OffsetFetch => Request::OffsetFetch(decode(&mut frame, version, api)?),
        ApiKey::CreateTopics => Request::CreateTopics(decode(&mut frame, version, api)?),
        ApiKey::DeleteTopics => Request::DeleteTopics(decode(&mut frame, version, api)?),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(decode(&mut frame, version, api)?),
        other => return Err(Refused(format!("API {other:?} is not supported"))),
    };
    Ok(Decoded {
        version,
        correlation_id,
        client_id,
        request,
    })
}

/// Decodes one request frame, runs it and encodes the response.
async fn handle(shared: &Arc<Shared>, frame: Bytes, peer: SocketAddr) -> Result<Reply, Refused> {
    let Decoded {
        version,
        correlation_id,
        client_id,
        request,
    } = decode_request(frame)?;
    let ctx = Ctx {
        version,
        correlation_id,
        client_id,
        peer,
    };
    match request {
        Request::NewerApiVersions => Ok(Reply::Frame(api_versions::unsupported(correlation_id))),
        Request::ApiVersions => respond(&ctx, &api_versions::handle()),
        Request::Metadata(req) => respond(&ctx, &metadata::handle(shared, *req, version).await),
        Request::Produce(req) => match produce::handle(shared, *req, version).await {
            Some(resp) => respond(&ctx, &resp),
            None => Ok(Reply::Nothing),
        },
        Request::Fetch(req) => respond(&ctx, &fetch::handle(shared, *req, version).await),
        Request::ListOffsets(req) => respond(&ctx, &list_offsets::handle(shared, *req)),
        Request::InitProducerId(req) => respond(&ctx, &producer_ids::handle(shared, *req)),
        Request::FindCoordinator(req) => respond(&ctx, &groups::find_coordinator(shared, *req)),
        Request::JoinGroup(req) => respond(&ctx, &groups::join(shared, *req, &ctx).await),
        Request::SyncGroup(req) => respond(&ctx, &groups::sync(shared, *req, version).await),
        Request::Heartbeat(req) => respond(&ctx, &groups::heartbeat(shared, *req)),
        Request::LeaveGroup(req) => respond(&ctx, &groups::leave(shared, *req)),
        Request::DescribeGroups(req) => respond(&ctx, &groups::describe(shared, *req)),
        Request::ListGroups(req) => respond(&ctx, &groups::list(shared, *req, version)),
        Request::OffsetCommit(req) => respond(&ctx, &offsets::commit(shared, *req).await),
        Request::OffsetFetch(req) => respond(&ctx, &offsets::fetch(shared, *req)),
        Request::CreateTopics(req) => {
            respond(&ctx, &admin::create_topics(shared, *req, version).await)
        }
        Request::DeleteTopics(req) => respond(&ctx, &admin::delete_topics(shared, *req).await),
        Request::DescribeConfigs(req) => respond(&ctx, &admin::describe_configs(shared, *req)),
    }
}

/// Who sent a request, and how to answer it.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
    pub(crate) client_id: String,
    pub(crate) peer: SocketAddr,
}

fn decode<T: Decodable>(frame: &mut Bytes, version: i16, api: ApiKey) -> Result<Box<T>, Refused> {
    T::decode(frame, version)
        .map(Box::new)
        .map_err(|e| Refused(format!("{api:?} v{version}: body does not decode: {e}")))
}

/// Encodes `resp` with its header into one length-prefixed frame.
fn respond<T: Encodable + HeaderVersion>(ctx: &Ctx, resp: &T) -> Result<Reply, Refused> {
    encode_frame(ctx.correlation_id, resp, ctx.version).map(Reply::Frame)
}

pub(crate) fn encode_frame<T: Encodable + HeaderVersion>(
    correlation_id: i32,
    resp: &T,
    version: i16,
) -> Result<Bytes, Refused> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = T::header_version(version);
    let failed = |e: &dyn std::fmt::Display| {
        let what = std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or_default();
        Refused(format!("{what} v{version} does not encode: {e}"))
    };
    let size = header
        .compute_size(header_version)
        .and_then(|h| resp.compute_size(version).map(|b| h + b))
        .map_err(|e| failed(&e))?;
    let len = i32::try_from(size).map_err(|e| failed(&e))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(len);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| failed(&e))?;
    resp.encode(&mut buf, version).map_err(|e| failed(&e))?;
    Ok(buf.freeze())
}

/// Runs a write of responses (`what`: "write" or "flush") within `limit`;
/// false, after logging why, if it failed or the client did not take the
/// bytes in time (the connection is then closed).
async fn sent(
    write: impl std::future::Future<Output = std::io::Result<()>>,
    limit: std::time::Duration,
    peer: SocketAddr,
    what: &str,
) -> bool {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "{what} failed");
            false
        }
        Err(_) => {
            tracing::warn!(%peer, ?limit, "the client did not take a response within the request timeout; closing the connection");
            false
        }
    }
}
