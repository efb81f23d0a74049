//! Deleting a topic while producers send to it: every send either stores
//! its record or reports `Error::UnknownTopic`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use moldau::{Error, Log, LogConfig, ProducerConfig, Record, TopicConfig};

// Regression: a send racing `delete_topic` failed with `Error::Io` (a
// partition checkpoint could not be renamed into its directory, which the
// deletion had just moved away) instead of `Error::UnknownTopic`.
#[test]
fn sends_racing_a_deletion_store_or_report_an_unknown_topic() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        // Small segments: sends roll and write checkpoints all the time.
        topic_defaults: TopicConfig {
            segment_bytes: 4096,
            ..TopicConfig::default()
        },
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (log, stop) = (log.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let producer = log.producer(ProducerConfig::default()).unwrap();
                let mut sent = 0u64;
                while !stop.load(Ordering::Acquire) {
                    match producer.send("t", Record::new(vec![7u8; 500])) {
                        Ok(_) => sent += 1,
                        Err(Error::UnknownTopic { .. }) => {}
                        Err(e) => panic!("a send racing a deletion: {e}"),
                    }
                }
                sent
            })
        })
        .collect();
    for _ in 0..40 {
        log.create_topic("t", 1, None).unwrap();
        // Let the senders get some records in before the deletion.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while log.describe_topic("t").unwrap().partitions[0].end_offset.0 < 20 {
            assert!(std::time::Instant::now() < deadline, "the senders stalled");
            std::thread::yield_now();
        }
        log.delete_topic("t").unwrap();
    }
    stop.store(true, Ordering::Release);
    let sent: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(sent >= 40 * 20);
    log.close().unwrap();
}
