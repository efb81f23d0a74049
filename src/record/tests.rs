//! Tests across encode and decode: golden bytes derived by hand from Kafka's
//! documented format, round trips, and malformed input.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::*;
use crate::error::FormatError;

/// Recomputes the CRC of a hand-edited batch so the edit reaches record parsing.
fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
}

fn read_all(batch: &[u8]) -> Result<Vec<StoredRecord>, FormatError> {
    Batch::parse(Bytes::copy_from_slice(batch))?
        .records()?
        .collect()
}

fn golden_records() -> Vec<Record> {
    vec![
        Record::new("ab").with_timestamp(Timestamp(1000)),
        Record::new("v")
            .with_key("k")
            .with_timestamp(Timestamp(1010))
            .with_header("h", "x"),
    ]
}

/// The golden batch, derived by hand from the Kafka protocol guide's
/// "Record Batch" and "Record" layouts. CRC-32C of bytes 21..83 was computed
/// with a separate bit-by-bit CRC-32C (polynomial 0x82F63B78 reflected).
#[rustfmt::skip]
const GOLDEN: [u8; 83] = [
    // 0  baseOffset = 5
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    // 8  batchLength = 83 - 12 = 71
    0x00, 0x00, 0x00, 0x47,
    // 12 partitionLeaderEpoch = 0
    0x00, 0x00, 0x00, 0x00,
    // 16 magic = 2
    0x02,
    // 17 crc = 0xa98f4543
    0xa9, 0x8f, 0x45, 0x43,
    // 21 attributes = 0 (no compression, create time)
    0x00, 0x00,
    // 23 lastOffsetDelta = 1
    0x00, 0x00, 0x00, 0x01,
    // 27 baseTimestamp = 1000 = 0x3e8
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8,
    // 35 maxTimestamp = 1010 = 0x3f2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xf2,
    // 43 producerId = -1
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    // 51 producerEpoch = -1
    0xff, 0xff,
    // 53 baseSequence = -1
    0xff, 0xff, 0xff, 0xff,
    // 57 recordsCount = 2
    0x00, 0x00, 0x00, 0x02,
    // 61 record 0: length 8 (zigzag 16)
    0x10,
    //    attributes 0, timestampDelta 0, offsetDelta 0
    0x00, 0x00, 0x00,
    //    keyLength -1 (zigzag 1): null key
    0x01,
    //    valueLength 2 (zigzag 4), "ab"
    0x04, 0x61, 0x62,
    //    headers count 0
    0x00,
    // 70 record 1: length 12 (zigzag 24)
    0x18,
    //    attributes 0, timestampDelta 10 (zigzag 20), offsetDelta 1 (zigzag 2)
    0x00, 0x14, 0x02,
    //    keyLength 1 (zigzag 2), "k"; valueLength 1, "v"
    0x02, 0x6b, 0x02, 0x76,
    //    headers count 1; header key length 1, "h"; value length 1, "x"
    0x02, 0x02, 0x68, 0x02, 0x78,
];

#[test]
fn crc32c_crate_is_castagnoli() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c::crc32c(&GOLDEN[ATTRIBUTES_OFFSET..]), 0xa98f_4543);
}

