//! Reading segment files offline, as Kafka's `kafka-dump-log.sh` does: the
//! batches of a `.log` file with their offsets, timestamps, sizes and CRC
//! validity, and the entries of an `.index` or `.timeindex` file, each
//! walk stopping at the first corruption with its byte position.
//!
//! These walks read files directly, without opening a [`Log`](crate::Log)
//! (so without its directory lock); they never change a file. The `moldau
//! dump` command is built on them.
//!
//! ```
//! use moldau::inspect::LogFileWalk;
//! use moldau::{PartitionConfig, PartitionLog, Record};
//! # let tmp = tempfile::tempdir()?;
//! let log = PartitionLog::open(tmp.path(), PartitionConfig::default())?;
//! log.append(&[Record::new("a"), Record::new("b")])?;
//! log.close()?;
//!
//! let mut walk = LogFileWalk::open(tmp.path().join("00000000000000000000.log"))?;
//! let batch = walk.next().unwrap()?;
//! assert_eq!((batch.header.base_offset, batch.header.record_count), (0, 2));
//! assert!(batch.crc_valid);
//! assert!(walk.next().is_none());
//! assert!(walk.corruption().is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, FormatError, Result};
use crate::record::{validate_batch, Batch, BatchHeader, BATCH_HEADER_BYTES as HEADER_BYTES};
use crate::segment::{parse_base, Entry, OffsetEntry, TimeEntry};
use crate::segment::{OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};
use crate::types::{Offset, Timestamp};

/// One batch of a `.log` file.
#[derive(Debug, Clone)]
pub struct DumpedBatch {
    /// Byte position of the batch in the file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
    /// Whether the stored CRC-32C matches the bytes (and, for uncompressed
    /// batches, the records' structure is sound).
    pub crc_valid: bool,
    /// The whole batch, for decoding its records ([`Batch::records`]).
    pub batch: Batch,
}

/// Where and why a file stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// Byte position in the file where the bad data starts.
    pub position: u64,
    /// What is wrong.
    pub reason: FormatError,
}

impl Corruption {
    /// This corruption as a [`Error::Corrupt`] naming `path`.
    pub fn into_error(self, path: &Path) -> Error {
        Error::corrupt(path, self.position, self.reason)
    }
}

/// Walks the batches of one `.log` file from its start, yielding each
/// [`DumpedBatch`] in file order.
///
/// The walk ends at the end of the file, at a tail of zero bytes (the
/// preallocated space of an active segment, or the zero-filled tail of an
/// unclean stop, which recovery truncates: see
/// [`zero_tail_bytes`](LogFileWalk::zero_tail_bytes)), or at the first batch
/// that cannot be read; then [`corruption`](LogFileWalk::corruption) says
/// where and why. A batch whose CRC does not match is yielded (with
/// `crc_valid` false) and ends the walk, since nothing after it can be
/// trusted. Offsets must increase from batch to batch and stay at or above
/// the base offset in the file's name.
#[derive(Debug)]
pub struct LogFileWalk {
    path: PathBuf,
    file: BufReader<File>,
    len: u64,
    position: u64,
    base: Option<Offset>,
    next_offset: Option<i64>,
    corruption: Option<Corruption>,
    zero_tail: u64,
    done: bool,
}

