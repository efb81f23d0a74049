//! Property: a producer and a manually assigned consumer behave like a
//! model of one `Vec` of values per partition, through sends (keyed,
//! keyless, to an explicit partition, in batches), polls, seeks, added
//! partitions and restarts.

use std::time::Duration;

use moldau::{
    partition_for_key, AutoOffsetReset, Consumer, ConsumerConfig, Log, LogConfig, Offset,
    PartitionId, ProducerConfig, Record, TopicName, TopicPartition,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Send { key: Option<u8>, len: usize },
    SendTo { partition: u32, len: usize },
    SendBatch { keys: Vec<u8> },
    Poll { max: usize },
    Seek { partition: u32, back: u64 },
    AddPartition,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (proptest::option::of(any::<u8>()), 0..300usize).prop_map(|(key, len)| Op::Send { key, len }),
        2 => (0..8u32, 0..300usize).prop_map(|(partition, len)| Op::SendTo { partition, len }),
        1 => prop::collection::vec(any::<u8>(), 1..20).prop_map(|keys| Op::SendBatch { keys }),
        3 => (1..50usize).prop_map(|max| Op::Poll { max }),
        1 => (0..8u32, 0..20u64).prop_map(|(partition, back)| Op::Seek { partition, back }),
        1 => Just(Op::AddPartition),
        1 => Just(Op::Reopen),
    ]
}

struct World {
    dir: tempfile::TempDir,
    log: Log,
    consumer: Consumer,
    max_poll: usize,
    /// The model: every value sent, per partition, in offset order.
    model: Vec<Vec<Vec<u8>>>,
    /// The model consumer's next offset per partition.
    positions: Vec<u64>,
    seq: u64,
}

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new(TopicName::new("t").unwrap(), p)
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 3, None).unwrap();
        let consumer = Self::consumer(&log, 3, 50);
        World {
            dir,
            log,
            consumer,
            max_poll: 50,
            model: vec![Vec::new(); 3],
            positions: vec![0; 3],
            seq: 0,
        }
    }

    fn consumer(log: &Log, partitions: u32, max_poll_records: usize) -> Consumer {
        let mut c = log
            .consumer(ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                max_poll_records,
                ..ConsumerConfig::default()
            })
            .unwrap();
        c.assign(&(0..partitions).map(tp).collect::<Vec<_>>())
            .unwrap();
        c
    }

    fn value(&mut self, len: usize) -> Vec<u8> {
        self.seq += 1;
        let mut v = self.seq.to_be_bytes().to_vec();
        v.resize(8 + len, b'v');
        v
    }

    fn partitions(&self) -> u32 {
        self.model.len() as u32
    }

    fn reassign(&mut self, max_poll: usize) {
        self.max_poll = max_poll;
        self.consumer = Self::consumer(&self.log, self.partitions(), max_poll);
        for (p, pos) in self.positions.clone().into_iter().enumerate() {
            self.consumer.seek(&tp(p as u32), Offset(pos)).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_bus_matches_a_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        let producer = |log: &Log| log.producer(ProducerConfig::default()).unwrap();
        let mut prod = producer(&w.log);
        for op in ops {
            match op {
                Op::Send { key, len } => {
                    let value = w.value(len);
                    let mut r = Record::new(value.clone());
                    if let Some(k) = key {
                        r = r.with_key(vec![k]);
                    }
                    let md = prod.send("t", r).unwrap();
                    if let Some(k) = key {
                        prop_assert_eq!(Some(md.partition), partition_for_key(&[k], w.partitions()));
                    }
                    let part = &mut w.model[md.partition.0 as usize];
                    prop_assert_eq!(md.offset, Offset(part.len() as u64));
                    part.push(value);
                }
                Op::SendTo { partition, len } => {
                    let value = w.value(len);
                    let result = prod.send_to("t", PartitionId(partition), Record::new(value.clone()));
                    if partition < w.partitions() {
                        let md = result.unwrap();
                        let part = &mut w.model[partition as usize];
                        prop_assert_eq!(md.offset, Offset(part.len() as u64));
                        part.push(value);
                    } else {
                        let unknown = matches!(result, Err(moldau::Error::UnknownPartition { .. }));
                        prop_assert!(unknown);
                    }
                }
                Op::SendBatch { keys } => {
                    let values: Vec<Vec<u8>> = keys.iter().map(|_| w.value(10)).collect();
                    let records = keys
                        .iter()
                        .zip(&values)
                        .map(|(k, v)| Record::new(v.clone()).with_key(vec![*k]))
                        .collect();
                    let mds = prod.send_batch("t", records).unwrap();
                    for (md, v) in mds.iter().zip(values) {
                        let part = &mut w.model[md.partition.0 as usize];
                        prop_assert_eq!(md.offset, Offset(part.len() as u64));
                        part.push(v);
                    }
                }
                Op::Poll { max } => {
                    if max != w.max_poll {
                        w.reassign(max);
                    }
                    let got = w.consumer.poll(Duration::ZERO).unwrap();
                    prop_assert!(got.len() <= max);
                    let available: u64 = w
                        .model
                        .iter()
                        .zip(&w.positions)
                        .map(|(m, p)| m.len() as u64 - p)
                        .sum();
                    prop_assert_eq!(got.is_empty(), available == 0);
                    for r in got {
                        let p = r.partition.0 as usize;
                        prop_assert_eq!(r.offset.0, w.positions[p], "in order, nothing skipped");
                        prop_assert_eq!(r.value.as_deref(), Some(&w.model[p][r.offset.0 as usize][..]));
                        w.positions[p] += 1;
                    }
                }
                Op::Seek { partition, back } => {
                    if partition < w.partitions() {
                        let p = partition as usize;
                        let to = w.positions[p].saturating_sub(back);
                        w.consumer.seek(&tp(partition), Offset(to)).unwrap();
                        w.positions[p] = to;
                    }
                }
                Op::AddPartition => {
                    let n = w.partitions() + 1;
                    w.log.add_partitions("t", n).unwrap();
                    w.model.push(Vec::new());
                    w.positions.push(0);
                    let max = w.max_poll;
                    w.reassign(max);
                }
                Op::Reopen => {
                    drop(prod);
                    let max = w.max_poll;
                    w.consumer = World::consumer(&w.log, 1, max);
                    w.log.close().unwrap();
                    w.log = Log::open(w.dir.path(), LogConfig::default()).unwrap();
                    prod = producer(&w.log);
                    w.reassign(max);
                }
            }
        }
    }
}
