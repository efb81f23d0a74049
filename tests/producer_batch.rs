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