impl LogFileWalk {
    /// Opens `path` for a walk.
    ///
    /// Errors: [`Error::Io`] if it cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<LogFileWalk> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let base = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(parse_base);
        Ok(LogFileWalk {
            file: BufReader::with_capacity(1 << 16, file),
            path,
            len,
            position: 0,
            base,
            next_offset: None,
            corruption: None,
            zero_tail: 0,
            done: false,
        })
    }

    /// The base offset named by the file (its 20-digit stem), if it has one.
    pub fn base_offset(&self) -> Option<Offset> {
        self.base
    }

    /// The file's size in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.len
    }

    /// Bytes of valid batches walked so far (the position of the next one).
    pub fn valid_bytes(&self) -> u64 {
        self.position
    }

    /// Where the walk found the file invalid, once it has ended there.
    pub fn corruption(&self) -> Option<&Corruption> {
        self.corruption.as_ref()
    }

    /// Bytes of the zero-filled tail the walk ended at (0 if none).
    pub fn zero_tail_bytes(&self) -> u64 {
        self.zero_tail
    }

    fn fail(&mut self, position: u64, reason: FormatError) {
        self.corruption = Some(Corruption { position, reason });
        self.done = true;
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact(buf)
            .map_err(|e| Error::io("read", &self.path, e))
    }

    /// Whether everything from the current position to the end is zero.
    fn rest_is_zero(&mut self) -> Result<bool> {
        self.file
            .seek(SeekFrom::Start(self.position))
            .map_err(|e| Error::io("seek", &self.path, e))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = self
                .file
                .read(&mut buf)
                .map_err(|e| Error::io("read", &self.path, e))?;
            if n == 0 {
                return Ok(true);
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }

    fn next_batch(&mut self) -> Result<Option<DumpedBatch>> {
        let remaining = self.len - self.position;
        if remaining == 0 {
            self.done = true;
            return Ok(None);
        }
        let mut head = [0u8; HEADER_BYTES];
        let n = usize::try_from(remaining).map_or(HEADER_BYTES, |r| r.min(HEADER_BYTES));
        self.read_exact(&mut head[..n])?;
        if head[..n].iter().all(|&b| b == 0) {
            let at = self.position;
            if self.rest_is_zero()? {
                self.zero_tail = remaining;
                self.done = true;
                return Ok(None);
            }
            self.file
                .seek(SeekFrom::Start(at + n as u64))
                .map_err(|e| Error::io("seek", &self.path, e))?;
        }
        let header = match BatchHeader::parse(&head[..n]) {
            Ok(h) => h,
            Err(reason) => {
                self.fail(self.position, reason);
                return Ok(None);
            }
        };
        let size = header.total_size() as u64;
        if size > remaining {
            let reason = FormatError::Truncated {
                needed: size,
                available: remaining,
            };
            self.fail(self.position, reason);
            return Ok(None);
        }
        if let Some(reason) = self.offset_problem(&header) {
            self.fail(self.position, reason);
            return Ok(None);
        }
        // Bounded by the file's length, checked above.
        let mut bytes = vec![0u8; header.total_size()];
        bytes[..HEADER_BYTES].copy_from_slice(&head);
        self.read_exact(&mut bytes[HEADER_BYTES..])?;
        let position = self.position;
        let crc_valid = match validate_batch(&bytes) {
            Ok(_) => true,
            Err(reason) => {
                self.fail(position, reason);
                false
            }
        };
        let batch = Batch::parse(Bytes::from(bytes))
            .map_err(|r| Error::corrupt(&self.path, position, r))?;
        self.position += size;
        self.next_offset = Some(header.last_offset() + 1);
        Ok(Some(DumpedBatch {
            position,
            header,
            crc_valid,
            batch,
        }))
    }

    /// Offsets that go backwards, or below the file's base offset.
    fn offset_problem(&self, h: &BatchHeader) -> Option<FormatError> {
        if let Some(next) = self.next_offset {
            if h.base_offset < next {
                return Some(FormatError::Inconsistent(format!(
                    "base offset {} is below the previous batch's next offset {next}",
                    h.base_offset
                )));
            }
        }
        match self.base {
            Some(base) if h.base_offset < base.0 as i64 => {
                Some(FormatError::Inconsistent(format!(
                    "base offset {} is below the segment's base offset {base}",
                    h.base_offset
                )))
            }
            _ => None,
        }
    }
}

impl Iterator for LogFileWalk {
    type Item = Result<DumpedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// What an index file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// `.index`: relative offset to file position.
    Offset,
    /// `.timeindex`: timestamp to relative offset.
    Time,
}

/// One entry of an index file, with absolute offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexEntry {
    /// An `.index` entry: the batch whose last offset is `offset` starts at
    /// byte `position` of the `.log` file.
    Offset {
        /// Absolute offset (base offset plus the stored relative one).
        offset: Offset,
        /// Byte position in the `.log` file.
        position: u32,
    },
    /// A `.timeindex` entry: the largest timestamp up to and including
    /// `offset`.
    Time {
        /// The timestamp.
        timestamp: Timestamp,
        /// Absolute offset.
        offset: Offset,
    },
}

/// The entries of one index file, and whether they are consistent.
#[derive(Debug, Clone)]
pub struct IndexDump {
    /// Which kind of index.
    pub kind: IndexKind,
    /// The base offset named by the file.
    pub base_offset: Offset,
    /// The entries, in file order, up to the first bad one.
    pub entries: Vec<IndexEntry>,
    /// Bytes of zero entries at the end (preallocated space).
    pub zero_tail_bytes: u64,
    /// The first entry that is out of order, or points somewhere it cannot
    /// (past the end of the `.log` file, or at a position where no batch
    /// ending at its offset starts), with its byte position in the index file.
    pub corruption: Option<Corruption>,
}

