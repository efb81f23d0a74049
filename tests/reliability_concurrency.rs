//! Reliability suite 6, concurrency: for a bounded time, producers send
//! (single records and batches) to two topics while members of two consumer
//! groups join, poll, commit and leave over and over, and another thread
//! creates, fills and deletes topics, while a maintenance thread runs
//! retention and compaction passes over a size-retained topic, a compacted
//! topic (both written by their own producer) and `__consumer_offsets`
//! (which the groups' commits fill). A watchdog aborts the process if the
//! run stops making progress (a deadlock would otherwise hang CI). At the
//! end: no thread panicked; each group saw every acknowledged record at least
//! once; each member, for as long as it kept a partition, got that
//! partition's records in order without a gap; the retained topic is a
//! gap-free run from its moved start holding every acknowledged record
//! above it; the compacted topic holds each key's latest acknowledged value.
//!
//! `MOLDAU_STRESS_SECS=N` runs for N seconds (default 3).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::workload::Rng;
use moldau::{
    AutoOffsetReset, CleanupPolicy, Consumer, ConsumerConfig, Error, Log, LogConfig, PartitionId,
    ProducerConfig, RebalanceListener, Record, Timestamp, TopicConfig, TopicName, TopicPartition,
};

const TOPICS: [&str; 2] = ["s0", "s1"];
const PARTITIONS: u32 = 3;
const GROUPS: [&str; 2] = ["g1", "g2"];
/// Retained by size while the stress runs.
const RETAINED: &str = "ret";
/// Compacted while the stress runs.
const COMPACTED: &str = "cmp";

/// A record's place: topic, partition, offset.
type Place = (String, u32, u64);

fn stress_secs() -> u64 {
    std::env::var("MOLDAU_STRESS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        max_poll_records: 50,
        ..ConsumerConfig::default()
    }
}

/// Shared state of the run.
struct Run {
    log: Log,
    stop: AtomicBool,
    /// Bumped by every thread as it gets work done; the watchdog reads it.
    progress: AtomicU64,
    /// Every acknowledged send.
    produced: Mutex<BTreeSet<Place>>,
    /// Per group, every record its members received.
    seen: Mutex<BTreeMap<&'static str, BTreeSet<Place>>>,
    /// Acknowledged sends to the maintained topics: place to value.
    maintained: Mutex<BTreeMap<Place, String>>,
    /// Maintenance passes that deleted or compacted something.
    passes: AtomicU64,
}

