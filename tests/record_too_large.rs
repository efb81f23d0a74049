//! A record larger than `max_record_bytes` is refused with `RecordTooLarge`
//! and nothing is appended; many small records over the limit in total are
//! split into several batches.

mod common;

use common::*;
use moldau::{Error, Offset, PartitionConfig, PartitionLog, Record};

fn config() -> PartitionConfig {
    PartitionConfig {
        max_record_bytes: 1024,
        ..small_config()
    }
}

#[test]
fn oversized_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    append_range(&log, 0..3, 1);
    for extra in [Vec::new(), vec![Record::new("small")]] {
        let mut recs = extra;
        recs.push(Record::new(vec![7u8; 1100]));
        match log.append(&recs) {
            Err(Error::RecordTooLarge { size, max }) => {
                assert_eq!(max, 1024);
                assert!(size > 1024, "{size}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(log.end_offset(), Offset(3), "nothing appended");
    }
    assert_eq!(log.append(&[common::record(3)]).unwrap(), Offset(3));
    assert_records(&log, 0..4);
    log.close().unwrap();
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    assert_records(&log, 0..4);
}

#[test]
fn many_records_are_split_into_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), config()).unwrap();
    let recs: Vec<Record> = (0..100).map(common::record).collect();
    assert_eq!(log.append(&recs).unwrap(), Offset(0));
    assert_eq!(log.end_offset(), Offset(100));
    assert_records(&log, 0..100);
    let mut next = Offset(0);
    let mut batches = 0;
    while next < log.end_offset() {
        let b = log.read(next, 1).unwrap();
        assert!(b.len() <= 1024, "batch of {} bytes", b.len());
        next = b.next_offset().unwrap();
        batches += 1;
    }
    assert!(batches > 1, "{batches}");
}
