//! Helpers for broker tests: a broker on a free port in its own runtime
//! thread, and a blocking Kafka-protocol client built on the kafka-protocol
//! crate (requests encoded, responses decoded, nothing mocked).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use moldau::broker::{BrokerConfig, Server};
use moldau::{Log, LogConfig, Offset, Record, Timestamp};

/// A broker serving a log in a temporary (or given) directory.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub log: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<moldau::Result<()>>>,
    pub dir: Option<tempfile::TempDir>,
}

/// A config for tests: a free port, short group timeouts.
pub fn test_config() -> BrokerConfig {
    BrokerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        group_min_session_timeout: Duration::from_millis(100),
        group_timer_interval: Duration::from_millis(20),
        ..BrokerConfig::default()
    }
}

impl TestBroker {
    pub fn start(config: BrokerConfig) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let mut b = TestBroker::start_in(dir.path(), config);
        b.dir = Some(dir);
        b
    }

    pub fn start_in(dir: &Path, config: BrokerConfig) -> TestBroker {
        let log = Log::open(dir, LogConfig::default()).unwrap();
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::bind(served, config).await?;
                addr_tx.send(server.local_addr()).unwrap();
                server
                    .serve(async {
                        let _ = stop_rx.await;
                    })
                    .await
            })
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        TestBroker {
            addr,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir: None,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the server (it closes the log) and returns its result.
    pub fn stop(&mut self) -> moldau::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop().unwrap();
        }
    }
}

/// A blocking Kafka-protocol client over one connection.
pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_correlation: 1,
        }
    }

    /// Sends `req` at `version`; returns its correlation id.
    pub fn send<R: Request>(&mut self, req: &R, version: i16) -> i32 {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("moldau-test")));
        let hv = ApiKey::try_from(R::KEY)
            .unwrap()
            .request_header_version(version);
        let mut body = BytesMut::new();
        header.encode(&mut body, hv).unwrap();
        req.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        self.stream.write_all(&frame).unwrap();
        correlation
    }

    /// Reads one response frame's bytes (after the length).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Reads a response to a request of type `R` sent at `version`.
    pub fn recv<R: Request>(&mut self, version: i16) -> (i32, R::Response) {
        let mut frame = self.read_frame().unwrap();
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .unwrap();
        let resp = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "trailing bytes in the response");
        (header.correlation_id, resp)
    }

    /// Sends `req` and reads its response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let sent = self.send(req, version);
        let (got, resp) = self.recv::<R>(version);
        assert_eq!(got, sent, "correlation id");
        resp
    }

    /// Whether the broker closed the connection (reads EOF or a reset
    /// within the read timeout).
    pub fn closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
        }
    }
}

/// Whether the broker has taken every byte `c` sent off its socket (the
/// kernel's receive queue for the broker's end is empty), from
/// `/proc/net/tcp`: a request read this way is in the broker's hands.
pub fn broker_has_read(broker: &TestBroker, c: &Client) -> bool {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    };
    let local = hex(broker.addr);
    let remote = hex(c.stream.local_addr().unwrap());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 4 && f[1] == local && f[2] == remote && f[4].split(':').nth(1) == Some("00000000")
    })
}

/// One uncompressed batch of `records` as a producer sends it.
pub fn batch(records: &[Record]) -> Bytes {
    Bytes::from(moldau::record::encode_batch_to_vec(records, Timestamp::now(), Offset(0)).unwrap())
}

/// Sets the producer fields of `batch` and recomputes its CRC.
pub fn with_producer(batch: &[u8], id: i64, epoch: i16, sequence: i32) -> Bytes {
    let mut b = batch.to_vec();
    b[43..51].copy_from_slice(&id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}
