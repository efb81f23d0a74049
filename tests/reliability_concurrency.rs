//! Reliability suite 6, concurrency: for a bounded time, producers send
//! (single records and batches) to two topics while members of two consumer
//! groups join, poll, commit and leave over and over, and another thread
//! creates, fills and deletes topics. A watchdog aborts the process if the
//! run stops making progress (a deadlock would otherwise hang CI). At the
//! end: no thread panicked; each group saw every acknowledged record at least
//! once; and each member, for as long as it kept a partition, got that
//! partition's records in order without a gap.
//!
//! `MOLDAU_STRESS_SECS=N` runs for N seconds (default 3).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::workload::Rng;
use moldau::{
    AutoOffsetReset, Consumer, ConsumerConfig, Error, Log, LogConfig, PartitionId, ProducerConfig,
    RebalanceListener, Record, TopicConfig, TopicPartition,
};

const TOPICS: [&str; 2] = ["s0", "s1"];
const PARTITIONS: u32 = 3;
const GROUPS: [&str; 2] = ["g1", "g2"];

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
    let run = Arc::new(Run {
        log,
        stop: AtomicBool::new(false),
        progress: AtomicU64::new(0),
        produced: Mutex::new(BTreeSet::new()),
        seen: Mutex::new(BTreeMap::new()),
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
    done.store(true, Ordering::Release);
    let seen = run.seen.lock().unwrap();
    eprintln!(
        "{}s of stress: {} records produced, each seen by both groups; \
         seen by members before the drain: {:?}",
        stress_secs(),
        produced.len(),
        seen.iter().map(|(g, s)| (*g, s.len())).collect::<Vec<_>>()
    );
    assert!(produced.len() > 100, "the producers hardly ran");
}
