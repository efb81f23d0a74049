//! Graceful shutdown: a long-polling fetch is answered at once, the server
//! stops accepting, and the log is closed cleanly (the directory reopens
//! with everything acknowledged in it).
#![cfg(feature = "broker")]

mod common;

use std::time::{Duration, Instant};

use common::broker::{batch, broker_has_read, test_config, wait_until, TestBroker};
use common::kafka::{fetch_request, produce, FETCH_V};
use kafka_protocol::messages::{ApiVersionsRequest, FetchRequest};
use moldau::{Log, LogConfig, Offset, Record};

#[test]
fn stop_answers_waiters_closes_the_log_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = TestBroker::start_in(dir.path(), test_config());
    broker.log.create_topic("kept", 1, None).unwrap();
    let mut c = broker.client();
    for i in 0..10 {
        let (code, base) = produce(&mut c, "kept", 0, batch(&[Record::new(format!("r{i}"))]));
        assert_eq!((code, base), (0, i));
    }
    // A fetch parked for up to 50 s at the end of the log.
    let mut waiter = broker.client();
    // One round trip first: a connection still in the listen backlog when
    // the server stops is reset, not served.
    assert_eq!(waiter.call(&ApiVersionsRequest::default(), 3).error_code, 0);
    waiter.send(
        &fetch_request(&[("kept", 0, 10)], 50_000, 1, 1 << 20, 1 << 20),
        FETCH_V,
    );
    // In the broker's hands before the stop: a request still in the
    // kernel's buffer when the connection closes is not in flight.
    assert!(wait_until(Duration::from_secs(10), || broker_has_read(
        &broker, &waiter
    )));
    let started = Instant::now();
    let addr = broker.addr;
    broker.stop().unwrap();
    let (_, resp) = waiter.recv::<FetchRequest>(FETCH_V);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 10);
    // No longer accepting, and the log is closed.
    assert!(std::net::TcpStream::connect(addr).is_err());
    assert!(broker.log.create_topic("late", 1, None).is_err());
    // The directory reopens with every record.
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        log.describe_topic("kept").unwrap().partitions[0].end_offset,
        Offset(10)
    );
    log.close().unwrap();
}