/// Sends keyed records to the retained and the compacted topic.
fn maintained_producer_thread(run: &Run) {
    let producer = run.log.producer(ProducerConfig::default()).unwrap();
    let mut i = 0u64;
    while !run.stop.load(Ordering::Acquire) {
        for topic in [RETAINED, COMPACTED] {
            let value = format!("{topic}-{i}");
            let record = Record::new(value.clone()).with_key(format!("k{}", i % 16));
            let meta = producer.send(topic, record).unwrap();
            let place = (topic.to_string(), meta.partition.0, meta.offset.0);
            run.maintained.lock().unwrap().insert(place, value);
        }
        i += 1;
        run.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs retention and compaction passes, back to back.
fn maintenance_thread(run: &Run) {
    while !run.stop.load(Ordering::Acquire) {
        // Found by this suite: a pass over a topic deleted meanwhile (the
        // churn thread) failed with `UnknownTopic`.
        let report = run.log.run_maintenance(Timestamp::now()).unwrap();
        if report.segments_deleted > 0 || report.partitions_compacted > 0 {
            run.passes.fetch_add(1, Ordering::Relaxed);
        }
        run.progress.fetch_add(1, Ordering::Relaxed);
        std::thread::yield_now();
    }
}

/// A record read back: offset, key, value.
type Read = (u64, Option<Bytes>, Option<Bytes>);

/// Every record of `topic` from each partition's start, in order.
fn read_all(log: &Log, topic: &str) -> BTreeMap<u32, Vec<Read>> {
    let name = TopicName::new(topic).unwrap();
    let ends: Vec<(TopicPartition, u64)> = log
        .describe_topic(topic)
        .unwrap()
        .partitions
        .iter()
        .map(|p| {
            (
                TopicPartition::new(name.clone(), p.partition),
                p.end_offset.0,
            )
        })
        .collect();
    let tps: Vec<TopicPartition> = ends.iter().map(|(tp, _)| tp.clone()).collect();
    let mut consumer = log.consumer(consumer_config()).unwrap();
    consumer.assign(&tps).unwrap();
    consumer.seek_to_beginning(&tps).unwrap();
    let mut out: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ends
        .iter()
        .all(|(tp, end)| consumer.position(tp).unwrap().0 >= *end)
    {
        assert!(Instant::now() < deadline, "reading {topic} back stalled");
        for r in consumer.poll(Duration::from_millis(20)).unwrap() {
            out.entry(r.partition.0)
                .or_default()
                .push((r.offset.0, r.key, r.value));
        }
    }
    out
}

/// The retained topic: each partition a gap-free run from its start with
/// every acknowledged record at or above the start; the compacted topic:
/// every key's latest acknowledged value present, offsets increasing.
fn check_maintained(run: &Run) {
    let acked = run.maintained.lock().unwrap().clone();
    let starts: BTreeMap<u32, u64> = run
        .log
        .describe_topic(RETAINED)
        .unwrap()
        .partitions
        .iter()
        .map(|p| (p.partition.0, p.start_offset.0))
        .collect();
    for (p, records) in read_all(&run.log, RETAINED) {
        let start = starts[&p];
        for (i, (offset, _, value)) in records.iter().enumerate() {
            assert_eq!(*offset, start + i as u64, "{RETAINED}-{p} has a gap");
            let place = (RETAINED.to_string(), p, *offset);
            let expected = acked.get(&place).expect("a record nobody sent");
            assert_eq!(value.as_deref(), Some(expected.as_bytes()));
        }
    }
    let mut latest: BTreeMap<(u32, Bytes), (u64, String)> = BTreeMap::new();
    let mut key_of = BTreeMap::new();
    for ((topic, p, offset), value) in &acked {
        if topic == COMPACTED {
            let n: u64 = value.rsplit('-').next().unwrap().parse().unwrap();
            let key = Bytes::from(format!("k{}", n % 16));
            key_of.insert((*p, *offset), key.clone());
            let slot = latest.entry((*p, key)).or_insert((*offset, value.clone()));
            if *offset >= slot.0 {
                *slot = (*offset, value.clone());
            }
        }
    }
    let compacted = read_all(&run.log, COMPACTED);
    for ((p, key), (offset, value)) in &latest {
        let records = compacted.get(p).map(Vec::as_slice).unwrap_or_default();
        assert!(
            records.windows(2).all(|w| w[0].0 < w[1].0),
            "{COMPACTED}-{p} out of order"
        );
        let found = records.iter().find(|r| r.0 == *offset);
        let found =
            found.unwrap_or_else(|| panic!("{COMPACTED}-{p}: latest of {key:?} at {offset} gone"));
        assert_eq!(found.1.as_ref(), Some(key));
        assert_eq!(found.2.as_deref(), Some(value.as_bytes()));
    }
}

/// Sends single records and batches until `done()`.
fn produce(run: &Run, seed: u64, done: impl Fn() -> bool) {
    let producer = run.log.producer(ProducerConfig::default()).unwrap();
    let mut rng = Rng(seed);
    let mut n = 0u64;
    while !done() {
        let topic = TOPICS[rng.below(2) as usize];
        let sent = match rng.below(4) {
            0 => {
                let batch = (0..1 + rng.below(8))
                    .map(|k| Record::new(format!("{seed}-{n}-{k}")).with_key(format!("{}", n + k)))
                    .collect();
                producer.send_batch(topic, batch).unwrap()
            }
            _ => vec![producer
                .send_to(
                    topic,
                    PartitionId(rng.below(u64::from(PARTITIONS)) as u32),
                    Record::new(format!("{seed}-{n}")),
                )
                .unwrap()],
        };
        let mut produced = run.produced.lock().unwrap();
        for m in sent {
            produced.insert((m.topic.to_string(), m.partition.0, m.offset.0));
        }
        n += 1;
        run.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records the partitions a rebalance took from a member, so that its
/// in-order check restarts for them: one `poll` can give a partition up and
/// get it back after another member moved its committed offset on.
struct Revoked(Arc<Mutex<Vec<(String, u32)>>>);

impl RebalanceListener for Revoked {
    fn on_partitions_revoked(
        &mut self,
        _: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> moldau::Result<()> {
        let mut revoked = self.0.lock().unwrap();
        revoked.extend(
            partitions
                .iter()
                .map(|tp| (tp.topic.to_string(), tp.partition.0)),
        );
        Ok(())
    }
}

/// Members of `group` join, poll a while, commit and leave, until stopped.
fn member_thread(run: &Run, group: &'static str, seed: u64) {
    let mut rng = Rng(seed);
    while !run.stop.load(Ordering::Acquire) {
        let mut consumer = run.log.consumer(consumer_config()).unwrap();
        let revoked = Arc::new(Mutex::new(Vec::new()));
        consumer.set_rebalance_listener(Revoked(Arc::clone(&revoked)));
        consumer.subscribe(group, &TOPICS).unwrap();
        // Per partition it holds: the next offset it must get.
        let mut expect: BTreeMap<(String, u32), u64> = BTreeMap::new();
        for _ in 0..1 + rng.below(30) {
            let records = consumer.poll(Duration::from_millis(5)).unwrap();
            // A partition given up (even if got back) restarts its run.
            for tp in revoked.lock().unwrap().drain(..) {
                expect.remove(&tp);
            }
            let mut seen = run.seen.lock().unwrap();
            let seen = seen.entry(group).or_default();
            for r in records {
                let key = (r.topic.to_string(), r.partition.0);
                if let Some(next) = expect.get(&key) {
                    assert_eq!(
                        r.offset.0, *next,
                        "{group}: {key:?} out of order or with a gap"
                    );
                }
                expect.insert(key.clone(), r.offset.0 + 1);
                seen.insert((key.0, key.1, r.offset.0));
            }
            run.progress.fetch_add(1, Ordering::Relaxed);
        }
        match consumer.commit() {
            // Removed from the group meanwhile: its partitions moved on.
            Ok(()) | Err(Error::StaleGeneration { .. }) => {}
            Err(e) => panic!("{group}: commit: {e}"),
        }
        consumer.close().unwrap();
    }
}

/// Creates, fills and deletes topics, while a producer sends to them.
fn churn_thread(run: &Run) {
    let producer = run.log.producer(ProducerConfig::default()).unwrap();
    let mut i = 0u64;
    while !run.stop.load(Ordering::Acquire) {
        let name = format!("tmp{}", i % 3);
        run.log.create_topic(&name, 2, None).unwrap();
        for k in 0..20 {
            producer.send(&name, Record::new(format!("{k}"))).unwrap();
        }
        run.log.delete_topic(&name).unwrap();
        i += 1;
        run.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends to the churned topics as they come and go: every answer is a
/// record stored or `UnknownTopic`.
fn churn_sender_thread(run: &Run) {
    let producer = run.log.producer(ProducerConfig::default()).unwrap();
    let mut i = 0u64;
    while !run.stop.load(Ordering::Acquire) {
        match producer.send(&format!("tmp{}", i % 3), Record::new("x")) {
            Ok(_) | Err(Error::UnknownTopic { .. }) => {}
            Err(e) => panic!("send to a churned topic: {e}"),
        }
        i += 1;
        run.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Aborts the process if `run.progress` stands still for `stall`: a
/// deadlock must fail CI, not hang it.
fn watchdog(run: Arc<Run>, done: Arc<AtomicBool>, stall: Duration) {
    std::thread::spawn(move || {
        let mut last = run.progress.load(Ordering::Relaxed);
        let mut since = Instant::now();
        while !done.load(Ordering::Acquire) {
            std::thread::park_timeout(Duration::from_millis(100));
            let now = run.progress.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() > stall {
                eprintln!("watchdog: no progress for {stall:?}: deadlock suspected");
                std::process::abort();
            }
        }
    });
}

#[test]
fn producers_groups_and_topic_churn_together() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        topic_defaults: TopicConfig {
            // Rolls every few thousand records. Not smaller: every sealed
            // segment read stays mapped (docs/RELIABILITY.md), and a long
            // run over tiny segments would exhaust vm.max_map_count.
            segment_bytes: 256 * 1024,
            ..TopicConfig::default()
        },
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    for t in TOPICS {
        log.create_topic(t, PARTITIONS, None).unwrap();
    }
    let small = TopicConfig {
        segment_bytes: 8 * 1024,
        ..TopicConfig::default()
    };
    let retained = TopicConfig {
        retention_bytes: Some(32 * 1024),
        ..small.clone()
    };
    log.create_topic(RETAINED, 2, Some(retained)).unwrap();
    let compacted = TopicConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.01,
        min_compaction_lag_ms: Duration::ZERO,
        ..small
    };
    log.create_topic(COMPACTED, 2, Some(compacted)).unwrap();
    let run = Arc::new(Run {
        log,
        stop: AtomicBool::new(false),
        progress: AtomicU64::new(0),
        produced: Mutex::new(BTreeSet::new()),
        seen: Mutex::new(BTreeMap::new()),
        maintained: Mutex::new(BTreeMap::new()),
        passes: AtomicU64::new(0),
    });
    let done = Arc::new(AtomicBool::new(false));
    watchdog(Arc::clone(&run), Arc::clone(&done), Duration::from_secs(30));

    let mut threads = Vec::new();
    for seed in 1..=3u64 {
        let run = Arc::clone(&run);
        threads.push(std::thread::spawn(move || {
            produce(&run, seed, || run.stop.load(Ordering::Acquire))
        }));
    }
    for (g, group) in GROUPS.iter().enumerate() {
        for m in 0..2u64 {
            let run = Arc::clone(&run);
            let seed = 100 + g as u64 * 10 + m;
            threads.push(std::thread::spawn(move || member_thread(&run, group, seed)));
        }
    }
    let churn = Arc::clone(&run);
    threads.push(std::thread::spawn(move || churn_thread(&churn)));
    let sender = Arc::clone(&run);
    threads.push(std::thread::spawn(move || churn_sender_thread(&sender)));
    let maintained = Arc::clone(&run);
    threads.push(std::thread::spawn(move || {
        maintained_producer_thread(&maintained)
    }));
    let maintenance = Arc::clone(&run);
    threads.push(std::thread::spawn(move || maintenance_thread(&maintenance)));

    // The test thread produces too, until the time is up.
    let deadline = Instant::now() + Duration::from_secs(stress_secs());
    produce(&run, 4, || Instant::now() >= deadline);
    run.stop.store(true, Ordering::Release);
    for t in threads {
        t.join().expect("a thread panicked");
    }

    // Each group drains from its committed offsets: with what its members
    // saw, that must cover every acknowledged record.
    let produced = run.produced.lock().unwrap().clone();
    for group in GROUPS {
        let mut consumer = run.log.consumer(consumer_config()).unwrap();
        consumer.subscribe(group, &TOPICS).unwrap();
        let mut missing: BTreeSet<Place> = {
            let mut seen = run.seen.lock().unwrap();
            produced
                .difference(seen.entry(group).or_default())
                .cloned()
                .collect()
        };
        // Fails only if the drain stops getting records with some missing.
        let mut last_record = Instant::now();
        while !missing.is_empty() {
            let records = consumer.poll(Duration::from_millis(20)).unwrap();
            if !records.is_empty() {
                last_record = Instant::now();
            }
            for r in records {
                missing.remove(&(r.topic.to_string(), r.partition.0, r.offset.0));
            }
            run.progress.fetch_add(1, Ordering::Relaxed);
            assert!(
                last_record.elapsed() < Duration::from_secs(30),
                "{group} never saw {:?} ({} of {} missing)",
                missing.first(),
                missing.len(),
                produced.len()
            );
        }
        consumer.close().unwrap();
    }
    check_maintained(&run);
    done.store(true, Ordering::Release);
    let passes = run.passes.load(Ordering::Relaxed);
    assert!(
        passes > 0,
        "no maintenance pass deleted or compacted anything"
    );
    let seen = run.seen.lock().unwrap();
    eprintln!(
        "{}s of stress: {} records produced, each seen by both groups; \
         seen by members before the drain: {:?}; {} maintained records, \
         {passes} maintenance passes that deleted or compacted",
        stress_secs(),
        produced.len(),
        seen.iter().map(|(g, s)| (*g, s.len())).collect::<Vec<_>>(),
        run.maintained.lock().unwrap().len()
    );
    assert!(produced.len() > 100, "the producers hardly ran");
}