#[test]
fn golden_batch_encodes_byte_for_byte() {
    let records = golden_records();
    let plan = plan_batch(&records, Timestamp(0), usize::MAX).unwrap();
    assert_eq!(plan, BatchPlan { count: 2, size: 83 });
    let mut out = [0xeeu8; 100];
    let encoded = encode_batch(&mut out, Offset(5), &records, Timestamp(0)).unwrap();
    assert_eq!(
        encoded,
        EncodedBatch {
            size: 83,
            last_offset_delta: 1,
            max_timestamp: Timestamp(1010)
        }
    );
    let b = &out[..83];
    // Field by field, then the whole.
    assert_eq!(&b[BASE_OFFSET_OFFSET..LENGTH_OFFSET], &5i64.to_be_bytes());
    assert_eq!(
        &b[LENGTH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET],
        &71i32.to_be_bytes()
    );
    assert_eq!(&b[PARTITION_LEADER_EPOCH_OFFSET..MAGIC_OFFSET], &[0; 4]);
    assert_eq!(b[MAGIC_OFFSET], 2);
    assert_eq!(&b[CRC_OFFSET..ATTRIBUTES_OFFSET], &[0xa9, 0x8f, 0x45, 0x43]);
    assert_eq!(&b[ATTRIBUTES_OFFSET..LAST_OFFSET_DELTA_OFFSET], &[0, 0]);
    assert_eq!(
        &b[LAST_OFFSET_DELTA_OFFSET..BASE_TIMESTAMP_OFFSET],
        &1i32.to_be_bytes()
    );
    assert_eq!(
        &b[BASE_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET],
        &1000i64.to_be_bytes()
    );
    assert_eq!(
        &b[MAX_TIMESTAMP_OFFSET..PRODUCER_ID_OFFSET],
        &1010i64.to_be_bytes()
    );
    assert_eq!(&b[PRODUCER_ID_OFFSET..PRODUCER_EPOCH_OFFSET], &[0xff; 8]);
    assert_eq!(&b[PRODUCER_EPOCH_OFFSET..BASE_SEQUENCE_OFFSET], &[0xff; 2]);
    assert_eq!(&b[BASE_SEQUENCE_OFFSET..RECORDS_COUNT_OFFSET], &[0xff; 4]);
    assert_eq!(
        &b[RECORDS_COUNT_OFFSET..RECORDS_OFFSET],
        &2i32.to_be_bytes()
    );
    assert_eq!(
        &b[61..70],
        &[0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x61, 0x62, 0x00]
    );
    assert_eq!(
        &b[70..83],
        &[0x18, 0x00, 0x14, 0x02, 0x02, 0x6b, 0x02, 0x76, 0x02, 0x02, 0x68, 0x02, 0x78]
    );
    assert_eq!(b, &GOLDEN[..]);
    assert!(
        out[83..].iter().all(|&x| x == 0xee),
        "nothing written past the batch"
    );
    assert_eq!(
        encode_batch_to_vec(&records, Timestamp(0), Offset(5)).unwrap(),
        GOLDEN
    );
}

#[test]
fn golden_batch_decodes() {
    let header = validate_batch(&GOLDEN).unwrap();
    assert_eq!(header.total_size(), 83);
    assert_eq!(header.last_offset(), 6);
    assert_eq!(header.compression(), Ok(Compression::None));
    let batch = Batch::parse(Bytes::from_static(&GOLDEN)).unwrap();
    assert_eq!(batch.base_offset(), Offset(5));
    assert_eq!(batch.last_offset(), Offset(6));
    assert_eq!(batch.next_offset(), Offset(7));
    assert_eq!(batch.max_timestamp(), Timestamp(1010));
    assert_eq!(batch.record_count(), 2);
    let records: Vec<_> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        records,
        vec![
            StoredRecord {
                offset: Offset(5),
                timestamp: Timestamp(1000),
                key: None,
                value: Some(Bytes::from_static(b"ab")),
                headers: vec![],
            },
            StoredRecord {
                offset: Offset(6),
                timestamp: Timestamp(1010),
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v")),
                headers: vec![Header::new("h", "x")],
            },
        ]
    );
    // Zero-copy: the value points into the batch's own bytes.
    let value = records[0].value.as_ref().unwrap();
    let range = batch.bytes().as_ptr_range();
    assert!(range.contains(&value.as_ptr()));
}

#[test]
fn parse_keeps_exactly_one_batch() {
    let mut two = GOLDEN.to_vec();
    two.extend_from_slice(&GOLDEN);
    let batch = Batch::parse(Bytes::from(two.clone())).unwrap();
    assert_eq!(batch.bytes().len(), 83);
    assert_eq!(
        Batch::parse(Bytes::copy_from_slice(&GOLDEN[..82])).unwrap_err(),
        FormatError::Truncated {
            needed: 83,
            available: 82
        }
    );
    // validate_batch wants exactly one batch.
    assert!(matches!(
        validate_batch(&two),
        Err(FormatError::BadLength(_))
    ));
    assert!(matches!(
        validate_batch(&GOLDEN[..82]),
        Err(FormatError::Truncated { .. })
    ));
}

