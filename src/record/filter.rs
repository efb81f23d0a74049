//! Filtering a batch's records, for compaction: the records kept are copied
//! byte for byte into a batch with the original header fields, so every kept
//! record keeps its offset and timestamp.
//!
//! A record stores its offset and timestamp as deltas from the batch's
//! baseOffset and baseTimestamp. Keeping both (and lastOffsetDelta, as Kafka
//! does, so the batch still ends where it did) means the kept records need
//! no re-encoding; only batchLength, recordsCount and the CRC change, and a
//! compressed batch is compressed again with its own codec.

use super::compression;
use super::decode::{Batch, Walker};
use super::encode::seal;
use super::header::{COMPRESSION_MASK, RECORDS_OFFSET};
use super::{Compression, RecordRef, LOG_OVERHEAD};
use crate::error::FormatError;

/// What filtering did to a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retained {
    /// Every record was kept: the batch can be copied as it is.
    All,
    /// No record was kept: the batch goes.
    Nothing,
    /// Some records were kept, in this new batch.
    Some(Vec<u8>),
}

/// Keeps the records of `batch` for which `keep` returns true. Verifies the
/// CRC and the record structure first (a damaged batch is an error, never
/// silently dropped).
pub(crate) fn retain_records(
    batch: &Batch,
    mut keep: impl FnMut(&RecordRef<'_>) -> bool,
) -> Result<Retained, FormatError> {
    let block = batch.open()?;
    let (buf, start) = match &block {
        None => (&batch.bytes()[..], RECORDS_OFFSET),
        Some(block) => (&block[..], 0),
    };
    let header = *batch.header();
    let mut walker = Walker::new(start, &header);
    // Runs of kept records, as byte ranges of `buf`.
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut count, mut dropped) = (0u32, false);
    loop {
        let at = walker.pos;
        let Some(raw) = walker.next(buf, |_, _| {}) else {
            break;
        };
        let record = walker.record_ref(buf, raw?);
        if keep(&record) {
            count += 1;
            match kept.last_mut() {
                Some(run) if run.end == at => run.end = walker.pos,
                _ => kept.push(at..walker.pos),
            }
        } else {
            dropped = true;
        }
    }
    if !dropped {
        return Ok(Retained::All);
    }
    if count == 0 {
        return Ok(Retained::Nothing);
    }
    let mut records = Vec::with_capacity(kept.iter().map(|r| r.len()).sum());
    for run in kept {
        records.extend_from_slice(&buf[run]);
    }
    let codec = header.compression()?;
    let records = match codec {
        Compression::None => records,
        codec => compression::compress(codec, &records)?,
    };
    let mut out = Vec::with_capacity(RECORDS_OFFSET + records.len());
    out.extend_from_slice(&batch.bytes()[..RECORDS_OFFSET]);
    out.extend_from_slice(&records);
    let mut new_header = header;
    new_header.batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| FormatError::BadLength(format!("filtered batch of {} bytes", out.len())))?;
    // At most the original count, which fit an i32.
    new_header.record_count = count as i32;
    new_header.crc = seal(&mut out, &new_header);
    debug_assert_eq!(
        Batch::parse(out.clone().into()).map(|b| *b.header()),
        Ok(new_header)
    );
    Ok(Retained::Some(out))
}

/// A batch with `batch`'s offsets, timestamps and producer fields but no
/// records (uncompressed: there is nothing to compress). Compaction writes
/// one where it removed every record of a segment's last batch, so the
/// segment still ends at the offset where the next one begins (Kafka keeps
/// such empty batches too, for producer state).
pub(crate) fn empty_batch_like(batch: &Batch) -> Vec<u8> {
    let mut header = *batch.header();
    header.attributes &= !COMPRESSION_MASK;
    header.record_count = 0;
    // The header alone: batchLength counts the bytes after its own field.
    header.batch_length = (RECORDS_OFFSET - LOG_OVERHEAD) as i32;
    let mut out = vec![0u8; RECORDS_OFFSET];
    seal(&mut out, &header);
    debug_assert!(super::validate_batch(&out).is_ok());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode_compressed_batch, Record};
    use crate::types::{Offset, Timestamp};

    fn batch(records: &[Record], codec: Compression) -> Batch {
        let bytes = encode_compressed_batch(records, Timestamp(1_000), Offset(40), codec).unwrap();
        Batch::parse(bytes.into()).unwrap()
    }

    /// Offset, timestamp, key and value of a record.
    type Fields = (u64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

    fn read(b: &Batch) -> Vec<Fields> {
        b.records()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (
                    r.offset.0,
                    r.timestamp.0,
                    r.key.map(|k| k.to_vec()),
                    r.value.map(|v| v.to_vec()),
                )
            })
            .collect()
    }

    fn five() -> Vec<Record> {
        (0..5)
            .map(|i| {
                Record::new(format!("v{i}"))
                    .with_key(format!("k{}", i % 2))
                    .with_timestamp(Timestamp(1_000 + i))
                    .with_header("h", format!("{i}"))
            })
            .collect()
    }

    #[test]
    fn kept_records_keep_offsets_timestamps_and_the_batch_end() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for codec in codecs {
            let Ok(bytes) = encode_compressed_batch(&five(), Timestamp(1_000), Offset(40), codec)
            else {
                continue; // this build lacks the codec
            };
            let original = Batch::parse(bytes.into()).unwrap();
            let Retained::Some(bytes) = retain_records(&original, |r| r.offset.0 % 2 == 1).unwrap()
            else {
                panic!("expected a filtered batch");
            };
            crate::record::validate_batch(&bytes).unwrap();
            let filtered = Batch::parse(bytes.into()).unwrap();
            let want: Vec<_> = read(&original)
                .into_iter()
                .filter(|r| r.0 % 2 == 1)
                .collect();
            assert_eq!(read(&filtered), want, "{codec:?}");
            assert_eq!(filtered.record_count(), 2);
            assert_eq!(filtered.base_offset(), Offset(40));
            assert_eq!(
                filtered.last_offset(),
                Offset(44),
                "the batch still ends where it did"
            );
            assert_eq!(filtered.header().compression().unwrap(), codec);
            assert_eq!(
                filtered.records().unwrap().next().unwrap().unwrap().headers[0]
                    .value
                    .as_deref(),
                Some(&b"1"[..])
            );
        }
    }

    #[test]
    fn all_or_nothing_is_reported_without_a_copy() {
        let b = batch(&five(), Compression::None);
        assert_eq!(retain_records(&b, |_| true).unwrap(), Retained::All);
        assert_eq!(retain_records(&b, |_| false).unwrap(), Retained::Nothing);
    }

    #[test]
    fn an_empty_batch_keeps_the_offsets_and_holds_no_record() {
        let original = batch(&five(), Compression::None);
        let bytes = empty_batch_like(&original);
        crate::record::validate_batch(&bytes).unwrap();
        let empty = Batch::parse(bytes.into()).unwrap();
        assert_eq!(
            (empty.base_offset(), empty.last_offset()),
            (Offset(40), Offset(44))
        );
        assert_eq!(empty.records().unwrap().count(), 0);
    }

    #[test]
    fn a_damaged_batch_is_an_error_not_a_drop() {
        let mut bytes =
            encode_compressed_batch(&five(), Timestamp(0), Offset(0), Compression::None).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let b = Batch::parse(bytes.into()).unwrap();
        assert!(matches!(
            retain_records(&b, |_| true),
            Err(FormatError::ChecksumMismatch { .. })
        ));
    }
}
