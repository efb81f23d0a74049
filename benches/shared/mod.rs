//! The moldau read loops shared by `benches/read.rs`, `benches/peers.rs`
//! and `benches/consumer.rs`.
#![allow(dead_code, reason = "each bench uses a different subset")]

use std::ops::ControlFlow;

use moldau::{Offset, PartitionLog};

/// Bytes asked for per `read` call.
pub const READ_BYTES: usize = 1 << 20;

/// Reads the whole partition; returns the record count and a checksum of
/// the bytes touched so nothing is optimised away.
pub fn read_all(log: &PartitionLog) -> (u64, u64) {
    let end = log.end_offset();
    let mut next = Offset(0);
    let (mut count, mut sum) = (0u64, 0u64);
    while next < end {
        let batches = log.read(next, READ_BYTES).expect("read");
        for r in batches.records() {
            let r = r.expect("record");
            sum += r.key.as_ref().map_or(0, |k| k.len() as u64);
            sum += r
                .value
                .as_ref()
                .map_or(0, |v| u64::from(v[0]) + v.len() as u64);
            next = Offset(r.offset.0 + 1);
            count += 1;
        }
    }
    (count, sum)
}

/// Like [`read_all`], with the borrowing visitor.
pub fn read_all_borrowed(log: &PartitionLog) -> (u64, u64) {
    let end = log.end_offset();
    let mut next = Offset(0);
    let (mut count, mut sum) = (0u64, 0u64);
    while next < end {
        let batches = log.read(next, READ_BYTES).expect("read");
        batches
            .for_each_record(|r| {
                sum += r.key.map_or(0, |k| k.len() as u64);
                sum += r.value.map_or(0, |v| u64::from(v[0]) + v.len() as u64);
                next = Offset(r.offset.0 + 1);
                count += 1;
                ControlFlow::Continue(())
            })
            .expect("record");
    }
    (count, sum)
}
