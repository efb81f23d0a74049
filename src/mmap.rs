//! Memory maps of segment and index files: the only module allowed `unsafe`.
//!
//! A [`SharedMap`] maps a file whose first `published` bytes are immutable: any
//! thread may read them, and hand them out as zero-copy [`Bytes`]. Exactly one
//! [`MapWriter`] per map writes at and beyond `published`, then publishes the
//! new length with a release store. Readers never see a byte that is still
//! being written, and no byte a reader can see is ever written again.
//!
//! The writer fills the bytes past `published` either through the map
//! ([`MapWriter::slice`]) or, for large writes, with positioned writes to the
//! file ([`MapWriter::write_direct`]). A `MAP_SHARED` map and `pwrite` share
//! the page cache, so once the write returns and the new length is published
//! (release), a reader's acquire load and then a read through the map see
//! the bytes. The positioned write skips what a first touch of a fresh page
//! through the map costs: a fault in which the kernel zero-fills the page
//! before the record is copied over it (see BENCHMARKS.md).
//!
//! The file behind a map is never truncated below `published` while the map
//! lives: moldau replaces files (write new, rename) instead of shrinking them in
//! place, and the data directory's lock keeps other moldau processes out.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};

/// Files shorter than this are not pre-faulted.
const PREFAULT_FROM: usize = 4 << 20;
/// Most bytes allocated ahead of the writer for pre-faulting.
const MAX_LOOKAHEAD: usize = 16 << 20;

/// A mapping whose prefix `[0, published)` is immutable and readable.
#[derive(Debug)]
pub(crate) struct SharedMap {
    raw: MmapRaw,
    /// Length of the immutable, readable prefix. Written only by the
    /// [`MapWriter`] (release), read by everyone (acquire).
    published: AtomicUsize,
}

impl SharedMap {
    /// Maps the first `len` bytes of `file` read-only; all of them are published.
    ///
    /// The caller guarantees `len <= file length`.
    pub(crate) fn read_only(file: &File, len: usize) -> io::Result<Arc<SharedMap>> {
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        Ok(Arc::new(SharedMap {
            raw,
            published: AtomicUsize::new(len),
        }))
    }

    /// Maps `capacity` bytes of `file` for appending; the first `published`
    /// bytes (already in the file) are readable at once. The file may be shorter
    /// than `capacity`: the writer extends it before writing.
    pub(crate) fn writable(
        file: File,
        capacity: usize,
        published: usize,
    ) -> io::Result<(Arc<SharedMap>, MapWriter)> {
        let file_len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if published > file_len || published > capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("published length {published} exceeds the file ({file_len}) or map ({capacity})"),
            ));
        }
        let raw = MmapOptions::new().len(capacity).map_raw(&file)?;
        let map = Arc::new(SharedMap {
            raw,
            published: AtomicUsize::new(published),
        });
        let writer = MapWriter {
            map: Arc::clone(&map),
            file: Arc::new(file),
            position: published,
            allocated: file_len,
            prefault: false,
        };
        Ok((map, writer))
    }

    /// Length of the readable prefix.
    pub(crate) fn published(&self) -> usize {
        self.published.load(Ordering::Acquire)
    }

    /// The readable prefix.
    pub(crate) fn readable(&self) -> &[u8] {
        let len = self.published();
        if len == 0 {
            return &[];
        }
        // SAFETY: `[0, len)` lies inside the mapping (published <= capacity, checked
        // when the map was made and by `MapWriter::reserve`), the file is never
        // truncated below `published` while mapped (module invariant), and bytes
        // below `published` are never written again, so a shared slice of them
        // cannot alias a write. The acquire load pairs with the writer's release
        // store, so their contents are visible.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr(), len) }
    }

    /// Asks the kernel to fault in `[start, start + len)` writable without
    /// changing any byte (`MADV_POPULATE_WRITE`).
    pub(crate) fn populate_write(&self, start: usize, len: usize) -> io::Result<()> {
        let page = page_size();
        let aligned = start - start % page;
        let end = start.saturating_add(len).min(self.raw.len());
        if aligned >= end {
            return Ok(());
        }
        self.raw
            .advise_range(memmap2::Advice::PopulateWrite, aligned, end - aligned)
    }

    /// Zero-copy `Bytes` of `[start, end)`, or `None` if that range is not
    /// (yet) published.
    pub(crate) fn bytes(self: &Arc<Self>, start: usize, end: usize) -> Option<Bytes> {
        if start > end || end > self.published() {
            return None;
        }
        Some(Bytes::from_owner(MapSlice {
            map: Arc::clone(self),
            start,
            end,
        }))
    }
}

