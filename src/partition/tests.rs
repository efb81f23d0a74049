//! In-crate tests of the partition log, including the model test that needs
//! to simulate a crash (dropping the handle without a clean close).

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::config::FlushPolicy;
use crate::record::Record;
use crate::types::Timestamp;

/// Small segments, and room for only two open segments, so that every test
/// here also runs with segments closed and active segments parked and
/// reopened under it.
fn small_config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        max_record_bytes: 2048,
        open_segments: crate::OpenSegments::new(2),
        ..PartitionConfig::default()
    }
}

/// [`small_config`] with room for every segment to stay open, for tests of
/// what is loaded or preallocated.
fn roomy_config() -> PartitionConfig {
    PartitionConfig {
        open_segments: crate::OpenSegments::new(1024),
        ..small_config()
    }
}

fn record(i: u64, len: usize) -> Record {
    let mut value = format!("value-{i}-").into_bytes();
    value.resize(len.max(value.len()), b'x');
    Record::new(value).with_key(format!("key-{i}"))
}

/// Every record's offset and value from `from` on, in order.
pub(super) fn values(log: &PartitionLog, from: Offset) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.end_offset() {
        let batches = log.read(next, 1 << 20).unwrap();
        for r in batches.records() {
            let r = r.unwrap();
            out.push((r.offset.0, r.value.unwrap().to_vec()));
        }
        next = batches.next_offset().unwrap();
    }
    out
}

#[test]
fn crash_keeps_page_cache_data_and_recovers_zero_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let log = PartitionLog::open(&path, small_config()).unwrap();
    for i in 0..100 {
        log.append(&[record(i, 50)]).unwrap();
    }
    log.crash();
    // The active segment was preallocated: its tail is zeros, cut by recovery.
    let log = PartitionLog::open(&path, small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(100));
    assert_eq!(values(&log, Offset(0)).len(), 100);
    log.append(&[record(100, 10)]).unwrap();
    assert_eq!(values(&log, Offset(0)).len(), 101);
}

#[test]
fn clean_reopen_loads_no_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let log = PartitionLog::open(&path, roomy_config()).unwrap();
    for i in 0..200 {
        log.append(&[record(i, 100)]).unwrap();
    }
    let segments = log.stats().segment_count;
    assert!(segments > 3);
    log.close().unwrap();
    let log = PartitionLog::open(&path, roomy_config()).unwrap();
    {
        let list = log.segments.read();
        assert_eq!(list.len(), segments);
        assert!(list[..list.len() - 1].iter().all(|s| !s.is_loaded()));
    }
    assert_eq!(values(&log, Offset(0)).len(), 200);
    assert!(log.segments.read()[0].is_loaded());
}

#[test]
fn unclean_reopen_validates_from_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let log = PartitionLog::open(&path, small_config()).unwrap();
    for i in 0..200 {
        log.append(&[record(i, 100)]).unwrap();
    }
    // Rolls fsync sealed segments (in the background) and move the
    // recovery point along (when the next call takes the reports).
    assert!(log.sealed.wait_idle(Duration::from_secs(30)));
    log.append(&[record(200, 100)]).unwrap();
    let rp = log.checkpoint.lock().recovery_point;
    assert!(rp > 0);
    log.crash();
    // Corrupt a sealed segment below the recovery point: recovery does not read
    // it (lazy, trusted), so it is found only when read.
    let first = path.join(crate::segment::file_name(Offset(0), "log"));
    flip_byte(&first, 100);
    let log = PartitionLog::open(&path, small_config()).unwrap();
    assert_eq!(log.end_offset(), Offset(201));
    let err = log
        .read(Offset(0), 1 << 20)
        .unwrap()
        .records()
        .find_map(|r| r.err());
    assert!(matches!(err, Some(Error::Corrupt { .. })), "{err:?}");
}

fn flip_byte(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0xff;
    f.write_all_at(&b, at).unwrap();
}

