//! The server also runs on a current-thread tokio runtime (as under
//! `#[tokio::main(flavor = "current_thread")]`): appends that may fsync go
//! to the blocking pool instead of `block_in_place`, which that runtime
//! does not allow.
#![cfg(feature = "broker")]

mod common;

use common::broker::{batch, test_config, Client};
use common::kafka::{fetch_request, produce, FETCH_V};
use moldau::broker::Server;
use moldau::{FlushPolicy, Log, LogConfig, Record, TopicConfig};

#[test]
fn produce_and_fetch_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let always = TopicConfig {
        flush: FlushPolicy::Always,
        ..TopicConfig::default()
    };
    log.create_topic("synced", 1, Some(always)).unwrap();
    log.create_topic("plain", 1, None).unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = log.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(served, test_config()).await?;
            addr_tx.send(server.local_addr()).unwrap();
            server
                .serve(async {
                    let _ = stop_rx.await;
                })
                .await
        })
    });
    let addr = addr_rx.recv().unwrap();
    let mut c = Client::connect(addr);
    for topic in ["synced", "plain"] {
        for i in 0..3 {
            let (code, base) = produce(&mut c, topic, 0, batch(&[Record::new(format!("{i}"))]));
            assert_eq!((code, base), (0, i), "{topic}");
        }
        let resp = c.call(
            &fetch_request(&[(topic, 0, 0)], 0, 1, 1 << 20, 1 << 20),
            FETCH_V,
        );
        assert_eq!(resp.responses[0].partitions[0].high_watermark, 3);
    }
    stop_tx.send(()).unwrap();
    thread.join().unwrap().unwrap();
}