#[test]
fn set_base_offset_keeps_crc_valid() {
    let mut b = GOLDEN;
    set_base_offset(&mut b, Offset(1 << 40));
    validate_batch(&b).unwrap();
    let records = read_all(&b).unwrap();
    assert_eq!(records[0].offset, Offset(1 << 40));
    assert_eq!(records[1].offset, Offset((1 << 40) + 1));
}

#[test]
fn crc_mismatch_is_reported_before_records() {
    let mut b = GOLDEN;
    b[66] ^= 0x01; // record 0's value length
    assert_eq!(
        validate_batch(&b),
        Err(FormatError::ChecksumMismatch {
            expected: 0xa98f_4543,
            actual: crc32c::crc32c(&b[ATTRIBUTES_OFFSET..])
        })
    );
    let batch = Batch::parse(Bytes::copy_from_slice(&b)).unwrap();
    assert!(matches!(
        batch.records(),
        Err(FormatError::ChecksumMismatch { .. })
    ));
}

#[test]
fn log_append_time_uses_max_timestamp() {
    let mut b = GOLDEN;
    b[ATTRIBUTES_OFFSET + 1] |= 0x08;
    reseal(&mut b);
    let records = read_all(&b).unwrap();
    assert!(records.iter().all(|r| r.timestamp == Timestamp(1010)));
}

/// Edits `GOLDEN` at `at`, fixes the CRC, and returns what validation and iteration say.
fn edited(
    edit: impl Fn(&mut Vec<u8>),
) -> (
    Result<BatchHeader, FormatError>,
    Vec<Result<StoredRecord, FormatError>>,
) {
    let mut b = GOLDEN.to_vec();
    edit(&mut b);
    let length = (b.len() - LOG_OVERHEAD) as i32;
    b[LENGTH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET].copy_from_slice(&length.to_be_bytes());
    reseal(&mut b);
    let validated = validate_batch(&b);
    let iterated = Batch::parse(Bytes::from(b))
        .unwrap()
        .records()
        .unwrap()
        .collect();
    (validated, iterated)
}

fn assert_malformed(edit: impl Fn(&mut Vec<u8>), expect: impl Fn(&FormatError) -> bool) {
    let (validated, iterated) = edited(edit);
    let err = validated.expect_err("validate_batch accepted a malformed batch");
    assert!(expect(&err), "validate_batch: {err:?}");
    let last = iterated.last().expect("the iterator yields the error");
    let Err(e) = last else {
        panic!("iteration ended without the error: {iterated:?}")
    };
    assert_eq!(e, &err, "validation and iteration agree");
    assert_eq!(iterated.iter().filter(|r| r.is_err()).count(), 1);
}

#[test]
fn malformed_records_are_errors() {
    // Trailing garbage after the declared records.
    assert_malformed(|b| b.push(0), |e| matches!(e, FormatError::Inconsistent(_)));
    // Fewer records than declared.
    assert_malformed(
        |b| b.truncate(70),
        |e| matches!(e, FormatError::Inconsistent(_)),
    );
    // Record count 1 with two records present: trailing bytes.
    assert_malformed(
        |b| b[RECORDS_COUNT_OFFSET + 3] = 1,
        |e| matches!(e, FormatError::Inconsistent(_)),
    );
    // Negative record length (-2, zigzag 3).
    assert_malformed(|b| b[61] = 0x03, |e| matches!(e, FormatError::BadLength(_)));
    // Record length one too long: it then overlaps the next record.
    assert_malformed(|b| b[61] = 0x12, |e| matches!(e, FormatError::BadLength(_)));
    // Record length one too short: the value runs past the record.
    assert_malformed(|b| b[61] = 0x0e, |e| matches!(e, FormatError::BadLength(_)));
    // Key length -2.
    assert_malformed(|b| b[65] = 0x03, |e| matches!(e, FormatError::BadLength(_)));
    // Value length past the record's end.
    assert_malformed(|b| b[66] = 0x08, |e| matches!(e, FormatError::BadLength(_)));
    // Negative header count in record 1.
    assert_malformed(|b| b[78] = 0x01, |e| matches!(e, FormatError::BadLength(_)));
    // Null header key.
    assert_malformed(|b| b[79] = 0x01, |e| matches!(e, FormatError::BadLength(_)));
    // Offset delta not increasing (record 1 claims delta 0).
    assert_malformed(
        |b| b[73] = 0x00,
        |e| matches!(e, FormatError::Inconsistent(_)),
    );
    // Offset delta beyond lastOffsetDelta (record 1 claims 2).
    assert_malformed(
        |b| b[73] = 0x04,
        |e| matches!(e, FormatError::Inconsistent(_)),
    );
    // Overlong varint: record 1's length replaced by six continuation bytes.
    assert_malformed(
        |b| {
            b.truncate(70);
            b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
        },
        |e| *e == FormatError::BadVarint(70),
    );
    // Varint cut off by the end of the batch.
    assert_malformed(
        |b| {
            b.truncate(70);
            b.push(0x80);
        },
        |e| matches!(e, FormatError::Truncated { .. }),
    );
}