#[test]
fn age_roll_uses_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let cfg = PartitionConfig {
        segment_ms: Some(Duration::from_secs(60)),
        clock: clock.clone(),
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(dir.path(), cfg).unwrap();
    log.append(&[record(0, 10)]).unwrap();
    clock.advance_ms(59_999);
    log.append(&[record(1, 10)]).unwrap();
    assert_eq!(log.stats().segment_count, 1);
    clock.advance_ms(1);
    log.append(&[record(2, 10)]).unwrap();
    assert_eq!(log.stats().segment_count, 2);
    assert!(dir.path().join("00000000000000000002.log").exists());
}

#[test]
fn full_index_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PartitionConfig {
        segment_index_bytes: 4096,
        index_interval_bytes: 1,
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(dir.path(), cfg).unwrap();
    for i in 0..1000 {
        log.append(&[record(i, 10)]).unwrap();
    }
    // An entry per batch; 4096 / 8 = 512 offset entries fill the index.
    assert!(log.stats().segment_count >= 2, "{:?}", log.stats());
    assert_eq!(values(&log, Offset(0)).len(), 1000);
}

#[test]
fn failed_append_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&[record(0, 10)]).unwrap();
    let too_big = record(1, 5000);
    let err = log.append(&[record(1, 10), too_big]).unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { max: 2048, .. }),
        "{err}"
    );
    assert_eq!(log.end_offset(), Offset(1));
    assert_eq!(log.append(&[record(1, 10)]).unwrap(), Offset(1));
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<usize>),
    Read(usize, usize),
    Roll,
    Reopen,
    /// Crash, then cut this many bytes off the active segment's logical end.
    CrashCut(usize),
    Truncate(usize),
    DeleteBefore(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Small enough that one append is one batch (the model tracks batch ends).
        6 => proptest::collection::vec(0usize..300, 1..6).prop_map(Op::Append),
        3 => (any::<usize>(), 0usize..3000).prop_map(|(o, m)| Op::Read(o, m)),
        1 => Just(Op::Roll),
        1 => Just(Op::Reopen),
        1 => (0usize..300).prop_map(Op::CrashCut),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => any::<usize>().prop_map(Op::DeleteBefore),
    ]
}

