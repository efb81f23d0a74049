//! A `Log` handle is cheap to clone and shareable; dropping the last handle
//! (or `close`) flushes, releases the directory lock and stops the
//! maintenance thread. (One test per process: it counts threads.)

use std::time::Duration;

use moldau::{Consumer, Log, LogConfig, Producer, ProducerConfig, Record};

fn maintenance_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("moldau-maint"))
        .count()
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}

#[test]
fn the_last_handle_closes_the_log_and_stops_its_thread() {
    fn shareable<T: Send + Sync + Clone>() {}
    fn sendable<T: Send>() {}
    shareable::<Log>();
    shareable::<Producer>();
    sendable::<Consumer>();

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    // A new thread takes its name once it runs.
    assert!(wait_until(|| maintenance_threads() == 1));
    log.create_topic("t", 1, None).unwrap();
    let clone = log.clone();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    producer.send("t", Record::new("kept")).unwrap();
    drop(log);
    // Clones and producers keep it open.
    producer.send("t", Record::new("also kept")).unwrap();
    drop(clone);
    assert_eq!(maintenance_threads(), 1);
    drop(producer);
    assert!(wait_until(|| maintenance_threads() == 0), "thread stopped");

    // The lock is free and the data is there.
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        log.describe_topic("t").unwrap().partitions[0].end_offset.0,
        2
    );
    log.close().unwrap();
    assert!(wait_until(|| maintenance_threads() == 0));
    assert!(matches!(
        log.create_topic("u", 1, None),
        Err(moldau::Error::Closed { .. })
    ));
}