#[test]
fn header_errors_surface_everywhere() {
    let mut b = GOLDEN;
    b[MAGIC_OFFSET] = 1;
    assert_eq!(validate_batch(&b), Err(FormatError::BadMagic(1)));
    assert_eq!(BatchHeader::parse(&b), Err(FormatError::BadMagic(1)));
    assert!(Batch::parse(Bytes::copy_from_slice(&b)).is_err());
    // Codec 7 does not exist: refused by validation even without decompressing.
    let mut b = GOLDEN;
    b[ATTRIBUTES_OFFSET + 1] = 0x07;
    reseal(&mut b);
    assert_eq!(
        validate_batch(&b),
        Err(FormatError::UnsupportedCompression(7))
    );
    let batch = Batch::parse(Bytes::copy_from_slice(&b)).unwrap();
    assert_eq!(
        batch.records().unwrap_err(),
        FormatError::UnsupportedCompression(7)
    );
}

#[test]
fn plan_batch_respects_max_bytes() {
    let records: Vec<Record> = (0..10)
        .map(|i| Record::new(vec![i as u8; 100]).with_timestamp(Timestamp(i)))
        .collect();
    let all = plan_batch(&records, Timestamp(0), usize::MAX).unwrap();
    assert_eq!(all.count, 10);
    assert_eq!(
        encode_batch_to_vec(&records, Timestamp(0), Offset(0))
            .unwrap()
            .len(),
        all.size
    );
    let one = plan_batch(&records[..1], Timestamp(0), usize::MAX).unwrap();
    // Exactly the size of the first record's batch: one record.
    assert_eq!(plan_batch(&records, Timestamp(0), one.size), Ok(one));
    // One byte less: the first record alone is too large.
    assert_eq!(
        plan_batch(&records, Timestamp(0), one.size - 1),
        Err(one.size)
    );
    let three = plan_batch(&records[..3], Timestamp(0), usize::MAX).unwrap();
    assert_eq!(
        plan_batch(&records, Timestamp(0), three.size + 5),
        Ok(three)
    );
    assert_eq!(
        plan_batch(&[], Timestamp(0), 0),
        Ok(BatchPlan {
            count: 0,
            size: BATCH_HEADER_BYTES
        })
    );
}

#[test]
fn records_without_timestamp_take_the_default() {
    let records = vec![
        Record::new("a"),
        Record::tombstone("k").with_timestamp(Timestamp(7)),
    ];
    let b = encode_batch_to_vec(&records, Timestamp(100), Offset(0)).unwrap();
    let read = read_all(&b).unwrap();
    assert_eq!(read[0].timestamp, Timestamp(100));
    assert_eq!(read[1].timestamp, Timestamp(7));
    assert_eq!(read[1].value, None);
    let header = validate_batch(&b).unwrap();
    assert_eq!(header.base_timestamp, 100);
    assert_eq!(header.max_timestamp, 100);
}

