//! Each `FlushPolicy` moves the flushed offset when it says: after every
//! append, every n records, after an interval of the injected clock, or only
//! on `flush`; group commit keeps concurrent `Always` appenders correct.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use moldau::{FlushPolicy, ManualClock, Offset, PartitionConfig, PartitionLog, Record, Timestamp};

fn config(flush: FlushPolicy) -> PartitionConfig {
    PartitionConfig {
        flush,
        segment_bytes: 64 << 10,
        ..small_config()
    }
}

#[test]
fn always_flushes_each_append() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config(FlushPolicy::Always)).unwrap();
    for i in 0..50 {
        log.append(&[common::record(i)]).unwrap();
        assert_eq!(log.flushed_offset(), log.end_offset());
    }
}

#[test]
fn every_records_flushes_in_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config(FlushPolicy::EveryRecords(10))).unwrap();
    for i in 0..95u64 {
        log.append(&[common::record(i)]).unwrap();
        let flushed = log.flushed_offset().0;
        assert_eq!(flushed, (i + 1) / 10 * 10, "after record {i}");
    }
    log.flush().unwrap();
    assert_eq!(log.flushed_offset(), Offset(95));
}

#[test]
fn interval_flushes_when_the_clock_passes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let cfg = PartitionConfig {
        clock: clock.clone(),
        ..config(FlushPolicy::Interval(Duration::from_secs(5)))
    };
    let log = PartitionLog::open(tmp.path(), cfg).unwrap();
    for i in 0..10 {
        log.append(&[common::record(i)]).unwrap();
        clock.advance_ms(100);
    }
    assert_eq!(log.flushed_offset(), Offset(0));
    assert!(!log.flush_if_due().unwrap());
    clock.advance_ms(3_999);
    assert!(!log.flush_if_due().unwrap(), "4.999 s < 5 s");
    assert_eq!(log.flushed_offset(), Offset(0));
    clock.advance_ms(1);
    assert!(log.flush_if_due().unwrap());
    assert_eq!(log.flushed_offset(), Offset(10));
    assert!(!log.flush_if_due().unwrap(), "just flushed");
    // An append after the interval flushes by itself.
    log.append(&[common::record(10)]).unwrap();
    assert_eq!(log.flushed_offset(), Offset(10));
    clock.advance_ms(5_000);
    log.append(&[common::record(11)]).unwrap();
    assert_eq!(log.flushed_offset(), Offset(12));
}

#[test]
fn never_flushes_only_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config(FlushPolicy::Never)).unwrap();
    for i in 0..30 {
        log.append(&[common::record(i)]).unwrap();
    }
    assert_eq!(log.flushed_offset(), Offset(0));
    assert!(!log.flush_if_due().unwrap());
    log.flush().unwrap();
    assert_eq!(log.flushed_offset(), Offset(30));
}

#[test]
fn concurrent_always_appenders() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(tmp.path(), config(FlushPolicy::Always)).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for s in 0..200u64 {
                    let v = format!("t{t}-s{s}");
                    let off = log.append(&[Record::new(v.clone())]).unwrap();
                    assert!(log.flushed_offset() > off, "acknowledged before durable");
                    mine.push((off, v));
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<(Offset, String)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all.len(), 1600);
    assert_eq!(log.end_offset(), Offset(1600));
    assert_eq!(log.flushed_offset(), Offset(1600));
    // Group commit: the 1,600 acknowledgements shared fsyncs.
    let syncs = log.stats().syncs;
    assert!(
        syncs < 1600,
        "{syncs} fsyncs for 1600 appends: no group commit"
    );
    let stored = read_all(&log, Offset(0));
    for ((off, v), r) in all.iter().zip(&stored) {
        assert_eq!(*off, r.offset);
        assert_eq!(r.value.as_deref(), Some(v.as_bytes()));
    }
    assert_eq!(stored.len(), 1600);
}
