//! [`Batches`]: whole record batches read from a partition, zero-copy.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::record::{Batch, Records, StoredRecord};
use crate::types::Offset;

/// Whole record batches read from one segment, as one [`Bytes`] that shares
/// the segment's memory map (no copy).
///
/// The bytes are exactly what the log stores (Kafka RecordBatch v2), so the
/// broker can send them as they are. The first batch is the one holding the
/// offset asked for, so it may hold earlier records; [`Batches::records`]
/// skips them. Records are decoded lazily, and every batch's CRC is checked
/// before any of its records is handed out.
#[derive(Debug, Clone)]
pub struct Batches {
    bytes: Bytes,
    path: Arc<Path>,
    file_position: u64,
    from: Offset,
}

impl Batches {
    pub(crate) fn new(bytes: Bytes, path: Arc<Path>, file_position: u64, from: Offset) -> Self {
        Batches {
            bytes,
            path,
            file_position,
            from,
        }
    }

    pub(crate) fn empty(path: Arc<Path>, from: Offset) -> Self {
        Batches::new(Bytes::new(), path, 0, from)
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether nothing was read (the offset asked for is the log end).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The offset that was asked for.
    pub fn from_offset(&self) -> Offset {
        self.from
    }

    /// The batches, in order. Yields an error (and then stops) at the first
    /// malformed batch header.
    pub fn iter(&self) -> BatchIter {
        BatchIter {
            rest: self.bytes.clone(),
            path: Arc::clone(&self.path),
            position: self.file_position,
            failed: false,
        }
    }

    /// The records at or after the offset asked for, decoded lazily. Yields
    /// [`Error::Corrupt`] (and then stops) at the first batch that fails
    /// validation or its CRC.
    pub fn records(&self) -> RecordIter {
        RecordIter {
            batches: self.iter(),
            current: None,
            from: self.from,
        }
    }

    /// The offset after the last batch read: where the next read continues.
    /// `None` if empty. Reads only batch headers.
    pub fn next_offset(&self) -> Option<Offset> {
        self.iter()
            .filter_map(|b| b.ok())
            .last()
            .map(|b| Offset(b.header().last_offset() as u64 + 1))
    }
}

/// Iterator over the batches of a [`Batches`].
#[derive(Debug)]
pub struct BatchIter {
    rest: Bytes,
    path: Arc<Path>,
    position: u64,
    failed: bool,
}

impl Iterator for BatchIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match Batch::parse(self.rest.clone()) {
            Ok(batch) => {
                let size = batch.bytes().len();
                self.rest = self.rest.slice(size..);
                self.position += size as u64;
                Some(Ok(batch))
            }
            Err(reason) => {
                self.failed = true;
                Some(Err(Error::corrupt(&self.path, self.position, reason)))
            }
        }
    }
}

/// Iterator over the records of a [`Batches`].
#[derive(Debug)]
pub struct RecordIter {
    batches: BatchIter,
    /// Records of the current batch, and the file position of that batch.
    current: Option<(Records, u64)>,
    from: Offset,
}

impl Iterator for RecordIter {
    type Item = Result<StoredRecord>;

    fn next(&mut self) -> Option<Result<StoredRecord>> {
        loop {
            if let Some((records, position)) = &mut self.current {
                match records.next() {
                    Some(Ok(r)) if r.offset < self.from => continue,
                    Some(Ok(r)) => return Some(Ok(r)),
                    Some(Err(reason)) => {
                        let err = Error::corrupt(&self.batches.path, *position, reason);
                        self.batches.failed = true;
                        self.current = None;
                        return Some(Err(err));
                    }
                    None => self.current = None,
                }
            }
            let position = self.batches.position;
            let batch = match self.batches.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            if batch.header().last_offset() < self.from.0 as i64 {
                continue;
            }
            match batch.records() {
                Ok(records) => self.current = Some((records, position)),
                Err(reason) => {
                    self.batches.failed = true;
                    return Some(Err(Error::corrupt(&self.batches.path, position, reason)));
                }
            }
        }
    }
}
