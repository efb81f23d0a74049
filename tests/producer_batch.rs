//! `Producer::send_batch`: records partitioned as by `send`, stored in input
//! order per partition in batches of at most `batch_size` bytes, metadata
//! returned in input order.

mod producer_common;

use moldau::{partition_for_key, Log, LogConfig, ProducerConfig, Record};
use producer_common::read_batches;

#[test]
fn a_batch_send_partitions_chunks_and_reports_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("orders", 3, None).unwrap();
    // About 10 of these 100-byte records per 1500-byte batch.
    let config = ProducerConfig {
        batch_size: 1500,
        ..ProducerConfig::default()
    };
    let producer = log.producer(config).unwrap();
    let records: Vec<Record> = (0..300)
        .map(|i| Record::new(format!("{i:0100}")).with_key(format!("key-{}", i % 17)))
        .collect();
    let sent = producer.send_batch("orders", records.clone()).unwrap();
    assert_eq!(sent.len(), records.len());
    for (m, r) in sent.iter().zip(&records) {
        let key = r.key.as_deref().unwrap();
        assert_eq!(Some(m.partition), partition_for_key(key, 3));
    }
    assert!(producer
        .send_batch("orders", Vec::new())
        .unwrap()
        .is_empty());
    log.close().unwrap();

    for p in 0..3u32 {
        let batches = read_batches(tmp.path(), "orders", p);
        let ours: Vec<_> = sent
            .iter()
            .zip(&records)
            .filter(|(m, _)| m.partition.0 == p)
            .collect();
        let stored: Vec<_> = batches.iter().flatten().collect();
        assert_eq!(stored.len(), ours.len(), "partition {p}");
        // Input order is offset order, and each metadata names its record.
        for (s, (m, r)) in stored.iter().zip(&ours) {
            assert_eq!(s.offset, m.offset);
            assert_eq!(s.value, r.value);
        }
        for b in &batches {
            let bytes: usize = b.iter().map(|r| r.value.as_ref().unwrap().len()).sum();
            assert!(bytes <= 1500, "a batch of {} records", b.len());
        }
        assert!(batches.len() > 1, "partition {p} in one batch");
    }
}

/// Batches sent at once by several threads to one partition interleave at
/// batch boundaries; each sender's metadata still names the offset where
/// each of its records is stored.
#[test]
fn concurrent_batches_to_one_partition_report_their_own_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("events", 1, None).unwrap();
    let producer = log
        .producer(ProducerConfig {
            batch_size: 600,
            ..ProducerConfig::default()
        })
        .unwrap();
    let sent: Vec<Vec<(moldau::RecordMetadata, Record)>> = std::thread::scope(|s| {
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let producer = producer.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for round in 0..20 {
                        let records: Vec<Record> = (0..50)
                            .map(|i| Record::new(format!("t{t}-r{round}-{i:040}")))
                            .collect();
                        let md = producer.send_batch("events", records.clone()).unwrap();
                        out.extend(md.into_iter().zip(records));
                    }
                    out
                })
            })
            .collect();
        senders.into_iter().map(|h| h.join().unwrap()).collect()
    });
    log.close().unwrap();
    let stored: Vec<_> = read_batches(tmp.path(), "events", 0)
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(stored.len(), 4 * 20 * 50);
    for (m, r) in sent.iter().flatten() {
        let s = &stored[m.offset.0 as usize];
        assert_eq!(s.offset, m.offset);
        assert_eq!(
            s.value, r.value,
            "metadata offset {} names another record",
            m.offset.0
        );
    }
}

/// Keyless records on a multi-partition topic stick to one partition per
/// batch; a mix of keys spreads them. Either way each metadata is right.
#[test]
fn keyless_and_keyed_batches_on_many_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), LogConfig::default()).unwrap();
    log.create_topic("mixed", 4, None).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let keyless: Vec<Record> = (0..40).map(|i| Record::new(format!("v{i}"))).collect();
    let a = producer.send_batch("mixed", keyless.clone()).unwrap();
    let mixed: Vec<Record> = (0..40)
        .map(|i| match i % 2 {
            0 => Record::new(format!("k{i}")).with_key(format!("key{i}")),
            _ => Record::new(format!("n{i}")),
        })
        .collect();
    let b = producer.send_batch("mixed", mixed.clone()).unwrap();
    log.close().unwrap();
    let mut stored = std::collections::HashMap::new();
    for p in 0..4u32 {
        for r in read_batches(tmp.path(), "mixed", p).into_iter().flatten() {
            stored.insert((p, r.offset), r.value);
        }
    }
    for (m, r) in a.iter().zip(&keyless).chain(b.iter().zip(&mixed)) {
        if let Some(key) = r.key.as_deref() {
            assert_eq!(Some(m.partition), partition_for_key(key, 4));
        }
        assert_eq!(stored.get(&(m.partition.0, m.offset)), Some(&r.value));
    }
}
