//! An offset index damaged into other plausible entries is derived data:
//! reads should rebuild it rather than fail.

mod common;

use common::*;
use moldau::{Offset, PartitionLog};

// Known gap (docs/RELIABILITY.md, suite 4): an entry whose relative offset
// is one too high still passes the sanity check (increasing, in range, the
// last entry intact), and a read it misleads fails with `Error::Corrupt`
// ("disagrees with the offset index") although the log is intact.
#[test]
#[ignore = "known gap: reads misled by a plausible index entry fail instead of rebuilding"]
fn a_plausible_but_wrong_index_entry_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    closed_partition(dir.path(), 300);
    let index = files_with_ext(dir.path(), "index").remove(0);
    let bytes = std::fs::read(&index).unwrap();
    assert!(
        bytes.len() >= 24,
        "the first segment has several index entries"
    );
    // The first entry's relative offset (u32 big-endian at 0), one more:
    // still below the next entry's, so the index still looks sane.
    let rel = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    let next_rel = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
    assert!(rel + 1 < next_rel);
    let mut damaged = bytes.clone();
    damaged[0..4].copy_from_slice(&(rel + 1).to_be_bytes());
    std::fs::write(&index, damaged).unwrap();

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(300));
    // Look every offset up on its own, so the damaged entry is consulted.
    for i in 0..300 {
        let batches = log.read(Offset(i), 1).unwrap();
        let r = batches
            .records()
            .map(|r| r.unwrap())
            .find(|r| r.offset == Offset(i))
            .unwrap();
        assert_record(&r, i);
    }
    log.close().unwrap();
}
