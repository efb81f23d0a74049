//! Concurrent `Producer::send`s to one partition: every send gets its own
//! offset, each thread's offsets increase, and sends that meet a busy writer
//! (or a lingering one) are combined into shared batches.

mod producer_common;

use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use moldau::{FlushPolicy, Log, LogConfig, Producer, ProducerConfig, Record, TopicConfig};
use producer_common::read_batches;

const _: () = {
    const fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Producer>();
};

/// The sending thread and its sequence number, as stored in a value.
fn parse(value: &[u8]) -> (u64, u64) {
    let s = std::str::from_utf8(value).unwrap();
    let (t, i) = s.split_once('-').unwrap();
    (t.parse().unwrap(), i.parse().unwrap())
}

#[test]
fn concurrent_sends_get_distinct_offsets_and_share_batches() {
    const THREADS: u64 = 8;
    const SENDS: u64 = 250;
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    // An fsync per append keeps the writer busy long enough for the other
    // threads to queue behind it.
    let config = TopicConfig {
        flush: FlushPolicy::Always,
        ..TopicConfig::default()
    };
    log.create_topic("events", 1, Some(config)).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let producer = producer.clone();
            thread::spawn(move || {
                (0..SENDS)
                    .map(|i| {
                        let r = Record::new(format!("{t}-{i}"));
                        producer.send("events", r).unwrap().offset.0
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for t in threads {
        let offsets = t.join().unwrap();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        for o in offsets {
            assert!(all.insert(o), "offset {o} given twice");
        }
    }
    let total = THREADS * SENDS;
    assert_eq!(all, (0..total).collect());
    log.close().unwrap();

    let batches = read_batches(tmp.path(), "events", 0);
    let records: u64 = batches.iter().map(|b| b.len() as u64).sum();
    assert_eq!(records, total);
    assert!(
        (batches.len() as u64) < total,
        "{} batches for {total} records: nothing was combined",
        batches.len()
    );
    // Each thread's records are stored in the order it sent them.
    let mut next = vec![0u64; THREADS as usize];
    for r in batches.iter().flatten() {
        let (t, i) = parse(r.value.as_ref().unwrap());
        assert_eq!(i, next[t as usize], "thread {t}");
        next[t as usize] += 1;
    }
}

#[test]
fn with_linger_a_send_waits_to_be_combined_with_others() {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 3;
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("events", 1, None).unwrap();
    // A batch_size no round fills: every leader lingers the whole 200 ms,
    // while the other threads of its round, released by the same barrier,
    // queue behind it.
    let config = ProducerConfig {
        linger: Duration::from_millis(200),
        batch_size: 1 << 20,
    };
    let producer = log.producer(config).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let producer = producer.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                for i in 0..ROUNDS {
                    barrier.wait();
                    let r = Record::new(format!("{t}-{i}"));
                    producer.send("events", r).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log.close().unwrap();

    let batches = read_batches(tmp.path(), "events", 0);
    let records: usize = batches.iter().map(Vec::len).sum();
    assert_eq!(records as u64, THREADS * ROUNDS);
    let mixed = batches.iter().any(|b| {
        let senders: BTreeSet<u64> = b
            .iter()
            .map(|r| parse(r.value.as_ref().unwrap()).0)
            .collect();
        senders.len() > 1
    });
    assert!(
        mixed,
        "no batch holds more than one thread's records: {batches:?}"
    );
}

#[test]
fn fast_concurrent_sends_all_complete() {
    // Regression guard for the combiner's lock-free idle path: with appends
    // this short, senders keep switching between appending at once and
    // queueing; a lost wake-up would leave a sender waiting forever.
    const THREADS: u64 = 8;
    const SENDS: u64 = 5000;
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("events", 2, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    for t in 0..THREADS {
        let producer = producer.clone();
        let tx = tx.clone();
        thread::spawn(move || {
            let mut last = [None; 2];
            for i in 0..SENDS {
                let p = moldau::PartitionId((i % 2) as u32);
                let sent = producer
                    .send_to("events", p, Record::new(format!("{t}-{i}")))
                    .unwrap();
                let prev = last[p.0 as usize].replace(sent.offset);
                assert!(prev < Some(sent.offset));
            }
            tx.send(t).unwrap();
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..THREADS {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left).expect("a sender hung");
    }
    let ends: u64 = log
        .describe_topic("events")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.end_offset.0)
        .sum();
    assert_eq!(ends, THREADS * SENDS);
}