/// The model: every record ever appended and still expected, by offset.
struct Model {
    values: Vec<Option<Vec<u8>>>,
    start: usize,
    /// Offsets at which batches of the active segment end, with byte ends.
    active_batches: Vec<(usize, u64)>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn partition_log_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let mut log = Some(PartitionLog::open(&path, small_config()).unwrap());
        let mut model = Model { values: Vec::new(), start: 0, active_batches: Vec::new() };
        let mut n = 0u64;
        for op in ops {
            let l = log.as_ref().unwrap();
            match op {
                Op::Append(sizes) => {
                    let segs = l.stats().segment_count;
                    let recs: Vec<Record> = sizes.iter().map(|&s| { n += 1; record(n, s) }).collect();
                    let first = l.append(&recs).unwrap();
                    prop_assert_eq!(first.0 as usize, model.values.len());
                    for r in &recs {
                        model.values.push(r.value.as_ref().map(|v| v.to_vec()));
                    }
                    if l.stats().segment_count != segs {
                        model.active_batches.clear();
                    }
                    model.active_batches.push((model.values.len(), l.stats().active_segment_bytes));
                }
                Op::Read(o, max) => {
                    let end = model.values.len();
                    let o = if end + 1 > model.start { model.start + o % (end + 1 - model.start) } else { end };
                    let batches = l.read(Offset(o as u64), max).unwrap();
                    let got: Vec<_> = batches.records().map(|r| r.unwrap()).collect();
                    if o < end {
                        prop_assert!(!got.is_empty());
                    }
                    for r in got {
                        prop_assert_eq!(r.value.map(|v| v.to_vec()), model.values[r.offset.0 as usize].clone());
                        prop_assert!(r.offset.0 as usize >= o);
                    }
                    let past_end = l.read(Offset(end as u64 + 1), 10);
                    prop_assert!(matches!(past_end, Err(Error::OffsetOutOfRange { .. })), "{:?}", past_end);
                }
                Op::Roll => {
                    l.roll_segment().unwrap();
                    model.active_batches.clear();
                }
                Op::Reopen => {
                    log.take().unwrap().close().unwrap();
                    log = Some(PartitionLog::open(&path, small_config()).unwrap());
                }
                Op::CrashCut(cut) => {
                    let logical = l.stats().active_segment_bytes;
                    let base = l.active_file.lock().0.base;
                    log.take().unwrap().crash();
                    let file = path.join(crate::segment::file_name(base, "log"));
                    let keep = logical.saturating_sub(cut as u64);
                    OpenOptions::new().write(true).open(&file).unwrap().set_len(keep).unwrap();
                    let survivors = model.active_batches.iter().rev()
                        .find(|(_, end)| *end <= keep).map(|(off, _)| *off)
                        .unwrap_or(base.0 as usize);
                    model.values.truncate(survivors.max(base.0 as usize));
                    model.start = model.start.min(model.values.len());
                    model.active_batches.retain(|(off, _)| *off <= model.values.len());
                    log = Some(PartitionLog::open(&path, small_config()).unwrap());
                }
                Op::Truncate(o) => {
                    let end = model.values.len();
                    if end > model.start {
                        let o = model.start + o % (end - model.start);
                        let new_end = l.truncate_to(Offset(o as u64)).unwrap();
                        prop_assert!(new_end.0 as usize <= o);
                        model.values.truncate(new_end.0 as usize);
                        model.start = model.start.min(new_end.0 as usize);
                        // Batch ends in the rewritten segment are not tracked: start a fresh one.
                        l.roll_segment().unwrap();
                        model.active_batches.clear();
                    }
                }
                Op::DeleteBefore(o) => {
                    let end = model.values.len();
                    let o = model.start + o % (end + 1 - model.start);
                    l.delete_records_before(Offset(o as u64)).unwrap();
                    model.start = model.start.max(o);
                }
            }
            let l = log.as_ref().unwrap();
            prop_assert_eq!(l.end_offset().0 as usize, model.values.len());
            prop_assert_eq!(l.start_offset().0 as usize, model.start);
            let all = values(l, Offset(model.start as u64));
            prop_assert_eq!(all.len(), model.values.len() - model.start);
            for (off, v) in all {
                prop_assert_eq!(Some(v), model.values[off as usize].clone());
            }
        }
    }
}

#[test]
fn failed_fsync_poisons_the_partition() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = PartitionConfig {
        flush: FlushPolicy::Always,
        ..small_config()
    };
    let log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
    log.append(&[record(0, 10)]).unwrap();
    // An O_PATH descriptor makes the next fsync fail for real (EBADF).
    let (segment, _) = log.active_file.lock().clone();
    let bad = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::PATH.bits() as i32)
        .open(&segment.paths.log)
        .unwrap();
    let bad = Arc::new(bad);
    log.active_file.lock().1 = Arc::downgrade(&bad);
    let err = log.append(&[record(1, 10)]).unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("fsync"), "{err}");
    let again = log.append(&[record(2, 10)]).unwrap_err();
    assert!(
        matches!(again, Error::Poisoned { ref cause, .. } if matches!(**cause, Error::Io { op: "fsync", .. })),
        "{again}"
    );
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    // Reads still work; close refuses to mark the log clean.
    assert_eq!(values(&log, Offset(0)).len(), 2);
    assert!(matches!(log.close(), Err(Error::Poisoned { .. })));
    drop(log);
    let log = PartitionLog::open(dir.path(), cfg).unwrap();
    assert!(
        log.end_offset() >= Offset(1),
        "the acknowledged record is gone"
    );
}