/// Reads the `.index` or `.timeindex` file at `path` and checks its entries:
/// strictly increasing offsets (and positions; non-decreasing timestamps),
/// and, for an `.index` beside its `.log`, that each entry names the start of
/// a batch whose last offset is the entry's offset.
///
/// Indexes are derived data (moldau rebuilds them from the log when in
/// doubt), so a bad entry is reported, never repaired here.
///
/// Errors: [`Error::InvalidArgument`] for a file not named
/// `<20-digit base offset>.index` or `.timeindex`; [`Error::Io`].
pub fn dump_index(path: impl AsRef<Path>) -> Result<IndexDump> {
    let path = path.as_ref();
    let name_error = || Error::InvalidArgument {
        what: "path",
        reason: format!(
            "{} is not a segment file (expected <20-digit base offset>.log, .index or .timeindex)",
            path.display()
        ),
    };
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("index") => IndexKind::Offset,
        Some("timeindex") => IndexKind::Time,
        _ => return Err(name_error()),
    };
    let base = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(parse_base)
        .ok_or_else(name_error)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let width = match kind {
        IndexKind::Offset => OFFSET_ENTRY_BYTES,
        IndexKind::Time => TIME_ENTRY_BYTES,
    };
    let log_path = path.with_extension("log");
    let log = match kind {
        IndexKind::Offset => std::fs::read(&log_path).ok(),
        IndexKind::Time => None,
    };
    // Preallocated space: whole zero entries at the end. An all-zero first
    // `.index` entry is a real one (offset base, position 0) only if the
    // log's first batch holds exactly the base offset.
    let zero = |i: usize| bytes[i * width..(i + 1) * width].iter().all(|&b| b == 0);
    let mut used = bytes.len() / width;
    while used > 1 && zero(used - 1) {
        used -= 1;
    }
    if used == 1 && zero(0) {
        let first_is_base = log
            .as_deref()
            .and_then(|l| BatchHeader::parse(l).ok())
            .is_some_and(|h| h.last_offset() == base.0 as i64);
        if kind == IndexKind::Time || !first_is_base {
            used = 0;
        }
    }
    let mut dump = IndexDump {
        kind,
        base_offset: base,
        entries: Vec::with_capacity(used),
        zero_tail_bytes: (bytes.len() - used * width) as u64,
        corruption: None,
    };
    let mut last: Option<IndexEntry> = None;
    for (i, chunk) in bytes.chunks_exact(width).take(used).enumerate() {
        let entry = match kind {
            IndexKind::Offset => {
                let e = <OffsetEntry as Entry>::decode(chunk);
                IndexEntry::Offset {
                    offset: base.plus(u64::from(e.relative_offset)),
                    position: e.position,
                }
            }
            IndexKind::Time => {
                let e = <TimeEntry as Entry>::decode(chunk);
                IndexEntry::Time {
                    timestamp: e.timestamp,
                    offset: base.plus(u64::from(e.relative_offset)),
                }
            }
        };
        if let Some(reason) = entry_problem(last, entry, log.as_deref()) {
            dump.corruption = Some(Corruption {
                position: (i * width) as u64,
                reason,
            });
            break;
        }
        dump.entries.push(entry);
        last = Some(entry);
    }
    Ok(dump)
}

fn entry_problem(
    last: Option<IndexEntry>,
    entry: IndexEntry,
    log: Option<&[u8]>,
) -> Option<FormatError> {
    let bad = |s: String| Some(FormatError::Inconsistent(s));
    match (last, entry) {
        (
            Some(IndexEntry::Offset {
                offset: lo,
                position: lp,
            }),
            IndexEntry::Offset { offset, position },
        ) if offset <= lo || position <= lp => {
            return bad(format!(
                "entry ({offset}, position {position}) does not follow ({lo}, position {lp})"
            ))
        }
        (
            Some(IndexEntry::Time {
                timestamp: lt,
                offset: lo,
            }),
            IndexEntry::Time { timestamp, offset },
        ) if offset <= lo || timestamp < lt => {
            return bad(format!(
                "entry ({}, offset {offset}) does not follow ({}, offset {lo})",
                timestamp.0, lt.0
            ))
        }
        _ => {}
    }
    if let (Some(log), IndexEntry::Offset { offset, position }) = (log, entry) {
        let rest = log.get(position as usize..).unwrap_or_default();
        match BatchHeader::parse(rest) {
            Ok(h) if h.last_offset() == offset.0 as i64 => {}
            Ok(h) => {
                return bad(format!(
                    "entry for offset {offset} points at position {position}, where the batch {}..={} starts",
                    h.base_offset,
                    h.last_offset()
                ))
            }
            Err(e) => {
                return bad(format!(
                    "entry for offset {offset} points at position {position}, where no batch starts ({e})"
                ))
            }
        }
    }
    None
}
