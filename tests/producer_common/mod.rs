//! Helpers for the producer tests: reading a closed log's partitions back
//! batch by batch.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]

use std::path::Path;

use moldau::{Offset, PartitionConfig, PartitionLog, StoredRecord};

/// The batches of partition `partition` of `topic` in the data directory
/// `data` (whose `Log` must be closed), each as its records.
pub fn read_batches(data: &Path, topic: &str, partition: u32) -> Vec<Vec<StoredRecord>> {
    let dir = data.join(format!("{topic}-{partition}"));
    let log = PartitionLog::open(&dir, PartitionConfig::default()).unwrap();
    let end = log.end_offset();
    let mut next = log.start_offset();
    let mut batches = Vec::new();
    while next < end {
        let read = log.read(next, 1 << 20).unwrap();
        for batch in read.iter() {
            let batch = batch.unwrap();
            let records: Vec<StoredRecord> = batch.records().unwrap().map(|r| r.unwrap()).collect();
            next = Offset(batch.last_offset().0 + 1);
            batches.push(records);
        }
    }
    log.close().unwrap();
    batches
}

/// The records of partition `partition` of `topic`, in offset order.
pub fn read_records(data: &Path, topic: &str, partition: u32) -> Vec<StoredRecord> {
    read_batches(data, topic, partition)
        .into_iter()
        .flatten()
        .collect()
}