#[test]
fn sealed_segments_are_trimmed_and_active_one_preallocated() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), roomy_config()).unwrap();
    for i in 0..100 {
        log.append(&[record(i, 100)]).unwrap();
    }
    let segments = log.segments.read().clone();
    assert!(segments.len() > 2);
    for seg in &segments[..segments.len() - 1] {
        let data = seg.load(&log.cfg()).unwrap().unwrap();
        let len = std::fs::metadata(&seg.paths.log).unwrap().len();
        assert_eq!(len as usize, data.log.published(), "sealed log not trimmed");
        let index_len = std::fs::metadata(&seg.paths.index).unwrap().len();
        assert_eq!(
            index_len as usize,
            data.index.published(),
            "sealed index not trimmed"
        );
        assert_eq!(index_len % 8, 0);
    }
    let active = segments.last().unwrap();
    let len = std::fs::metadata(&active.paths.log).unwrap().len();
    let written = log.stats().active_segment_bytes;
    assert!(len > written, "active log not preallocated");
    log.close().unwrap();
    let len = std::fs::metadata(&active.paths.log).unwrap().len();
    assert_eq!(len, written, "close did not trim the active segment");
}

#[test]
fn offsets_that_would_overflow_the_relative_index_roll() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let cell = std::sync::Weak::new();
    let segment =
        crate::segment::ActiveSegment::create(dir.path(), Offset(1000), &cfg, &cell).unwrap();
    // Index entries hold offsets as u32 relative to the segment's base.
    assert!(!segment.is_full_for(100, Offset(1000 + u64::from(u32::MAX))));
    assert!(segment.is_full_for(100, Offset(1000 + u64::from(u32::MAX) + 1)));
}

#[test]
fn open_finishes_a_deletion_a_crash_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..200 {
        log.append(&[record(i, 100)]).unwrap();
    }
    let bases: Vec<Offset> = log.segments.read().iter().map(|s| s.base).collect();
    assert!(bases.len() > 3);
    // The start offset is checkpointed, then the crash comes before any file goes.
    let start = bases[2].plus(1);
    log.write_checkpoint(|c| c.log_start = start.0).unwrap();
    log.crash();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.start_offset(), start);
    let remaining: Vec<Offset> = log.segments.read().iter().map(|s| s.base).collect();
    assert_eq!(remaining, bases[2..]);
    for base in &bases[..2] {
        assert!(!dir
            .path()
            .join(crate::segment::file_name(*base, "log"))
            .exists());
    }
    assert_eq!(values(&log, start).len() as u64, 200 - start.0);
}

#[test]
fn an_append_whose_end_another_sync_already_covered_does_not_overflow() {
    // Regression: under EveryRecords the flush check computed `end - flushed`
    // after the writer lock was released; when another appender's sync had
    // already covered past `end`, the subtraction overflowed and the
    // appender panicked (leaving a producer's combiner busy for good).
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        flush: FlushPolicy::EveryRecords(3),
        ..PartitionConfig::default()
    };
    let log = PartitionLog::open(dir.path().join("p"), config).unwrap();
    log.append(&[Record::new("a"), Record::new("b"), Record::new("c")])
        .unwrap();
    log.flush().unwrap();
    assert_eq!(log.flushed_offset(), Offset(3));
    // What a slow appender sees: its own end (1) below the flushed offset.
    log.apply_flush_policy(Offset(1), false).unwrap();
}

