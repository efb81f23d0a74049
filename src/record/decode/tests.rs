//! Property tests of the decoder: validation, owned and borrowed decoding
//! agree on every damaged batch.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::super::header::{compute_crc, CRC_OFFSET};
use super::super::{encode_batch_to_vec, Record};
use super::*;

fn record() -> impl Strategy<Value = Record> {
    let bytes = || vec(any::<u8>(), 0..80).prop_map(Bytes::from);
    (
        option::of(bytes()),
        option::of(bytes()),
        vec((bytes(), option::of(bytes())), 0..3),
    )
        .prop_map(|(key, value, headers)| Record {
            key,
            value,
            timestamp: None,
            headers: headers
                .into_iter()
                .map(|(key, value)| Header { key, value })
                .collect(),
        })
}

/// The owned form of `r`, copied.
fn owned(r: RecordRef<'_>) -> StoredRecord {
    StoredRecord {
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key.map(Bytes::copy_from_slice),
        value: r.value.map(Bytes::copy_from_slice),
        headers: r
            .headers()
            .map(|h| Header {
                key: Bytes::copy_from_slice(h.key),
                value: h.value.map(Bytes::copy_from_slice),
            })
            .collect(),
    }
}

type Decoded = (Vec<StoredRecord>, Option<FormatError>);

fn via_records(batch: &Batch) -> Decoded {
    let mut out = Vec::new();
    let records = match batch.records() {
        Ok(records) => records,
        Err(e) => return (out, Some(e)),
    };
    for r in records {
        match r {
            Ok(r) => out.push(r),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn via_visitor(batch: &Batch) -> Decoded {
    let mut out = Vec::new();
    let result = batch.for_each_record(|r| {
        out.push(owned(r));
        ControlFlow::Continue(())
    });
    (out, result.err())
}

proptest! {
    /// The owned iterator, the borrowing visitor and validation agree on
    /// every batch, including ones with a damaged record behind a valid
    /// CRC.
    #[test]
    fn decoders_agree(
        records in vec(record(), 1..6),
        at in any::<prop::sample::Index>(),
        mask in prop_oneof![Just(0u8), any::<u8>()],
    ) {
        let mut bytes = encode_batch_to_vec(&records, Timestamp(5), Offset(3)).unwrap();
        if mask != 0 {
            let i = RECORDS_OFFSET + at.index(bytes.len() - RECORDS_OFFSET);
            bytes[i] ^= mask;
            let crc = compute_crc(&bytes);
            bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        }
        let batch = Batch::parse(Bytes::from(bytes.clone())).unwrap();
        let (want, want_err) = via_records(&batch);
        let (got, got_err) = via_visitor(&batch);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(&got_err, &want_err);
        prop_assert_eq!(validate_batch(&bytes).err(), got_err);
        if mask == 0 {
            prop_assert_eq!(got.len(), records.len());
        }
    }
}
