//! Reliability suite 5, the `cargo test` half of fuzzing: property tests that
//! the decoders the fuzz targets (`fuzz/`) drive never panic on arbitrary
//! bytes. Record batches and `__consumer_offsets` records already have such
//! tests beside their codecs (`src/record/tests.rs`,
//! `src/group/offset_codec/tests.rs`); these cover the metadata files and
//! segment recovery over arbitrary file contents.
#![cfg(feature = "fuzzing")]

mod common;

use std::fs;

use common::small_config;
use moldau::record::encode_batch_to_vec;
use moldau::{fuzzing, Error, Offset, PartitionLog, Record, Timestamp};
use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn metadata_decoders_never_panic(bytes in vec(any::<u8>(), 0..200), framed in any::<bool>()) {
        // Arbitrary payloads behind a valid frame reach the payload decoders.
        let _ = fuzzing::partition_checkpoint(&bytes, framed);
        let _ = fuzzing::topic_catalog(&bytes, framed);
    }
}

/// A segment file: valid batches of `sizes` records each, then `edits`
/// (position, byte) and an optional cut.
fn segment(
    sizes: &[usize],
    edits: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    let mut file = Vec::new();
    let mut next = 0u64;
    for &n in sizes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record::new(format!("v{}", next + i as u64)).with_key("k"))
            .collect();
        file.extend(encode_batch_to_vec(&records, Timestamp(1000), Offset(next)).unwrap());
        next += n as u64;
    }
    if !file.is_empty() {
        for (at, byte) in edits {
            let i = at.index(file.len());
            file[i] = *byte;
        }
    }
    if let Some(cut) = cut {
        file.truncate(cut.index(file.len() + 1));
    }
    file
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Recovery (unclean) and the trusting clean path over a damaged segment:
    /// the open fails typed or succeeds; reads serve only records that were
    /// written, at their offsets, or fail typed; an append then survives a
    /// clean close.
    #[test]
    fn opening_a_damaged_segment_never_panics_nor_serves_bad_records(
        sizes in vec(1usize..6, 0..12),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        clean in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p-0");
        if clean {
            PartitionLog::open(&dir, small_config()).unwrap().close().unwrap();
        } else {
            fs::create_dir_all(&dir).unwrap();
        }
        fs::write(dir.join("00000000000000000000.log"), segment(&sizes, &edits, cut)).unwrap();
        let log = match PartitionLog::open(&dir, small_config()) {
            Ok(log) => log,
            Err(Error::Corrupt { path, .. }) => {
                prop_assert!(path.starts_with(&dir));
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("untyped open error {e}"))),
        };
        let written = sizes.iter().sum::<usize>() as u64;
        let mut next = log.start_offset();
        let mut attempts = 0;
        while next < log.end_offset() && attempts < 200 {
            attempts += 1;
            match log.read(next, 1 << 16) {
                Ok(batches) => {
                    for r in batches.records() {
                        match r {
                            Ok(r) => {
                                // A record that was written, at its offset;
                                // only the known baseOffset gap (clean path,
                                // docs/RELIABILITY.md) may move it.
                                let n = r.value.as_deref()
                                    .and_then(|v| std::str::from_utf8(v).ok())
                                    .and_then(|v| v.strip_prefix('v'))
                                    .and_then(|n| n.parse::<u64>().ok());
                                prop_assert!(
                                    n.is_some_and(|n| n < written && (clean || n == r.offset.0)),
                                    "{:?} at {}", r.value, r.offset
                                );
                            }
                            Err(Error::Corrupt { .. }) => break,
                            Err(e) => return Err(TestCaseError::fail(format!("read error {e}"))),
                        }
                    }
                    next = batches.next_offset().filter(|a| *a > next).unwrap_or(next.plus(1));
                }
                Err(Error::Corrupt { .. }) => next = next.plus(1),
                Err(e) => return Err(TestCaseError::fail(format!("read error {e}"))),
            }
        }
        let end = log.end_offset();
        let at = log.append(&[Record::new("appended")]).unwrap();
        prop_assert_eq!(at, end);
        log.close().unwrap();
        let log = PartitionLog::open(&dir, small_config()).unwrap();
        prop_assert_eq!(log.end_offset(), end.plus(1));
        log.close().unwrap();
    }
}
