//! The Kafka wire-protocol broker (feature `broker`): [`Server`] serves a
//! [`Log`] over TCP so that unmodified Kafka clients produce, consume and run
//! consumer groups against it.
//!
//! One tokio task per connection (at most [`BrokerConfig::max_connections`],
//! each closed after [`BrokerConfig::connection_idle_timeout`] without a
//! request) reads a frame (a big-endian `i32` length, bounded by
//! [`BrokerConfig::max_request_bytes`] before the body is read; the whole
//! frame within [`BrokerConfig::request_timeout`]),
//! decodes it with the kafka-protocol crate, runs the request and writes the
//! response before reading the next, so responses leave in request order.
//! Each API has its own file; `errors` maps [`crate::Error`] to Kafka's
//! error codes. Work that may block on the disk (an fsync under
//! [`FlushPolicy::Always`](crate::FlushPolicy), creating a topic, a group
//! commit) runs on tokio's blocking pool; a fetch long-poll awaits the
//! partitions' [`Doorbell`](crate::Doorbell).

mod admin;
mod api_versions;
mod classic;
mod conn;
mod errors;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod offsets;
mod produce;
mod producer_ids;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::log::Log;
use classic::ClassicGroups;
use producer_ids::ProducerIds;

/// Configuration of a [`Server`]. Defaults follow Kafka's broker defaults
/// where there is one.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address to listen on. Default `127.0.0.1:9092`; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Host clients are told to connect to (Metadata, FindCoordinator).
    /// Default `None`: the listen address's IP (`localhost` when it listens
    /// on every interface).
    pub advertised_host: Option<String>,
    /// Port clients are told to connect to. Default `None`: the bound port.
    pub advertised_port: Option<u16>,
    /// This broker's node id in Metadata. Default 0.
    pub node_id: i32,
    /// Largest request frame accepted, in bytes; a larger one closes the
    /// connection before its body is read. Default 100 MiB (Kafka's
    /// `socket.request.max.bytes`); at least 1 KiB.
    pub max_request_bytes: usize,
    /// Most request bytes held in memory at once, over all connections
    /// (Kafka's `queued.max.request.bytes`). A frame's buffer grows as its
    /// bytes arrive, 64 KiB at a time, each step waiting for room here, so a
    /// client that declares a large frame and sends little holds little: a
    /// partial frame never reserves or allocates its declared size. Default
    /// 1 GiB; at least `max_request_bytes`.
    pub max_buffered_request_bytes: usize,
    /// Most record bytes in one Fetch response, whatever the client asks
    /// (Kafka's `fetch.max.bytes`); the first batch is returned even when
    /// larger, so consumers always progress. Default 55 MiB; at least 1 KiB.
    pub max_fetch_bytes: usize,
    /// Most connections served at once (Kafka's `max.connections`): one more
    /// is accepted and closed at once, so a connection flood holds no file
    /// descriptor beyond this many (plus the listen backlog in the kernel)
    /// and never delays the connections already served. Default 1024; at
    /// least 1.
    pub max_connections: usize,
    /// How long a connection may sit between requests (no byte of a new
    /// request frame) before it is closed (Kafka's `connections.max.idle.ms`).
    /// Kafka clients reconnect when they need to. Default 10 min; at least
    /// 1 ms.
    pub connection_idle_timeout: Duration,
    /// Deadline for receiving one whole request frame once its first byte
    /// arrived, and for sending one response: a client trickling a frame (a
    /// slow-loris attack, one byte per second) or never reading its responses
    /// is cut off when it passes, freeing its connection slot and buffers.
    /// Default 60 s, twice the `request.timeout.ms` of Kafka clients (after
    /// which a client has given up on the request anyway); at least 1 ms.
    pub request_timeout: Duration,
    /// Whether Metadata for an unknown topic creates it (Kafka's
    /// `auto.create.topics.enable`). Default `true`.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, and of a CreateTopics request that
    /// leaves the count to the broker (Kafka's `num.partitions`). Default 1.
    pub default_partitions: u32,
    /// Smallest session timeout a classic group member may ask for. Default
    /// 6 s (Kafka's `group.min.session.timeout.ms`).
    pub group_min_session_timeout: Duration,
    /// Largest session timeout a classic group member may ask for. Default
    /// 30 min (Kafka's `group.max.session.timeout.ms`).
    pub group_max_session_timeout: Duration,
    /// How often the group timer checks session and rebalance timeouts.
    /// Default 100 ms; at least 1 ms.
    pub group_timer_interval: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_host: None,
            advertised_port: None,
            node_id: 0,
            max_request_bytes: 100 << 20,
            max_buffered_request_bytes: 1 << 30,
            max_fetch_bytes: 55 << 20,
            max_connections: 1024,
            connection_idle_timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(60),
            auto_create_topics: true,
            default_partitions: 1,
            group_min_session_timeout: Duration::from_secs(6),
            group_max_session_timeout: Duration::from_secs(1800),
            group_timer_interval: Duration::from_millis(100),
        }
    }
}