#[test]
fn partitions_sharing_a_small_open_segment_bound_stay_correct_under_concurrency() {
    // Eight partitions, four threads appending and reading across all of
    // them, room for three open segments: active segments are parked and
    // reopened, sealed ones closed, all the time, while others use them.
    let dir = tempfile::tempdir().unwrap();
    let bound = crate::OpenSegments::new(3);
    let cfg = PartitionConfig {
        open_segments: bound.clone(),
        flush: FlushPolicy::EveryRecords(7),
        ..small_config()
    };
    let logs: Vec<Arc<PartitionLog>> = (0..8)
        .map(|p| {
            Arc::new(PartitionLog::open(dir.path().join(format!("p{p}")), cfg.clone()).unwrap())
        })
        .collect();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let logs = logs.clone();
            let bound = bound.clone();
            std::thread::spawn(move || {
                for i in 0..150u64 {
                    let log = &logs[((i * 3 + t) % 8) as usize];
                    log.append(&[record(t * 1000 + i, 60)]).unwrap();
                    let reader = &logs[((i * 5 + t + 1) % 8) as usize];
                    let from = Offset(i % reader.end_offset().0.max(1));
                    let batches = reader.read(from, 512).unwrap();
                    for r in batches.records() {
                        let r = r.unwrap();
                        assert!(r.value.unwrap().starts_with(b"value-"));
                    }
                    assert!(bound.open() <= bound.max());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(bound.evictions() > 0);
    // Every record is there, in each partition's order of appends.
    let mut total = 0;
    for log in &logs {
        let got = values(log, Offset(0));
        assert_eq!(got.len() as u64, log.end_offset().0);
        total += got.len();
    }
    assert_eq!(total, 4 * 150);
    for log in logs {
        log.close().unwrap();
        // Reopened cleanly: each still holds what was appended.
        let reopened = PartitionLog::open(log.dir(), cfg.clone()).unwrap();
        assert_eq!(reopened.end_offset(), log.end_offset());
    }
}

#[test]
fn recovery_reads_from_the_index_entry_below_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let cfg = PartitionConfig {
        segment_bytes: 1 << 20,
        ..roomy_config()
    };
    let log = PartitionLog::open(&path, cfg.clone()).unwrap();
    for i in 0..200 {
        log.append(&[record(i, 100)]).unwrap();
    }
    log.close().unwrap();
    // Opened cleanly: the recovery point is the end (200), inside the only
    // segment. 50 more records are not flushed when the process dies.
    let log = PartitionLog::open(&path, cfg.clone()).unwrap();
    for i in 200..250 {
        log.append(&[record(i, 100)]).unwrap();
    }
    log.crash();
    // Damage the first batch, far below the recovery point: recovery starts
    // at the index entry below the recovery point, so it neither reads nor
    // cuts it (reads find it, by its CRC).
    let segment_log = path.join(crate::segment::file_name(Offset(0), "log"));
    flip_byte(&segment_log, 100);
    let log = PartitionLog::open(&path, cfg.clone()).unwrap();
    assert_eq!(log.end_offset(), Offset(250));
    assert_eq!(values(&log, Offset(150)).len(), 100);
    let err = log
        .read(Offset(0), 100)
        .unwrap()
        .records()
        .find_map(|r| r.err());
    assert!(matches!(err, Some(Error::Corrupt { .. })), "{err:?}");
    log.crash();
    // Without an index to start from, recovery validates the whole segment
    // and cuts at the damage.
    std::fs::remove_file(path.join(crate::segment::file_name(Offset(0), "index"))).unwrap();
    let log = PartitionLog::open(&path, cfg).unwrap();
    assert_eq!(log.end_offset(), Offset(0));
}

/// Rolls under `FlushPolicy::Never` leave their fsync to the background
/// worker; the recovery point moves only once a job's report is taken.
#[test]
fn rolled_segments_are_synced_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), roomy_config()).unwrap();
    assert_eq!(log.cfg().flush, FlushPolicy::Never);
    for i in 0..200 {
        log.append(&[record(i, 100)]).unwrap();
    }
    let active_base = log.segments.read().last().unwrap().base;
    assert!(active_base > Offset(0));
    assert!(log.sealed.wait_idle(Duration::from_secs(30)));
    // The next append takes the reports before it writes.
    log.append(&[record(200, 100)]).unwrap();
    assert_eq!(
        Offset(log.checkpoint.lock().recovery_point),
        active_base,
        "the recovery point is the end of the last sealed segment"
    );
    assert_eq!(log.flushed_offset(), active_base);
    log.close().unwrap();
}

