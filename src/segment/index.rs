//! Sparse offset and time indexes: entry codecs, lookups, sanity checks, and
//! the rule deciding when a batch gets an entry.
//!
//! Format (both big-endian, as Kafka):
//! - `.index`: 8-byte entries `[u32 offset - base][u32 file position]`,
//!   mapping the *last* offset of a batch to the position where it starts.
//! - `.timeindex`: 12-byte entries `[i64 max timestamp so far][u32 offset - base]`.
//!
//! Entries are strictly increasing in offset and position (time index:
//! non-decreasing timestamp, increasing offset).

use crate::types::{Offset, Timestamp};

/// Bytes per `.index` entry.
pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes per `.timeindex` entry.
pub(crate) const TIME_ENTRY_BYTES: usize = 12;

/// One `.index` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl OffsetEntry {
    pub(crate) fn encode(self) -> [u8; OFFSET_ENTRY_BYTES] {
        let mut b = [0u8; OFFSET_ENTRY_BYTES];
        b[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..].copy_from_slice(&self.position.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> OffsetEntry {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// One `.timeindex` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: Timestamp,
    pub relative_offset: u32,
}

impl TimeEntry {
    pub(crate) fn encode(self) -> [u8; TIME_ENTRY_BYTES] {
        let mut b = [0u8; TIME_ENTRY_BYTES];
        b[..8].copy_from_slice(&self.timestamp.0.to_be_bytes());
        b[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> TimeEntry {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: Timestamp(i64::from_be_bytes(ts)),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// A fixed-size index entry.
pub(crate) trait Entry: Copy {
    /// Encoded size in bytes.
    const BYTES: usize;
    /// Decodes one entry from exactly `BYTES` bytes.
    fn decode(b: &[u8]) -> Self;
}

impl Entry for OffsetEntry {
    const BYTES: usize = OFFSET_ENTRY_BYTES;
    fn decode(b: &[u8]) -> Self {
        OffsetEntry::decode(b)
    }
}

impl Entry for TimeEntry {
    const BYTES: usize = TIME_ENTRY_BYTES;
    fn decode(b: &[u8]) -> Self {
        TimeEntry::decode(b)
    }
}

/// Read-only view of an index file's whole entries (a partial trailing entry
/// is ignored).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entries<'a, E> {
    bytes: &'a [u8],
    _entry: std::marker::PhantomData<E>,
}

/// The `.index` view.
pub(crate) type OffsetIndex<'a> = Entries<'a, OffsetEntry>;
/// The `.timeindex` view.
pub(crate) type TimeIndex<'a> = Entries<'a, TimeEntry>;

impl<'a, E: Entry> Entries<'a, E> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let whole = bytes.len() - bytes.len() % E::BYTES;
        Entries {
            bytes: &bytes[..whole],
            _entry: std::marker::PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / E::BYTES
    }

    pub(crate) fn get(&self, i: usize) -> E {
        E::decode(&self.bytes[i * E::BYTES..(i + 1) * E::BYTES])
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    /// The last entry for which `pred` holds, `pred` being true on a prefix.
    fn last_where(&self, pred: impl Fn(E) -> bool) -> Option<E> {
        let n = partition_point(self.len(), |i| pred(self.get(i)));
        n.checked_sub(1).map(|i| self.get(i))
    }
}

impl OffsetIndex<'_> {
    /// The greatest entry whose offset is at or below `relative_offset`.
    pub(crate) fn floor(&self, relative_offset: u32) -> Option<OffsetEntry> {
        self.last_where(|e| e.relative_offset <= relative_offset)
    }

    /// Checks that entries increase strictly and stay inside a log of `log_len` bytes.
    pub(crate) fn check(&self, log_len: usize) -> Result<(), String> {
        let mut prev: Option<OffsetEntry> = None;
        for i in 0..self.len() {
            let e = self.get(i);
            if e.position as usize >= log_len {
                return Err(format!(
                    "entry {i} points at {} beyond the log ({log_len} bytes)",
                    e.position
                ));
            }
            if let Some(p) = prev {
                if e.relative_offset <= p.relative_offset || e.position <= p.position {
                    return Err(format!("entry {i} does not increase"));
                }
            }
            prev = Some(e);
        }
        Ok(())
    }
}

impl TimeIndex<'_> {
    /// The greatest entry whose timestamp is below `ts`: a batch at or after
    /// its offset may hold the first record at or after `ts`.
    pub(crate) fn below(&self, ts: Timestamp) -> Option<TimeEntry> {
        self.last_where(|e| e.timestamp < ts)
    }

    /// Checks that timestamps never decrease and offsets increase.
    pub(crate) fn check(&self, max_relative_offset: u32) -> Result<(), String> {
        let mut prev: Option<TimeEntry> = None;
        for i in 0..self.len() {
            let e = self.get(i);
            if e.relative_offset > max_relative_offset {
                return Err(format!(
                    "entry {i} names offset {} beyond the segment",
                    e.relative_offset
                ));
            }
            if let Some(p) = prev {
                if e.timestamp < p.timestamp || e.relative_offset < p.relative_offset {
                    return Err(format!("entry {i} goes backwards"));
                }
            }
            prev = Some(e);
        }
        Ok(())
    }
}

/// First `i` in `0..n` for which `pred(i)` is false (`pred` true on a prefix).
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Decides, batch by batch, when the indexes get an entry (Kafka's rule: once
/// more than `index_interval_bytes` of log have passed since the last entry).
/// Shared by the append path and index rebuilding, so both write the same entries.
#[derive(Debug, Clone)]
pub(crate) struct IndexCursor {
    base: Offset,
    interval_bytes: u64,
    bytes_since_entry: u64,
    max_timestamp: Option<Timestamp>,
    offset_of_max_timestamp: u32,
    last_time_entry: Option<Timestamp>,
}

/// Entries to append for one batch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NewEntries {
    pub offset: Option<OffsetEntry>,
    pub time: Option<TimeEntry>,
}

impl IndexCursor {
    /// The largest timestamp observed so far.
    pub(crate) fn max_timestamp(&self) -> Option<Timestamp> {
        self.max_timestamp
    }

    pub(crate) fn new(base: Offset, interval_bytes: u64) -> Self {
        IndexCursor {
            base,
            interval_bytes,
            bytes_since_entry: 0,
            max_timestamp: None,
            offset_of_max_timestamp: 0,
            last_time_entry: None,
        }
    }

    /// Resumes after existing entries (an active segment reopened).
    pub(crate) fn resume(&mut self, last_time_entry: Option<TimeEntry>) {
        if let Some(t) = last_time_entry {
            self.last_time_entry = Some(t.timestamp);
            self.max_timestamp = Some(t.timestamp);
            self.offset_of_max_timestamp = t.relative_offset;
        }
    }

    /// Records a batch at `position` of `size` bytes ending at `last_offset`.
    /// The caller guarantees `last_offset - base` fits in u32 and `position` in u32.
    pub(crate) fn observe(
        &mut self,
        position: u32,
        size: u64,
        last_offset: Offset,
        max_timestamp: Timestamp,
    ) -> NewEntries {
        let rel = (last_offset.0 - self.base.0) as u32;
        if self.max_timestamp.is_none_or(|m| max_timestamp > m) {
            self.max_timestamp = Some(max_timestamp);
            self.offset_of_max_timestamp = rel;
        }
        let mut out = NewEntries::default();
        if self.bytes_since_entry > self.interval_bytes {
            out.offset = Some(OffsetEntry {
                relative_offset: rel,
                position,
            });
            out.time = self.time_entry();
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += size;
        out
    }

    /// The time-index entry that closes a segment (its max timestamp), if new.
    pub(crate) fn time_entry(&mut self) -> Option<TimeEntry> {
        let ts = self.max_timestamp?;
        if self.last_time_entry.is_some_and(|l| ts <= l) {
            return None;
        }
        self.last_time_entry = Some(ts);
        Some(TimeEntry {
            timestamp: ts,
            relative_offset: self.offset_of_max_timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_index(entries: &[(u32, u32)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|&(o, p)| {
                OffsetEntry {
                    relative_offset: o,
                    position: p,
                }
                .encode()
            })
            .collect()
    }

    #[test]
    fn floor_finds_greatest_entry_at_or_below() {
        let bytes = offset_index(&[(10, 100), (20, 200), (30, 300)]);
        let idx = OffsetIndex::new(&bytes);
        assert_eq!(idx.floor(5), None);
        assert_eq!(idx.floor(10).map(|e| e.position), Some(100));
        assert_eq!(idx.floor(29).map(|e| e.position), Some(200));
        assert_eq!(idx.floor(1000).map(|e| e.position), Some(300));
    }

    #[test]
    fn check_rejects_non_increasing_and_out_of_bounds() {
        assert!(OffsetIndex::new(&offset_index(&[(1, 10), (2, 20)]))
            .check(30)
            .is_ok());
        assert!(OffsetIndex::new(&offset_index(&[(2, 10), (2, 20)]))
            .check(30)
            .is_err());
        assert!(OffsetIndex::new(&offset_index(&[(1, 10), (2, 40)]))
            .check(30)
            .is_err());
    }

    #[test]
    fn partial_trailing_entry_is_ignored() {
        let mut bytes = offset_index(&[(1, 10)]);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(OffsetIndex::new(&bytes).len(), 1);
    }

    #[test]
    fn cursor_indexes_after_interval_and_time_index_tracks_max() {
        let mut c = IndexCursor::new(Offset(100), 100);
        let e = c.observe(0, 80, Offset(101), Timestamp(5));
        assert!(e.offset.is_none());
        let e = c.observe(80, 80, Offset(103), Timestamp(3));
        assert!(e.offset.is_none(), "80 bytes is not more than 100");
        let e = c.observe(160, 10, Offset(104), Timestamp(7));
        assert_eq!(
            e.offset,
            Some(OffsetEntry {
                relative_offset: 4,
                position: 160
            })
        );
        assert_eq!(
            e.time,
            Some(TimeEntry {
                timestamp: Timestamp(7),
                relative_offset: 4
            })
        );
        assert_eq!(c.time_entry(), None, "no newer max timestamp");
    }

    #[test]
    fn time_lookup_below() {
        let bytes: Vec<u8> = [(5i64, 1u32), (9, 4)]
            .iter()
            .flat_map(|&(t, o)| {
                TimeEntry {
                    timestamp: Timestamp(t),
                    relative_offset: o,
                }
                .encode()
            })
            .collect();
        let idx = TimeIndex::new(&bytes);
        assert_eq!(idx.below(Timestamp(5)), None);
        assert_eq!(idx.below(Timestamp(6)).map(|e| e.relative_offset), Some(1));
        assert_eq!(
            idx.below(Timestamp(100)).map(|e| e.relative_offset),
            Some(4)
        );
    }
}
