//! `append_batch` stores a producer's encoded batch verbatim (only baseOffset
//! is rewritten), compressed or not, and refuses malformed or oversized
//! batches without appending anything.

mod common;

use common::*;
use moldau::record::{encode_batch_to_vec, encode_compressed_batch, Compression};
use moldau::{Error, Offset, PartitionConfig, PartitionLog, Record, Timestamp};

const TS: Timestamp = Timestamp(1_700_000_000_000);

fn records(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|i| record_at(i, TS.0 + i as i64))
        .collect()
}

fn check_stored(log: &PartitionLog, base: Offset, input: &[u8], from: u64, n: u64) {
    let b = log.read(base, 1).unwrap();
    assert_eq!(b.len(), input.len());
    assert_eq!(
        &b.bytes()[..8],
        &base.0.to_be_bytes(),
        "baseOffset rewritten"
    );
    assert_eq!(&b.bytes()[8..], &input[8..], "stored verbatim");
    let got: Vec<_> = b.records().map(|r| r.unwrap()).collect();
    assert_eq!(got.len() as u64, n);
    for (k, r) in got.iter().enumerate() {
        assert_record(r, from + k as u64);
        assert_eq!(r.timestamp, Timestamp(TS.0 + (from + k as u64) as i64));
    }
}

#[test]
fn plain_batch_is_stored_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    append_range(&log, 0..3, 3);
    // The producer's base offset (here 999) is replaced by the log's.
    let bytes = encode_batch_to_vec(&records(3, 4), TS, Offset(999)).unwrap();
    assert_eq!(log.append_batch(&bytes).unwrap(), Offset(3));
    assert_eq!(log.end_offset(), Offset(7));
    check_stored(&log, Offset(3), &bytes, 3, 4);
    log.close().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    check_stored(&log, Offset(3), &bytes, 3, 4);
}

#[test]
fn compressed_batches_are_stored_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    let mut next = 0;
    for codec in CODECS {
        let bytes = encode_compressed_batch(&records(next, 10), TS, Offset(0), codec).unwrap();
        assert_eq!(log.append_batch(&bytes).unwrap(), Offset(next), "{codec:?}");
        check_stored(&log, Offset(next), &bytes, next, 10);
        next += 10;
    }
    log.close().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    assert_records(&log, 0..next);
}

#[test]
fn malformed_batches_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), small_config()).unwrap();
    append_range(&log, 0..2, 2);
    let good = encode_batch_to_vec(&records(2, 3), TS, Offset(0)).unwrap();
    let compressed =
        encode_compressed_batch(&records(2, 3), TS, Offset(0), Compression::Gzip).unwrap();
    let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
    for crc_byte in 17..21 {
        let mut b = good.clone();
        b[crc_byte] ^= 0x01;
        bad.push((format!("crc byte {crc_byte}"), b));
    }
    for (name, at) in [
        ("attributes", 22),
        ("record", good.len() - 2),
        ("compressed data", compressed.len() - 3),
    ] {
        let mut b = if name == "compressed data" {
            compressed.clone()
        } else {
            good.clone()
        };
        b[at] ^= 0x04;
        bad.push((name.into(), b));
    }
    for magic in [0u8, 1, 3, 0xff] {
        let mut b = good.clone();
        b[16] = magic;
        bad.push((format!("magic {magic}"), b));
    }
    for cut in [0, 1, 12, 60, 61, good.len() - 1] {
        bad.push((format!("truncated to {cut}"), good[..cut].to_vec()));
    }
    let mut longer = good.clone();
    longer.push(0);
    bad.push(("trailing byte".into(), longer));
    for (name, b) in bad {
        match log.append_batch(&b) {
            Err(Error::InvalidBatch { .. }) => {}
            other => panic!("{name}: expected InvalidBatch, got {other:?}"),
        }
        assert_eq!(log.end_offset(), Offset(2), "{name}: nothing appended");
    }
    assert_eq!(log.append_batch(&good).unwrap(), Offset(2));
    assert_records(&log, 0..5);
}

#[test]
fn oversized_batch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        max_record_bytes: 1024,
        ..small_config()
    };
    let log = PartitionLog::open(tmp.path(), config).unwrap();
    let big = encode_batch_to_vec(&records(0, 40), TS, Offset(0)).unwrap();
    assert!(big.len() > 1024);
    match log.append_batch(&big) {
        Err(Error::RecordTooLarge { size, max }) => {
            assert_eq!((size, max), (big.len() as u64, 1024));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.end_offset(), Offset(0));
    let ok = encode_batch_to_vec(&records(0, 2), TS, Offset(0)).unwrap();
    assert_eq!(log.append_batch(&ok).unwrap(), Offset(0));
}