/// A crash with several rolled segments not yet known durable (one append
/// rolls many times; its start took the last reports): recovery validates
/// every segment past the recovery point, cuts at damage in a later one, and
/// keeps every record before it.
#[test]
fn crash_with_many_unsynced_rolls_recovers_a_gap_free_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let log = PartitionLog::open(&path, small_config()).unwrap();
    let records: Vec<Record> = (0..300).map(|i| record(i, 100)).collect();
    log.append(&records).unwrap();
    let bases: Vec<Offset> = log.segments.read().iter().map(|s| s.base).collect();
    assert!(bases.len() >= 6, "{bases:?}");
    assert_eq!(log.checkpoint.lock().recovery_point, 0);
    log.crash();
    // Damage the fourth segment's second batch: flip a byte of its CRC'd body.
    let damaged = bases[3];
    let seg = path.join(crate::segment::file_name(damaged, "log"));
    let first_batch_len = {
        let bytes = std::fs::read(&seg).unwrap();
        u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as u64 + 12
    };
    flip_byte(&seg, first_batch_len + 70);
    let log = PartitionLog::open(&path, small_config()).unwrap();
    let end = log.end_offset();
    assert!(
        end > damaged && end < bases[4],
        "end {end:?}, bases {bases:?}"
    );
    let read = values(&log, Offset(0));
    assert_eq!(read.len() as u64, end.0, "a gap-free prefix");
    for (i, (offset, value)) in read.iter().enumerate() {
        assert_eq!(*offset, i as u64);
        assert_eq!(*value, records[i].value.clone().unwrap().to_vec());
    }
    assert_eq!(log.segments.read().len(), 4, "later segments removed");
    assert_eq!(log.append(&[record(999, 10)]).unwrap(), end);
    log.close().unwrap();
}

/// A positioned write (a batch of `DIRECT_WRITE_BYTES` or more) that fails
/// poisons the partition, as a failed fsync does: the bytes past the end
/// are in an unknown state.
#[test]
fn failed_large_write_poisons_the_partition() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = PartitionConfig {
        segment_bytes: 4 << 20,
        max_record_bytes: 1 << 20,
        ..roomy_config()
    };
    let log = PartitionLog::open(dir.path(), cfg).unwrap();
    let large: Vec<Record> = (0..200).map(|i| record(i, 1024)).collect();
    log.append(&large).unwrap();
    // An O_PATH descriptor makes the next pwritev fail for real (EBADF).
    let good = {
        let mut writer = log.writer.lock();
        let active = writer.as_mut().unwrap();
        // Allocated now, so the append's growth check has nothing to do.
        active.ensure(1 << 20).unwrap();
        let bad = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::PATH.bits() as i32)
            .open(&*active.segment.paths.log)
            .unwrap();
        active.swap_log_file(Arc::new(bad)).unwrap()
    };
    let err = log.append(&large).unwrap_err();
    assert!(
        matches!(err, Error::Poisoned { ref cause, .. } if matches!(**cause, Error::Io { op: "write", .. })),
        "{err}"
    );
    // Small appends (through the map) are refused too, and nothing of the
    // failed batch is readable.
    assert!(matches!(
        log.append(&[record(0, 10)]),
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(values(&log, Offset(0)).len(), 200);
    log.writer
        .lock()
        .as_mut()
        .unwrap()
        .swap_log_file(good)
        .unwrap();
    assert!(matches!(log.close(), Err(Error::Poisoned { .. })));
}

/// A background fsync that fails poisons the partition: the next append
/// reports it, naming the file.
#[test]
fn failed_background_fsync_poisons_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let cfg = roomy_config();
    let log = PartitionLog::open(&path, cfg.clone()).unwrap();
    log.append(&[record(0, 100)]).unwrap();
    // A job for a segment whose log file is a symlink loop: opening it for
    // the fsync fails (ELOOP), as the worker would find a failing file.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let bad = crate::segment::Segment::unloaded(&elsewhere, Offset(0), &cfg.open_segments);
    std::os::unix::fs::symlink(&*bad.paths.log, &*bad.paths.log).unwrap();
    log.sealed.queue(vec![bad], Offset(1));
    assert!(log.sealed.wait_idle(Duration::from_secs(30)));
    let err = log.append(&[record(1, 100)]).unwrap_err();
    assert!(
        matches!(err, Error::Poisoned { ref cause, .. }
            if matches!(**cause, Error::Io { op: "open", .. }) && cause.to_string().contains(".log")),
        "{err}"
    );
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    assert_eq!(
        values(&log, Offset(0)).len(),
        1,
        "nothing appended after the failure"
    );
    assert!(matches!(log.close(), Err(Error::Poisoned { .. })));
}
