//! Concurrent use of one `PartitionLog`: tailing readers see every record once,
//! in order, intact, while it is appended; concurrent appenders get unique,
//! contiguous offsets.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use moldau::{Offset, PartitionLog, Record};

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<PartitionLog>();
};

#[test]
fn tailing_readers_see_every_record_once() {
    const N: u64 = 2000;
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(tmp.path(), small_config()).unwrap());
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut next = 0u64;
                while next < N {
                    assert!(
                        log.wait_for(Offset(next), Duration::from_secs(30)).unwrap(),
                        "no record {next} within 30 s"
                    );
                    let b = log.read(Offset(next), 1000).unwrap();
                    for r in b.records() {
                        assert_record(&r.unwrap(), next);
                        next += 1;
                    }
                }
                next
            })
        })
        .collect();
    let mut i = 0;
    while i < N {
        let n = (1 + i % 5).min(N - i);
        let recs: Vec<Record> = (i..i + n).map(common::record).collect();
        assert_eq!(log.append(&recs).unwrap(), Offset(i));
        i += n;
    }
    for r in readers {
        assert_eq!(r.join().unwrap(), N);
    }
    assert!(log.stats().segment_count > 5);
}

#[test]
fn concurrent_appenders_get_contiguous_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(tmp.path(), small_config()).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                (0..300u64)
                    .map(|s| {
                        let n = 1 + s % 3;
                        let recs: Vec<Record> = (0..n)
                            .map(|k| Record::new(format!("t{t}-s{s}-{k}")))
                            .collect();
                        (log.append(&recs).unwrap(), t, s, n)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut expected = std::collections::BTreeMap::new();
    for t in threads {
        for (first, t, s, n) in t.join().unwrap() {
            for k in 0..n {
                let prev = expected.insert(first.0 + k, format!("t{t}-s{s}-{k}"));
                assert!(prev.is_none(), "offset {} given twice", first.0 + k);
            }
        }
    }
    let end = log.end_offset().0;
    assert_eq!(expected.len() as u64, end);
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        (0..end).collect::<Vec<_>>()
    );
    let stored = read_all(&log, Offset(0));
    assert_eq!(stored.len() as u64, end);
    for r in stored {
        assert_eq!(r.value.as_deref(), Some(expected[&r.offset.0].as_bytes()));
    }
}