#[test]
fn compressed_batches_round_trip() {
    let records: Vec<Record> = (0..200)
        .map(|i| {
            Record::new(format!("value {i} ").repeat(10))
                .with_key(format!("key-{}", i % 7))
                .with_header("trace", format!("{i}"))
                .with_timestamp(Timestamp(1_700_000_000_000 + i))
        })
        .collect();
    let plain = encode_batch_to_vec(&records, Timestamp(0), Offset(3)).unwrap();
    let expected = read_all(&plain).unwrap();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = match encode_compressed_batch(&records, Timestamp(0), Offset(3), codec) {
            Ok(b) => b,
            Err(FormatError::UnsupportedCompression(id)) => {
                assert_eq!(id, codec.id());
                continue;
            }
            Err(e) => panic!("{codec:?}: {e}"),
        };
        let header = validate_batch(&b).unwrap();
        assert_eq!(header.compression(), Ok(codec));
        assert_eq!(header.record_count, 200);
        assert_eq!(header.last_offset_delta, 199);
        if codec != Compression::None {
            assert!(b.len() < plain.len() / 2, "{codec:?} compresses");
        }
        assert_eq!(read_all(&b).unwrap(), expected, "{codec:?}");
        // Corrupt compressed bytes (with a valid CRC) are an error, not a panic.
        if codec != Compression::None {
            let mut bad = b.clone();
            for x in &mut bad[RECORDS_OFFSET + 4..RECORDS_OFFSET + 40] {
                *x ^= 0x5a;
            }
            reseal(&mut bad);
            validate_batch(&bad).unwrap();
            let res = read_all(&bad);
            assert!(
                res.is_err() || res.as_ref().unwrap() != &expected,
                "{codec:?}"
            );
        }
    }
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..16),
        1 => vec(any::<u8>(), 0..3000),
    ]
    .prop_map(Bytes::from)
}

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        3 => 1_600_000_000_000i64..1_800_000_000_000,
        1 => any::<i64>(),
    ]
    .prop_map(Timestamp)
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        option::of(arb_bytes()),
        option::of(arb_bytes()),
        option::of(arb_timestamp()),
        vec((arb_bytes(), option::of(arb_bytes())), 0..4),
    )
        .prop_map(|(key, value, timestamp, headers)| Record {
            key,
            value,
            timestamp,
            headers: headers
                .into_iter()
                .map(|(key, value)| Header { key, value })
                .collect(),
        })
}

fn expected(records: &[Record], base: u64, default_ts: Timestamp) -> Vec<StoredRecord> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| StoredRecord {
            offset: Offset(base + i as u64),
            timestamp: r.timestamp.unwrap_or(default_ts),
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        })
        .collect()
}

