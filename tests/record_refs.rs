//! `Batches::for_each_record` visits exactly the records `Batches::records`
//! yields, borrowed: plain and compressed batches, reads starting inside a
//! batch, early stop with `ControlFlow::Break`, and corruption reported as
//! `Error::Corrupt` at the same place, with no record of a damaged batch seen.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use bytes::Bytes;
use common::*;
use moldau::record::encode_compressed_batch;
use moldau::{
    Batches, Error, Header, Offset, PartitionLog, Record, RecordRef, StoredRecord, Timestamp,
};

/// Keyed records with a header, tombstones, and records without a key.
fn mixed(i: u64) -> Record {
    match i % 7 {
        0 => Record::tombstone(format!("key-{i}")),
        3 => Record::new(value(i))
            .with_header("h", "x")
            .with_header("h", ""),
        _ => record(i),
    }
}

/// The owned form of a borrowed record, to compare with `records()`.
fn owned(r: RecordRef<'_>) -> StoredRecord {
    let headers = r.headers();
    assert_eq!(headers.len(), headers.clone().count(), "exact header count");
    StoredRecord {
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key.map(Bytes::copy_from_slice),
        value: r.value.map(Bytes::copy_from_slice),
        headers: headers
            .map(|h| Header {
                key: Bytes::copy_from_slice(h.key),
                value: h.value.map(Bytes::copy_from_slice),
            })
            .collect(),
    }
}

/// What `records()` yields: the records before the first error, and the error.
fn via_records(b: &Batches) -> (Vec<StoredRecord>, Option<Error>) {
    let mut out = Vec::new();
    for r in b.records() {
        match r {
            Ok(r) => out.push(r),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// What `for_each_record` visits, and the error it returns.
fn via_visitor(b: &Batches) -> (Vec<StoredRecord>, Option<Error>) {
    let mut out = Vec::new();
    let result = b.for_each_record(|r| {
        out.push(owned(r));
        ControlFlow::Continue(())
    });
    (out, result.err())
}

/// Reads from every offset in `0..end` with a few byte limits; both ways
/// must give the same records and no error. Returns how many were compared.
fn assert_same_everywhere(log: &PartitionLog, end: u64) -> usize {
    let mut compared = 0;
    for from in 0..end {
        for max_bytes in [1, 300, 1 << 20] {
            let b = log.read(Offset(from), max_bytes).unwrap();
            let (want, err) = via_records(&b);
            assert!(err.is_none(), "records() from {from}: {err:?}");
            assert_eq!(want.first().map(|r| r.offset), Some(Offset(from)));
            let (got, err) = via_visitor(&b);
            assert!(err.is_none(), "for_each_record from {from}: {err:?}");
            assert_eq!(got, want, "from {from}, {max_bytes} bytes");
            compared += got.len();
        }
    }
    compared
}

#[test]
fn same_records_as_records_for_plain_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    for start in (0..150).step_by(6) {
        let batch: Vec<Record> = (start..start + 6).map(mixed).collect();
        log.append(&batch).unwrap();
    }
    assert!(log_files(tmp.path()).len() > 1, "spans segments");
    assert!(assert_same_everywhere(&log, 150) > 150);
    log.close().unwrap();
}

#[test]
fn same_records_as_records_for_compressed_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    let mut next = 0;
    for codec in CODECS {
        let records: Vec<Record> = (next..next + 10)
            .map(|i| mixed(i).with_timestamp(Timestamp(1_700_000_000_000 + i as i64)))
            .collect();
        let bytes = encode_compressed_batch(&records, Timestamp(0), Offset(0), codec).unwrap();
        assert_eq!(log.append_batch(&bytes).unwrap(), Offset(next), "{codec:?}");
        next += 10;
    }
    assert!(assert_same_everywhere(&log, next) > next as usize);
    log.close().unwrap();
}

#[test]
fn break_stops_the_visit() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    append_range(&log, 0..20, 5);
    let b = log.read(Offset(2), 1 << 20).unwrap();
    let mut seen = Vec::new();
    b.for_each_record(|r| {
        seen.push(r.offset.0);
        match r.offset.0 == 8 {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    })
    .unwrap();
    // Across a batch boundary (5..10) and no further.
    assert_eq!(seen, (2..=8).collect::<Vec<_>>());
    log.close().unwrap();
}

/// Flips one byte in a batch of the first (sealed) segment and compares both
/// read paths on the damaged segment.
fn flip_and_compare(dir: &Path, pick: impl Fn(u64, u64) -> u64) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    append_range(&log, 0..200, 4);
    let b = log.read(Offset(0), 1 << 20).unwrap();
    // The read stops at the first segment's end; take its third batch.
    let mut batches = b.iter().map(|b| b.unwrap());
    let (first, second, third) = (
        batches.next().unwrap(),
        batches.next().unwrap(),
        batches.next().unwrap(),
    );
    assert!(batches.next().is_some(), "the segment holds more batches");
    let position = (first.bytes().len() + second.bytes().len()) as u64;
    let flip_at = pick(position, third.bytes().len() as u64);
    let file = log_files(dir)[0].clone();
    log.close().unwrap();
    flip_byte(&file, flip_at, 0x40);

    let log = PartitionLog::open(dir, small_config()).unwrap();
    let b = log.read(Offset(1), 1 << 20).unwrap();
    let (want, want_err) = via_records(&b);
    let (got, got_err) = via_visitor(&b);
    assert_eq!(got, want, "records before the damage");
    // Every record before the third batch, none of it.
    let offsets: Vec<u64> = got.iter().map(|r| r.offset.0).collect();
    assert_eq!(offsets, (1..third.base_offset().0).collect::<Vec<_>>());
    for e in [want_err, got_err] {
        match e {
            Some(Error::Corrupt {
                path,
                position: at,
                reason,
            }) => {
                assert_eq!(path, file, "{reason}");
                assert_eq!(at, position, "{reason}");
            }
            other => panic!("expected Corrupt at {position}, got {other:?}"),
        }
    }
    log.close().unwrap();
}

#[test]
fn corruption_in_a_value_is_reported_before_any_record_of_its_batch() {
    let tmp = tempfile::tempdir().unwrap();
    // The batch's last byte: inside its last record, covered by the CRC.
    flip_and_compare(tmp.path(), |position, len| position + len - 1);
}

#[test]
fn corruption_in_a_batch_header_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    // producerId (43..51): covered by the CRC only, so the read's header
    // scan passes it and record decoding must catch it.
    flip_and_compare(tmp.path(), |position, _| position + 45);
}
