//! Many partitions under a small open-file limit: the open-segment bound
//! (`LogConfig::max_open_segments`) keeps file descriptors and memory maps
//! bounded whatever the number of partitions.
//!
//! Its own test binary: it lowers `RLIMIT_NOFILE` for the whole process.
//! 1,200 partitions (100 topics of 12) rather than the 10,000 keep
//! this fast in a debug build (about a minute, mostly fsyncs of new
//! directories and checkpoints); 1,200 already exceeds the limit for a design
//! holding one descriptor per partition, and four times over with three per
//! active segment (log, index, time index) and a lock file.
//! `benches/scale.rs` runs the full 10,000 in a release build.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use moldau::{
    ConsumerConfig, Log, LogConfig, Offset, PartitionId, ProducerConfig, Record, TopicName,
    TopicPartition,
};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

const TOPICS: u32 = 100;
const PARTITIONS_PER_TOPIC: u32 = 12;
const RECORDS_PER_PARTITION: u64 = 3;
const MAX_OPEN_SEGMENTS: usize = 64;
const NOFILE_LIMIT: u64 = 1024;
/// Descriptors besides segment files: the data directory's lock, and the
/// file a sync or a checkpoint write has open for a moment.
const OTHER_FDS: usize = 16;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
}

/// Mappings of files under `dir`.
fn maps_under(dir: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let dir = dir.to_str().expect("temp dir path is UTF-8");
    maps.lines().filter(|l| l.contains(dir)).count()
}

#[track_caller]
fn assert_bounded(what: &str, dir: &Path, base_fds: usize, log: &Log) {
    let fds = open_fds();
    let maps = maps_under(dir);
    assert!(
        fds <= base_fds + 3 * MAX_OPEN_SEGMENTS + OTHER_FDS,
        "{what}: {fds} descriptors open (before: {base_fds})"
    );
    assert!(maps <= 3 * MAX_OPEN_SEGMENTS, "{what}: {maps} maps");
    assert!(log.open_segments().open() <= MAX_OPEN_SEGMENTS, "{what}");
}

fn value(t: u32, p: u32, i: u64) -> String {
    format!("topic {t} partition {p} record {i}")
}

#[test]
fn many_partitions_run_under_an_open_file_limit() {
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(NOFILE_LIMIT),
            maximum: hard,
        },
    )
    .expect("lower RLIMIT_NOFILE");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config = LogConfig {
        max_open_segments: MAX_OPEN_SEGMENTS,
        ..LogConfig::default()
    };
    let base_fds = open_fds();

    let log = Log::open(&dir, config.clone()).unwrap();
    for t in 0..TOPICS {
        log.create_topic(format!("t{t}"), PARTITIONS_PER_TOPIC, None)
            .unwrap();
    }
    assert_bounded("after creating the topics", &dir, base_fds, &log);
    let producer = log.producer(ProducerConfig::default()).unwrap();
    for i in 0..RECORDS_PER_PARTITION {
        for t in 0..TOPICS {
            for p in 0..PARTITIONS_PER_TOPIC {
                let sent = producer
                    .send_to(
                        &format!("t{t}"),
                        PartitionId(p),
                        Record::new(value(t, p, i)),
                    )
                    .unwrap();
                assert_eq!(sent.offset, Offset(i));
            }
        }
        assert_bounded("while appending", &dir, base_fds, &log);
    }
    // Far more segments were opened than fit: some were closed and reopened.
    assert!(log.open_segments().evictions() > 0);
    drop(producer);
    log.close().unwrap();
    drop(log);

    let log = Log::open(&dir, config).unwrap();
    assert_bounded("after reopening", &dir, base_fds, &log);
    let mut consumer = log.consumer(ConsumerConfig::default()).unwrap();
    let all: Vec<TopicPartition> = (0..TOPICS)
        .flat_map(|t| (0..PARTITIONS_PER_TOPIC).map(move |p| (t, p)))
        .map(|(t, p)| TopicPartition::new(TopicName::new(format!("t{t}")).unwrap(), p))
        .collect();
    consumer.assign(&all).unwrap();
    consumer.seek_to_beginning(&[]).unwrap();
    let total = u64::from(TOPICS * PARTITIONS_PER_TOPIC) * RECORDS_PER_PARTITION;
    let mut next: HashMap<(String, u32), u64> = HashMap::new();
    let mut seen = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < total {
        assert!(Instant::now() < deadline, "read {seen} of {total} records");
        for r in consumer.poll(Duration::from_millis(100)).unwrap() {
            let (t, p) = (r.topic.to_string(), r.partition.0);
            let expected = next.entry((t.clone(), p)).or_default();
            assert_eq!(r.offset, Offset(*expected), "{t}-{p}");
            let n: u32 = t[1..].parse().unwrap();
            assert_eq!(
                r.value.as_deref(),
                Some(value(n, p, *expected).as_bytes()),
                "{t}-{p}"
            );
            *expected += 1;
            seen += 1;
        }
        // The consumer keeps what one poll did not return of each
        // partition's last read (as Kafka's consumer buffers fetches), and
        // that read holds its segment's log map: a reader's map, outside the
        // bound (which governs what the log keeps open), one per partition
        // at most. Descriptors stay bounded throughout.
        let fds = open_fds();
        assert!(
            fds <= base_fds + 3 * MAX_OPEN_SEGMENTS + OTHER_FDS,
            "while reading: {fds} descriptors"
        );
        let partitions = (TOPICS * PARTITIONS_PER_TOPIC) as usize;
        let maps = maps_under(&dir);
        assert!(
            maps <= 3 * MAX_OPEN_SEGMENTS + partitions,
            "while reading: {maps} maps"
        );
    }
    assert_eq!(next.len() as u32, TOPICS * PARTITIONS_PER_TOPIC);
    drop(consumer);
    assert_bounded("after reading", &dir, base_fds, &log);
    log.close().unwrap();
}