proptest! {
    #[test]
    fn prop_round_trip(
        records in vec(arb_record(), 1..20),
        base in 0u64..(1 << 62),
        default_ts in arb_timestamp(),
        max_bytes in 61usize..20_000,
    ) {
        let plan = plan_batch(&records, default_ts, usize::MAX).unwrap();
        prop_assert_eq!(plan.count, records.len());
        let mut out = vec![0x55u8; plan.size + 3];
        let encoded = encode_batch(&mut out, Offset(base), &records, default_ts).unwrap();
        prop_assert_eq!(encoded.size, plan.size);
        prop_assert_eq!(encoded.last_offset_delta as usize, records.len() - 1);
        prop_assert_eq!(&out[plan.size..], &[0x55u8; 3][..]);
        out.truncate(encoded.size);
        let header = validate_batch(&out).unwrap();
        prop_assert_eq!(header.max_timestamp, encoded.max_timestamp.0);
        let batch = Batch::parse(Bytes::from(out)).unwrap();
        let read: Vec<_> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read, expected(&records, base, default_ts));

        // A byte limit takes a prefix whose planned size is exact.
        match plan_batch(&records, default_ts, max_bytes) {
            Ok(p) => {
                prop_assert!(p.size <= max_bytes && p.count >= 1);
                let b = encode_batch_to_vec(&records[..p.count], default_ts, Offset(base)).unwrap();
                prop_assert_eq!(b.len(), p.size);
                if p.count < records.len() {
                    let more = plan_batch(&records[..=p.count], default_ts, usize::MAX).unwrap();
                    prop_assert!(more.size > max_bytes);
                }
            }
            Err(size) => {
                prop_assert!(size > max_bytes);
                let first = plan_batch(&records[..1], default_ts, usize::MAX).unwrap();
                prop_assert_eq!(first.size, size);
            }
        }

        // The single-pass encoder takes the same prefix, byte for byte.
        let mut room = vec![0u8; max_bytes];
        match (encode_batch_fitting(&mut room, Offset(base), &records, default_ts),
               plan_batch(&records, default_ts, max_bytes)) {
            (Ok(e), Ok(p)) => {
                prop_assert_eq!(e.last_offset_delta as usize + 1, p.count);
                prop_assert_eq!(e.size, p.size);
                let planned = encode_batch_to_vec(&records[..p.count], default_ts, Offset(base)).unwrap();
                prop_assert_eq!(&room[..e.size], &planned[..]);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (e, p) => prop_assert!(false, "fitting {:?} but plan {:?}", e, p),
        }
    }

    #[test]
    fn prop_mutations_never_panic(
        records in vec(arb_record(), 1..6),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in option::of(any::<prop::sample::Index>()),
        fix_crc in any::<bool>(),
    ) {
        let mut b = encode_batch_to_vec(&records, Timestamp(5), Offset(9)).unwrap();
        for (at, byte) in &edits {
            let i = at.index(b.len());
            b[i] = *byte;
        }
        if let Some(cut) = cut {
            b.truncate(cut.index(b.len() + 1));
        }
        if fix_crc && b.len() > ATTRIBUTES_OFFSET {
            reseal(&mut b);
        }
        let valid = validate_batch(&b).is_ok();
        let exact = BatchHeader::parse(&b).is_ok_and(|h| h.total_size() == b.len());
        if let Ok(batch) = Batch::parse(Bytes::from(b)) {
            if let Ok(iter) = batch.records() {
                let mut errors = 0;
                let mut n = 0;
                for r in iter {
                    n += 1;
                    prop_assert!(n <= records.len() + 1);
                    if r.is_err() {
                        errors += 1;
                    }
                }
                // Validation and iteration accept exactly the same batches.
                if exact && batch.header().compression() == Ok(Compression::None) {
                    prop_assert_eq!(valid, errors == 0);
                }
                prop_assert!(errors <= 1);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn prop_compressed_round_trip(
        records in vec(arb_record(), 1..12),
        codec in prop_oneof![
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
            Just(Compression::Zstd),
        ],
    ) {
        let b = match encode_compressed_batch(&records, Timestamp(1), Offset(77), codec) {
            Ok(b) => b,
            Err(FormatError::UnsupportedCompression(_)) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let header = validate_batch(&b).unwrap();
        prop_assert_eq!(header.compression(), Ok(codec));
        prop_assert_eq!(read_all(&b).unwrap(), expected(&records, 77, Timestamp(1)));
    }

    #[test]
    fn prop_compressed_mutations_never_panic(
        records in vec(arb_record(), 1..6),
        codec in prop_oneof![
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
            Just(Compression::Zstd),
        ],
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let Ok(mut b) = encode_compressed_batch(&records, Timestamp(1), Offset(0), codec) else {
            return Ok(());
        };
        for (at, byte) in &edits {
            let i = RECORDS_OFFSET + at.index(b.len() - RECORDS_OFFSET);
            b[i] = *byte;
        }
        reseal(&mut b);
        if let Ok(iter) = Batch::parse(Bytes::from(b)).unwrap().records() {
            for r in iter.take(records.len() + 2) {
                let _ = r;
            }
        }
    }
}

#[test]
fn encoding_into_too_small_a_buffer_is_an_error_not_a_panic() {
    let records = vec![Record::new(vec![1u8; 100]), Record::new(vec![2u8; 100])];
    let size = plan_batch(&records, Timestamp(0), usize::MAX).unwrap().size;
    for len in [0, 10, 61, size - 1] {
        let mut out = vec![0u8; len];
        assert_eq!(
            encode_batch(&mut out, Offset(0), &records, Timestamp(0)),
            Err(FormatError::Truncated {
                needed: size as u64,
                available: len as u64
            })
        );
    }
    let mut out = vec![0u8; size];
    assert_eq!(
        encode_batch(&mut out, Offset(0), &[], Timestamp(0)).map(|e| e.size),
        Err(FormatError::Truncated {
            needed: 61,
            available: size as u64
        })
    );
    assert!(encode_batch_to_vec(&[], Timestamp(0), Offset(0)).is_err());
}
