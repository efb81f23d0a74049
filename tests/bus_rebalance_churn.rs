//! Members join and leave a group while it consumes: because a member
//! commits its positions before it releases a partition (auto-commit at
//! revoke), and the next owner starts at the committed offset only after
//! that release, every record is delivered exactly once across the churn,
//! with every assignor.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moldau::{
    Assignor, AutoOffsetReset, ConsumerConfig, Log, LogConfig, PartitionId, ProducerConfig, Record,
};

const PARTITIONS: u32 = 6;
const PER_PARTITION: u64 = 3_000;

/// Per record: how often it was delivered, and the members that got it.
type Seen = Arc<Mutex<BTreeMap<(u32, u64), Vec<usize>>>>;

/// A member thread: consumes until `stop`, recording every record it gets.
fn member(
    id: usize,
    log: &Log,
    assignor: Assignor,
    seen: Seen,
    total: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let mut c = log
        .consumer(ConsumerConfig {
            assignor,
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: true,
            max_poll_records: 37,
            ..ConsumerConfig::default()
        })
        .unwrap();
    c.subscribe("g", &["t"]).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let records = c.poll(Duration::from_millis(20)).unwrap();
            let mut seen = seen.lock().unwrap();
            for r in &records {
                seen.entry((r.partition.0, r.offset.0))
                    .or_default()
                    .push(id);
            }
            total.fetch_add(records.len(), Ordering::SeqCst);
        }
        // Dropping the consumer commits and leaves the group.
    })
}

#[test]
fn joins_and_leaves_lose_and_repeat_nothing() {
    for assignor in [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::CooperativeSticky,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", PARTITIONS, None).unwrap();
        let producer = log.producer(ProducerConfig::default()).unwrap();
        // Records are produced in ten stages, so that every stage after a
        // join or leave is consumed by the changed group (a member racing
        // ahead through everything at once would make the churn moot).
        let produce_stage = |stage: u64| {
            let per_stage = PER_PARTITION / 10;
            for i in stage * per_stage..(stage + 1) * per_stage {
                for p in 0..PARTITIONS {
                    producer
                        .send_to("t", PartitionId(p), Record::new(format!("{p}:{i}")))
                        .unwrap();
                }
            }
        };
        let all = (PARTITIONS as u64 * PER_PARTITION) as usize;
        let seen: Seen = Arc::default();
        let total = Arc::new(AtomicUsize::new(0));
        let mut next_id = 0;
        let mut spawn = |stop: &Arc<AtomicBool>| {
            next_id += 1;
            let (seen, total, stop) = (Arc::clone(&seen), Arc::clone(&total), Arc::clone(stop));
            member(next_id, &log, assignor, seen, total, stop)
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        // Waits until `n` members share every partition, each owning some.
        let settled = |n: usize| {
            while !log.describe_group("g").is_ok_and(|d| {
                d.members.len() == n
                    && d.members.iter().all(|m| !m.assignment.is_empty())
                    && d.members.iter().map(|m| m.assignment.len()).sum::<usize>()
                        == PARTITIONS as usize
            }) {
                assert!(
                    Instant::now() < deadline,
                    "{assignor:?}: never settled on {n}"
                );
                std::thread::yield_now();
            }
        };
        // Churn: members come and go between the stages.
        let first = Arc::new(AtomicBool::new(false));
        let mut running = vec![(Arc::clone(&first), spawn(&first))];
        settled(1);
        for step in 0..8usize {
            produce_stage(step as u64);
            let target = all * (step + 1) / 10;
            while total.load(Ordering::SeqCst) < target {
                assert!(
                    Instant::now() < deadline,
                    "{assignor:?}: stalled at step {step}"
                );
                std::thread::yield_now();
            }
            if step % 3 == 2 && running.len() > 1 {
                let (stop, handle): (Arc<AtomicBool>, std::thread::JoinHandle<()>) =
                    running.remove(0);
                stop.store(true, Ordering::SeqCst);
                handle.join().unwrap();
            } else {
                let stop = Arc::new(AtomicBool::new(false));
                running.push((Arc::clone(&stop), spawn(&stop)));
            }
            settled(running.len().min(PARTITIONS as usize));
        }
        produce_stage(8);
        produce_stage(9);
        while total.load(Ordering::SeqCst) < all {
            assert!(
                Instant::now() < deadline,
                "{assignor:?}: not everything delivered"
            );
            std::thread::yield_now();
        }
        for (stop, handle) in running {
            stop.store(true, Ordering::SeqCst);
            handle.join().unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), all, "{assignor:?}: every record delivered");
        let repeated: Vec<_> = seen.iter().filter(|(_, m)| m.len() > 1).take(5).collect();
        assert!(
            repeated.is_empty(),
            "{assignor:?}: delivered twice: {repeated:?}"
        );
        // The churn really moved partitions between members mid-stream.
        let mut owners: BTreeMap<u32, std::collections::BTreeSet<usize>> = BTreeMap::new();
        for ((p, _), members) in seen.iter() {
            owners.entry(*p).or_default().extend(members);
        }
        let handed_over = owners.values().filter(|m| m.len() > 1).count();
        assert!(
            handed_over > 0,
            "{assignor:?}: no partition changed hands: {owners:?}"
        );
        assert_eq!(total.load(Ordering::SeqCst), all);
    }
}