/// Owner of a published range, keeping the mapping alive for a `Bytes`.
struct MapSlice {
    map: Arc<SharedMap>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        // Checked against `published` when the slice was made; published only grows.
        &self.map.readable()[self.start..self.end]
    }
}

/// The single writer of a [`SharedMap`]. Not `Clone`: uniqueness is what makes
/// writing past `published` sound.
#[derive(Debug)]
pub(crate) struct MapWriter {
    map: Arc<SharedMap>,
    file: Arc<File>,
    /// End of the bytes written so far (published or not).
    position: usize,
    /// Length of the file: bytes below it are backed by allocated blocks.
    allocated: usize,
    /// Pre-fault newly allocated chunks in the background (see `prefault`).
    prefault: bool,
}

impl MapWriter {
    /// Pre-faults each newly allocated chunk in the background.
    pub(crate) fn prefault_growth(&mut self) {
        self.prefault = true;
    }

    /// The file being written, shared so that fsync needs no writer lock.
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Bytes written so far, published or not.
    pub(crate) fn position(&self) -> usize {
        self.position
    }

    /// Length of the file: bytes below it are allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.allocated
    }

    /// Whether `len` bytes past the current position are already backed by
    /// the file, so that [`MapWriter::ensure`] has nothing to grow.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.position
            .checked_add(len)
            .is_some_and(|end| end <= self.allocated)
    }

    /// The map's capacity: no write may end beyond it.
    pub(crate) fn capacity(&self) -> usize {
        self.map.raw.len()
    }

    /// Makes sure `len` bytes past the current position are backed by the
    /// file, growing it with `grow(file, current, needed, exact)` (which must
    /// leave the file at least `needed` long with blocks allocated; `exact`
    /// asks for no more than that).
    pub(crate) fn ensure(
        &mut self,
        len: usize,
        mut grow: impl FnMut(&File, usize, usize, bool) -> io::Result<usize>,
    ) -> io::Result<()> {
        let end = self.end_of(len)?;
        // With pre-faulting, grow a quarter of the allocation ahead of the
        // writer, so the worker faults in the next chunk while this one fills.
        let ahead = match self.prefault {
            true => (self.allocated / 4).min(MAX_LOOKAHEAD),
            false => 0,
        };
        let wanted = end.saturating_add(ahead).min(self.capacity());
        if wanted <= self.allocated {
            return Ok(());
        }
        let before = self.allocated;
        let grown = match grow(&self.file, before, wanted, false) {
            // Only the look-ahead failed (a nearly full disk): the write fits.
            Err(_) if end <= before => before,
            // Retry for exactly this write before reporting a full disk.
            Err(_) => grow(&self.file, before, end, true)?,
            Ok(new_len) => new_len,
        };
        if grown < end {
            return Err(io::Error::other("file growth fell short"));
        }
        self.allocated = grown;
        // A small file is not pre-faulted: faulting writes zeros into the
        // page cache, which writeback then writes to disk, and with many
        // partitions of a few records each that was a megabyte of zeros per
        // partition. Files that reach PREFAULT_FROM are being filled.
        if self.prefault && grown > before && before >= PREFAULT_FROM {
            let from = before.max(end);
            crate::prefault::populate_later(&self.map, from, grown.saturating_sub(from));
        }
        Ok(())
    }

    /// The `len` bytes at the current position, which [`MapWriter::ensure`]
    /// must have made part of the file.
    pub(crate) fn slice(&mut self, len: usize) -> io::Result<&mut [u8]> {
        self.check_allocated(len)?;
        // SAFETY: `[position, position + len)` is inside the mapping and inside
        // the file (`check_allocated` checks both), so touching it cannot
        // fault. It lies at or beyond `published`, which readers never pass, and
        // this writer is unique and borrowed mutably for the slice's lifetime: no
        // other reference aliases it.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(self.map.raw.as_mut_ptr().add(self.position), len)
        })
    }

    /// Whether a write of `len` bytes at the current position fits the map
    /// and the part of the file [`MapWriter::ensure`] allocated.
    fn check_allocated(&self, len: usize) -> io::Result<()> {
        let end = self.end_of(len)?;
        if end > self.allocated {
            return Err(io::Error::other(format!(
                "write of {len} bytes at {} runs past the allocated {} bytes",
                self.position, self.allocated
            )));
        }
        Ok(())
    }

    /// Where a write of `len` bytes at the current position ends, if it fits the map.
    fn end_of(&self, len: usize) -> io::Result<usize> {
        self.position
            .checked_add(len)
            .filter(|&end| end <= self.capacity())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "write of {len} bytes at {} exceeds the map capacity {}",
                        self.position,
                        self.capacity()
                    ),
                )
            })
    }

    /// Writes `parts`, one after another, at the current position with
    /// positioned writes to the file (`pwritev`, retried until complete)
    /// instead of through the map, and does not advance (the caller then
    /// calls [`MapWriter::advance`]). The range must be allocated
    /// ([`MapWriter::ensure`]). From now on, growth of this file is not
    /// pre-faulted: the pages a positioned write fills need no fault, and
    /// populating them ahead would zero-fill them for nothing.
    ///
    /// Sound without `unsafe`: the bytes written lie at or beyond `published`,
    /// which no reader slices, and this writer is unique, so no Rust
    /// reference to them exists while the kernel writes them. A failed or
    /// partial write leaves the position unchanged; the bytes it may have
    /// written are past it, unpublished, and written again by the next write.
    pub(crate) fn write_direct(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.check_allocated(parts.iter().map(|p| p.len()).sum())?;
        self.prefault = false;
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        let mut at = self.position as u64;
        while !rest.is_empty() {
            match rustix::io::pwritev(&*self.file, rest, at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    at += n as u64;
                    io::IoSlice::advance_slices(&mut rest, n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Replaces the file written by [`write_direct`](Self::write_direct)
    /// (tests: a descriptor that fails every write).
    #[cfg(test)]
    pub(crate) fn swap_file(&mut self, file: Arc<File>) -> Arc<File> {
        std::mem::replace(&mut self.file, file)
    }

    /// Forgets unpublished writes past `position` (an append that failed half-way).
    pub(crate) fn rewind(&mut self, position: usize) {
        self.position = position.clamp(self.map.published(), self.position);
    }

    /// Marks `len` bytes (previously reserved and filled) as written.
    pub(crate) fn advance(&mut self, len: usize) {
        debug_assert!(self.position + len <= self.allocated);
        self.position += len;
    }

    /// Makes everything written so far visible to readers.
    pub(crate) fn publish(&self) {
        self.map.published.store(self.position, Ordering::Release);
    }

    /// Publishes, then shrinks the file to the written length (dropping the
    /// preallocated tail). Readers keep the map.
    pub(crate) fn seal(self) -> io::Result<()> {
        self.publish();
        if self.allocated != self.position {
            self.file.set_len(self.position as u64)?;
        }
        Ok(())
    }
}

fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(rustix::param::page_size)
}
