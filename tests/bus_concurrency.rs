//! Many threads produce while a group of consumers consumes: every record
//! is delivered exactly once (no rebalance happens during the run), and each
//! partition's records arrive in offset order, each producer's in send order.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::groups::{all_partitions, settle};
use moldau::{AutoOffsetReset, Consumer, ConsumerConfig, Log, LogConfig, ProducerConfig, Record};

const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 5_000;
const PARTITIONS: u32 = 6;

#[test]
fn producers_and_a_consumer_group_deliver_everything_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("events", PARTITIONS, None).unwrap();
    let config = ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        max_poll_records: 100,
        ..ConsumerConfig::default()
    };
    let mut consumers: Vec<Consumer> = (0..3)
        .map(|_| {
            let mut c = log.consumer(config.clone()).unwrap();
            c.subscribe("g", &["events"]).unwrap();
            c
        })
        .collect();
    {
        let mut refs: Vec<&mut Consumer> = consumers.iter_mut().collect();
        settle(&mut refs, &all_partitions(&[("events", PARTITIONS)]));
    }
    let total = (PRODUCERS * PER_PRODUCER) as usize;
    let received = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = consumers
        .into_iter()
        .map(|mut c| {
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let generation = c.generation();
                let mut got = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while received.load(Ordering::SeqCst) < total && Instant::now() < deadline {
                    let records = c.poll(Duration::from_millis(50)).unwrap();
                    if !records.is_empty() {
                        assert_eq!(
                            c.generation(),
                            generation,
                            "no rebalance while records flow"
                        );
                    }
                    for r in records {
                        got.push((r.partition.0, r.offset.0, r.value.unwrap()));
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                }
                got
            })
        })
        .collect();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let producer = Arc::new(producer);
    let writers: Vec<_> = (0..PRODUCERS)
        .map(|t| {
            let producer = Arc::clone(&producer);
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let r = Record::new(format!("{t}:{seq}")).with_key(format!("k{}", seq % 97));
                    producer.send("events", r).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut by_partition: BTreeMap<u32, Vec<(u64, String)>> = BTreeMap::new();
    for r in readers {
        for (p, o, v) in r.join().unwrap() {
            by_partition
                .entry(p)
                .or_default()
                .push((o, String::from_utf8(v.to_vec()).unwrap()));
        }
    }
    let mut count = 0;
    for (p, records) in &by_partition {
        // Offsets 0..n exactly once, in order (one owner read the partition).
        let offsets: Vec<u64> = records.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..records.len() as u64).collect::<Vec<_>>(),
            "partition {p}"
        );
        // Each producer's records in send order.
        let mut last: HashMap<String, u64> = HashMap::new();
        for (_, v) in records {
            let (t, seq) = v.split_once(':').unwrap();
            let seq: u64 = seq.parse().unwrap();
            if let Some(prev) = last.insert(t.to_string(), seq) {
                assert!(seq > prev, "partition {p}: producer {t} out of order");
            }
        }
        count += records.len();
    }
    assert_eq!(count, total);
}
