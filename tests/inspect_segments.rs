//! `moldau::inspect`: walking live and damaged segment files.

use std::path::Path;

use moldau::inspect::{dump_index, IndexEntry, LogFileWalk};
use moldau::record::encode_batch_to_vec;
use moldau::{FormatError, Offset, PartitionConfig, PartitionLog, Record, Timestamp};

fn batch(base: u64, n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n).map(|i| Record::new(format!("r{i}"))).collect();
    encode_batch_to_vec(&records, Timestamp(1_000), Offset(base)).unwrap()
}

fn walk(path: &Path) -> (Vec<(u64, i64)>, LogFileWalk) {
    let mut w = LogFileWalk::open(path).unwrap();
    let batches = w
        .by_ref()
        .map(|b| {
            let b = b.unwrap();
            (b.position, b.header.base_offset)
        })
        .collect();
    (batches, w)
}

#[test]
fn a_live_segment_walks_to_its_preallocated_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        index_interval_bytes: 1,
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(tmp.path(), config).unwrap();
    for _ in 0..3 {
        log.append(&[Record::new("a"), Record::new("b")]).unwrap();
    }
    // Still open: the files are preallocated past the data.
    let path = tmp.path().join("00000000000000000000.log");
    let (batches, w) = walk(&path);
    assert_eq!(batches.iter().map(|b| b.1).collect::<Vec<_>>(), [0, 2, 4]);
    assert!(w.corruption().is_none());
    assert_eq!(w.zero_tail_bytes(), w.file_bytes() - w.valid_bytes());
    assert!(w.zero_tail_bytes() > 0, "an open segment is preallocated");

    let index = dump_index(tmp.path().join("00000000000000000000.index")).unwrap();
    assert!(index.corruption.is_none(), "{:?}", index.corruption);
    assert!(index.zero_tail_bytes > 0);
    let last = index.entries.last().copied();
    assert_eq!(
        last,
        Some(IndexEntry::Offset {
            offset: Offset(5),
            position: batches[2].0 as u32
        })
    );
    log.close().unwrap();
}

#[test]
fn a_live_index_without_entries_is_all_preallocated() {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(tmp.path(), PartitionConfig::default()).unwrap();
    log.append(&[Record::new("a"), Record::new("b")]).unwrap();
    // Below the default index interval: no entry yet, only zeros.
    for ext in ["index", "timeindex"] {
        let path = tmp.path().join(format!("00000000000000000000.{ext}"));
        let dump = dump_index(&path).unwrap();
        assert!(dump.corruption.is_none(), "{ext}: {:?}", dump.corruption);
        assert!(dump.entries.is_empty(), "{ext}: {:?}", dump.entries);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(dump.zero_tail_bytes, len, "{ext}");
    }
    log.close().unwrap();
}

#[test]
fn offsets_that_go_backwards_are_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("00000000000000000000.log");
    let first = batch(5, 2);
    let mut bytes = first.clone();
    bytes.extend(batch(3, 1));
    std::fs::write(&path, &bytes).unwrap();
    let (batches, w) = walk(&path);
    assert_eq!(batches, [(0, 5)]);
    let c = w.corruption().unwrap();
    assert_eq!(c.position, first.len() as u64);
    assert!(matches!(c.reason, FormatError::Inconsistent(_)), "{c:?}");
}

#[test]
fn a_batch_below_the_file_base_offset_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("00000000000000000010.log");
    std::fs::write(&path, batch(0, 1)).unwrap();
    let (batches, w) = walk(&path);
    assert!(batches.is_empty());
    assert_eq!(w.base_offset(), Some(Offset(10)));
    assert_eq!(w.corruption().unwrap().position, 0);
}

#[test]
fn zeros_followed_by_data_are_corruption_not_a_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("00000000000000000000.log");
    let first = batch(0, 1);
    let mut bytes = first.clone();
    bytes.extend([0u8; 100]);
    bytes.extend(batch(1, 1));
    std::fs::write(&path, &bytes).unwrap();
    let (batches, w) = walk(&path);
    assert_eq!(batches.len(), 1);
    assert_eq!(w.zero_tail_bytes(), 0);
    assert_eq!(w.corruption().unwrap().position, first.len() as u64);
}

#[test]
fn index_files_need_segment_names() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("offsets.index");
    std::fs::write(&path, [0u8; 8]).unwrap();
    assert!(matches!(
        dump_index(&path),
        Err(moldau::Error::InvalidArgument { .. })
    ));
}

#[test]
fn a_zero_first_index_entry_is_real_only_for_a_one_offset_first_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("00000000000000000000.log");
    let index = tmp.path().join("00000000000000000000.index");
    std::fs::write(&index, [0u8; 64]).unwrap();

    // First batch holds offsets 0..=1: entry (0, 0) cannot be real.
    std::fs::write(&log, batch(0, 2)).unwrap();
    let dump = dump_index(&index).unwrap();
    assert!(
        dump.entries.is_empty() && dump.corruption.is_none(),
        "{dump:?}"
    );
    assert_eq!(dump.zero_tail_bytes, 64);

    // First batch holds offset 0 alone: it is.
    std::fs::write(&log, batch(0, 1)).unwrap();
    let dump = dump_index(&index).unwrap();
    assert_eq!(
        dump.entries,
        [IndexEntry::Offset {
            offset: Offset(0),
            position: 0
        }]
    );
    assert_eq!(dump.zero_tail_bytes, 56);
}
