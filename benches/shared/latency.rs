//! One event at a time from a sending thread to a blocked receiving
//! thread: the measurement loop shared by `benches/latency.rs` and
//! `benches/broker.rs` (see `latency.rs` for what is measured).
#![allow(dead_code, reason = "each bench uses a different subset")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moldau::{
    AutoOffsetReset, ConsumerConfig, Log, LogConfig, ProducerConfig, Record, TopicName,
    TopicPartition,
};

/// Events sent before the recorded ones (page faults, first wake-ups).
pub const WARMUP: usize = 1000;
/// Pause between one event's receipt and the next send, so that the
/// consumer is blocked again when the send happens.
pub const GAP: Duration = Duration::from_micros(20);
/// Percentiles reported and drawn.
pub const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// Nanoseconds on one clock shared by both threads.
#[derive(Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now(self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// What the producer side recorded per event, by sequence number.
pub struct Sent {
    /// Just before `send` was called.
    pub called: Vec<u64>,
    /// Just after `send` returned.
    pub returned: Vec<u64>,
}

/// Waits until the consumer has received `count` events.
pub fn wait_acked(acked: &AtomicU64, count: u64) {
    let mut spins = 0u32;
    while acked.load(Ordering::Acquire) < count {
        spins += 1;
        match spins < 100 {
            true => std::hint::spin_loop(),
            false => thread::yield_now(),
        }
    }
}

/// Runs the producer loop: `send(i)` for every event, paced as described
/// in the module comment.
pub fn produce(n: usize, clock: Clock, acked: &AtomicU64, mut send: impl FnMut(u64)) -> Sent {
    let mut sent = Sent {
        called: Vec::with_capacity(n),
        returned: Vec::with_capacity(n),
    };
    for i in 0..n {
        wait_acked(acked, i as u64);
        thread::sleep(GAP);
        let t0 = clock.now();
        send(i as u64);
        let t1 = clock.now();
        sent.called.push(t0);
        sent.returned.push(t1);
    }
    sent
}

/// Latencies (ns) of the recorded events: receipt minus `from`, at least 0.
pub fn latencies(from: &[u64], received: &[u64]) -> Vec<u64> {
    let mut l: Vec<u64> = from
        .iter()
        .zip(received)
        .skip(WARMUP)
        .map(|(s, r)| r.saturating_sub(*s))
        .collect();
    l.sort_unstable();
    l
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

pub fn moldau_run(n: usize, value: &Bytes, dir: &std::path::Path) -> (Sent, Vec<u64>) {
    let log = Log::open(dir, LogConfig::default()).expect("open log");
    log.create_topic("latency", 1, None).expect("create topic");
    let producer = log.producer(ProducerConfig::default()).expect("producer");
    let clock = Clock(Instant::now());
    let acked = Arc::new(AtomicU64::new(0));

    let consumer_log = log.clone();
    let consumer_acked = Arc::clone(&acked);
    let consumer = thread::spawn(move || {
        let mut consumer = consumer_log
            .consumer(ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                enable_auto_commit: false,
                ..ConsumerConfig::default()
            })
            .expect("consumer");
        consumer
            .assign(&[TopicPartition::new(
                TopicName::new("latency").expect("topic name"),
                0u32,
            )])
            .expect("assign");
        let mut received = vec![0u64; n];
        let mut got = 0;
        while got < n {
            let records = consumer.poll(Duration::from_secs(10)).expect("poll");
            let now = clock.now();
            assert!(!records.is_empty(), "no event within 10 s");
            for r in records {
                received[r.offset.0 as usize] = now;
                got += 1;
            }
            consumer_acked.store(got as u64, Ordering::Release);
        }
        received
    });
    let sent = produce(n, clock, &acked, |_| {
        producer
            .send("latency", Record::new(value.clone()))
            .expect("send");
    });
    let received = consumer.join().expect("consumer thread");
    log.close().expect("close");
    (sent, received)
}

pub fn channel_run(n: usize, value: &Bytes) -> (Sent, Vec<u64>) {
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, Bytes)>();
    let clock = Clock(Instant::now());
    let acked = Arc::new(AtomicU64::new(0));
    let consumer_acked = Arc::clone(&acked);
    let consumer = thread::spawn(move || {
        let mut received = vec![0u64; n];
        for got in 1..=n {
            let (i, v) = rx.recv().expect("recv");
            received[i as usize] = clock.now();
            std::hint::black_box(v);
            consumer_acked.store(got as u64, Ordering::Release);
        }
        received
    });
    let sent = produce(n, clock, &acked, |i| {
        tx.send((i, value.clone())).expect("send");
    });
    let received = consumer.join().expect("consumer thread");
    (sent, received)
}
