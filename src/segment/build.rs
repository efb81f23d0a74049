//! Index rebuilding and checking: the indexes the append path would have
//! written, derived from a log's batch headers, and Kafka's sanity check.

use super::{
    check_in_segment, header_at, IndexCursor, NewEntries, OffsetIndex, TimeEntry, TimeIndex,
};
use super::{OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};
use crate::types::{Offset, Timestamp};

/// Kafka-style sanity check of a segment's indexes against its log, reading
/// only the indexes and the batch header the last offset entry points at.
pub(crate) fn check_indexes(
    base: Offset,
    log: &[u8],
    index: &[u8],
    time: &[u8],
) -> Result<(), String> {
    if !index.len().is_multiple_of(OFFSET_ENTRY_BYTES)
        || !time.len().is_multiple_of(TIME_ENTRY_BYTES)
    {
        return Err("index length is not a whole number of entries".into());
    }
    let oi = OffsetIndex::new(index);
    oi.check(log.len())?;
    if let Some(last) = oi.last() {
        let h = header_at(log, last.position as usize)
            .map_err(|e| e.to_string())?
            .ok_or("last index entry points at the end of the log")?;
        if h.last_offset() != base.0 as i64 + i64::from(last.relative_offset) {
            return Err("last index entry disagrees with the log".into());
        }
    }
    let ti = TimeIndex::new(time);
    ti.check(u32::MAX)?;
    if log.is_empty() {
        return Ok(());
    }
    // The last time entry names the batch that holds the segment's largest
    // timestamp (by its last offset): that batch must agree, and no later
    // batch may be newer (a cut-short time index would hide them). With
    // increasing timestamps the named batch is the last one, so this reads
    // one or two headers.
    let t = ti.last().ok_or("time index is empty but the log is not")?;
    let target = base.0 as i64 + i64::from(t.relative_offset);
    let mut pos = oi
        .floor(t.relative_offset)
        .map_or(0, |e| e.position as usize);
    let mut found = false;
    while let Some(h) = header_at(log, pos).map_err(|e| e.to_string())? {
        if !found && h.last_offset() >= target {
            if h.last_offset() != target || h.max_timestamp != t.timestamp.0 {
                return Err("last time entry disagrees with the log".into());
            }
            found = true;
        } else if found && h.max_timestamp > t.timestamp.0 {
            return Err("a batch after the last time entry is newer".into());
        }
        pos += h.total_size();
    }
    if !found {
        return Err("last time entry names an offset past the log".into());
    }
    Ok(())
}

/// Indexes rebuilt by scanning a log's batch headers.
#[derive(Debug)]
pub(crate) struct BuiltIndexes {
    pub offset_index: Vec<u8>,
    pub time_index: Vec<u8>,
    /// Bytes of the log made of whole, well-formed batch headers (CRC unchecked).
    pub valid_len: usize,
    /// Offset after the last batch, if any batch.
    pub next_offset: Option<Offset>,
    pub cursor: IndexCursor,
}

/// Scans `log` from the start, producing the entries the append path would
/// have written; stops at the first malformed header.
pub(crate) fn build_indexes(base: Offset, log: &[u8], interval: u64) -> BuiltIndexes {
    let mut cursor = IndexCursor::new(base, interval);
    let mut built = BuiltIndexes {
        offset_index: Vec::new(),
        time_index: Vec::new(),
        valid_len: 0,
        next_offset: None,
        cursor: cursor.clone(),
    };
    let mut pos = 0;
    while let Ok(Some(h)) = header_at(log, pos) {
        if check_in_segment(base, &h).is_err()
            || built
                .next_offset
                .is_some_and(|n| (h.base_offset as u64) < n.0)
        {
            break;
        }
        let entries = cursor.observe(
            pos as u32,
            h.total_size() as u64,
            Offset(h.last_offset() as u64),
            Timestamp(h.max_timestamp),
        );
        push_entries(&mut built, entries);
        pos += h.total_size();
        built.next_offset = Some(Offset(h.last_offset() as u64 + 1));
    }
    built.valid_len = pos;
    // A rebuilt segment's time index ends with its max timestamp, as a sealed one does.
    if let Some(t) = cursor.time_entry() {
        built.time_index.extend_from_slice(&t.encode());
    }
    built.cursor = cursor;
    built
}

/// Scans batch headers from `from` (an indexed batch) to the end, restoring
/// the index cursor as the append path left it; writes no entries.
pub(crate) fn resume_scan(
    base: Offset,
    log: &[u8],
    from: usize,
    interval: u64,
    last_time_entry: Option<TimeEntry>,
) -> BuiltIndexes {
    let mut cursor = IndexCursor::new(base, interval);
    cursor.resume(last_time_entry);
    let mut next_offset = None;
    let mut pos = from;
    while let Ok(Some(h)) = header_at(log, pos) {
        if check_in_segment(base, &h).is_err() {
            break;
        }
        // Entries for these batches were written before the shutdown (or were
        // not due); the cursor only needs their sizes and timestamps.
        cursor.observe(
            pos as u32,
            h.total_size() as u64,
            Offset(h.last_offset() as u64),
            Timestamp(h.max_timestamp),
        );
        pos += h.total_size();
        next_offset = Some(Offset(h.last_offset() as u64 + 1));
    }
    BuiltIndexes {
        offset_index: Vec::new(),
        time_index: Vec::new(),
        valid_len: pos,
        next_offset,
        cursor,
    }
}

fn push_entries(built: &mut BuiltIndexes, e: NewEntries) {
    if let Some(o) = e.offset {
        built.offset_index.extend_from_slice(&o.encode());
    }
    if let Some(t) = e.time {
        built.time_index.extend_from_slice(&t.encode());
    }
}