impl BrokerConfig {
    /// Checks every limit; called by [`Server::bind`].
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return invalid("max_request_bytes", "must be from 1 KiB to 2 GiB - 1");
        }
        if self.max_buffered_request_bytes < self.max_request_bytes
            || self.max_buffered_request_bytes > u32::MAX as usize
        {
            return invalid(
                "max_buffered_request_bytes",
                "must be from max_request_bytes to 4 GiB - 1",
            );
        }
        if self.max_fetch_bytes < 1024 {
            return invalid("max_fetch_bytes", "must be at least 1 KiB");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if self.connection_idle_timeout < Duration::from_millis(1) {
            return invalid("connection_idle_timeout", "must be at least 1 ms");
        }
        if self.request_timeout < Duration::from_millis(1) {
            return invalid("request_timeout", "must be at least 1 ms");
        }
        if self.default_partitions == 0 || self.default_partitions > crate::log::MAX_PARTITIONS {
            return invalid("default_partitions", "must be from 1 to MAX_PARTITIONS");
        }
        if self.group_min_session_timeout > self.group_max_session_timeout {
            return invalid(
                "group_min_session_timeout",
                "must not exceed group_max_session_timeout",
            );
        }
        if self.group_timer_interval < Duration::from_millis(1) {
            return invalid("group_timer_interval", "must be at least 1 ms");
        }
        Ok(())
    }
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) log: Log,
    pub(crate) config: BrokerConfig,
    /// Host and port given to clients in Metadata and FindCoordinator.
    pub(crate) advertised_host: String,
    pub(crate) advertised_port: i32,
    pub(crate) producers: ProducerIds,
    pub(crate) groups: ClassicGroups,
    /// Becomes `true` when the server stops; long polls and idle connections end.
    pub(crate) stopping: watch::Receiver<bool>,
    /// Request bytes that may be buffered, one permit per byte
    /// ([`BrokerConfig::max_buffered_request_bytes`]).
    pub(crate) request_bytes: Semaphore,
}

/// A Kafka-protocol broker serving one [`Log`].
///
/// ```no_run
/// # async fn run() -> Result<(), moldau::Error> {
/// use moldau::broker::{BrokerConfig, Server};
/// use moldau::{Log, LogConfig};
/// let log = Log::open("./data", LogConfig::default())?;
/// let server = Server::bind(log, BrokerConfig::default()).await?;
/// println!("listening on {}", server.local_addr());
/// // Serves until Ctrl-C, then closes the log.
/// server
///     .serve(async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Binds the listen address. The log is served from [`Server::serve`] on,
    /// and closed when it returns.
    ///
    /// Errors: [`Error::InvalidConfig`]; [`Error::Io`] if the address cannot
    /// be bound.
    pub async fn bind(log: Log, config: BrokerConfig) -> Result<Server> {
        config.validate()?;
        let addr_path = || PathBuf::from(config.listen.to_string());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io("bind", &addr_path(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("local_addr", &addr_path(), e))?;
        let advertised_host = match &config.advertised_host {
            Some(h) => h.clone(),
            None if local.ip().is_unspecified() => "localhost".to_owned(),
            None => local.ip().to_string(),
        };
        let advertised_port = i32::from(config.advertised_port.unwrap_or(local.port()));
        let (stop, stopping) = watch::channel(false);
        let config_bytes = config.max_buffered_request_bytes;
        let shared = Arc::new(Shared {
            groups: ClassicGroups::new(),
            producers: ProducerIds::new(),
            log,
            config,
            advertised_host,
            advertised_port,
            stopping,
            request_bytes: Semaphore::new(config_bytes),
        });
        Ok(Server {
            shared,
            listener,
            local,
            stop,
        })
    }

    /// The address the server listens on (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves connections until `shutdown` completes; then stops accepting,
    /// lets every connection finish the request it is running (a waiting
    /// fetch answers at once with what it has), and closes the log.
    ///
    /// Errors: those of [`Log::close`].
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Server {
            shared,
            listener,
            stop,
            ..
        } = self;
        let timer = tokio::spawn(classic::run_timer(Arc::clone(&shared)));
        let slots = Arc::new(Semaphore::new(shared.config.max_connections));
        let mut connections = JoinSet::new();
        let mut refused: u64 = 0;
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = listener.accept() => a,
            };
            // Reap finished connection tasks so the set stays small.
            while connections.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    // Over the limit: closed at once (dropping the stream),
                    // rather than left in the backlog where it would delay
                    // the clients behind it and hold a descriptor for as long
                    // as the flood lasts.
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        refused += 1;
                        // One line per power of two, not one per connection
                        // of a flood.
                        if refused.is_power_of_two() {
                            tracing::warn!(
                                %peer,
                                refused,
                                max = shared.config.max_connections,
                                "connection limit reached; closing new connections"
                            );
                        }
                        drop(stream);
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        conn::serve(shared, stream, peer).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait for a
                    // connection to end rather than spin on accept.
                    tracing::warn!(error = %e, "accept failed");
                    if connections.join_next().await.is_none() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        drop(listener);
        // Receivers only end when `shared` is gone, which it is not here.
        let _ = stop.send(true);
        while connections.join_next().await.is_some() {}
        timer.abort();
        let log = shared.log.clone();
        tokio::task::spawn_blocking(move || log.close())
            .await
            .map_err(|e| Error::InvalidArgument {
                what: "close",
                reason: format!("the closing task failed: {e}"),
            })?
    }
}

/// The request-frame decoder for `moldau::fuzzing::request_frame`.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_decode_request(frame: &[u8]) -> std::result::Result<String, String> {
    conn::decode_request(bytes::Bytes::copy_from_slice(frame))
        .map(|d| d.request.name().to_owned())
        .map_err(|conn::Refused(why)| why)
}

/// Runs `f` on tokio's blocking pool: for work that may wait on the disk.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::InvalidArgument {
            what: "task",
            reason: format!("a blocking task failed: {e}"),
        })
    })
}
