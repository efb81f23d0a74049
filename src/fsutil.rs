//! File-system helpers: preallocation, directory fsync, atomic small-file replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Grows `file` from `current` bytes to at least `needed`, allocating real
/// blocks (so that a later write through a memory map cannot fail with
/// SIGBUS on a full disk: the disk-full error surfaces here, as `ENOSPC`).
///
/// Grows geometrically (by the current size, clamped to `steps`, never past
/// `max_len`) so that appends pay for a system call only once per chunk;
/// with `exact`, to `needed` and no further (a nearly full disk). Returns the
/// new length.
pub(crate) fn grow_file(
    file: &File,
    current: usize,
    needed: usize,
    exact: bool,
    steps: (usize, usize),
    max_len: usize,
) -> io::Result<usize> {
    let step = current.clamp(steps.0, steps.1);
    let target = match exact {
        true => needed,
        false => current.saturating_add(step).min(max_len).max(needed),
    };
    let len = (target - current) as u64;
    keep_reserve(file, len)?;
    match rustix::fs::fallocate(
        file,
        rustix::fs::FallocateFlags::empty(),
        current as u64,
        len,
    ) {
        Ok(()) => Ok(target),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            // No fallocate on this file system: write zeros, which allocates too.
            write_zeros(file, current as u64, len)?;
            Ok(target)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Space left free on the file system for the small files that freeing
/// space needs written first: the topic catalog (deleting a topic) and the
/// partition checkpoint (retention). Growing data files stops short of it.
pub(crate) const RESERVE_BYTES: u64 = 64 * 1024;

/// Fails with `ENOSPC` if allocating `len` more bytes would leave less than
/// [`RESERVE_BYTES`] free (one `fstatvfs` per growth step, not per append).
fn keep_reserve(file: &File, len: u64) -> io::Result<()> {
    let vfs = rustix::fs::fstatvfs(file)?;
    let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
    match free < len.saturating_add(RESERVE_BYTES) {
        true => Err(io::Error::from(rustix::io::Errno::NOSPC)),
        false => Ok(()),
    }
}

fn write_zeros(file: &File, mut at: u64, mut len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = [0u8; 64 * 1024];
    while len > 0 {
        let n = len.min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        len -= n as u64;
    }
    Ok(())
}

/// fsyncs a directory, making the creation, removal or renaming of its entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(feature = "fault-injection")]
    crate::fault_injection::emit(crate::fault_injection::SyncEvent::DirStarted { path: dir });
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    #[cfg(feature = "fault-injection")]
    crate::fault_injection::emit(crate::fault_injection::SyncEvent::DirSynced { path: dir });
    Ok(())
}

/// What an fsync of one file is about to make durable, for the
/// fault-injection observer (feature `fault-injection`); without the feature
/// it is empty and `len` is never called.
pub(crate) struct FileSyncNote {
    #[cfg(feature = "fault-injection")]
    len: u64,
}

impl FileSyncNote {
    /// Taken just before the fsync: its first `len()` bytes are what it covers.
    #[inline]
    #[cfg_attr(
        not(feature = "fault-injection"),
        expect(unused_variables, reason = "only the observer needs it")
    )]
    pub(crate) fn before(len: impl FnOnce() -> u64) -> FileSyncNote {
        FileSyncNote {
            // Only worked out when a test installed an observer.
            #[cfg(feature = "fault-injection")]
            len: match crate::fault_injection::observing() {
                true => len(),
                false => 0,
            },
        }
    }

    /// Reports the fsync of `path` as done.
    #[inline]
    #[cfg_attr(
        not(feature = "fault-injection"),
        expect(unused_variables, reason = "only the observer needs it")
    )]
    pub(crate) fn synced(self, path: &Path) {
        #[cfg(feature = "fault-injection")]
        crate::fault_injection::emit(crate::fault_injection::SyncEvent::File {
            path,
            len: self.len,
        });
    }
}

/// Replaces `path` with `contents` crash-safely: write a temporary file, fsync
/// it, rename it over `path`, fsync the directory. A crash leaves either the
/// old file or the new one, never a mix.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    let note = FileSyncNote::before(|| contents.len() as u64);
    write().map_err(|e| Error::io("write", &tmp, e))?;
    note.synced(&tmp);
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    sync_dir(parent_dir(path))
}

/// Removes a file; a file that is already gone is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// The directory holding `path`: `.` for a bare relative name, whose parent
/// is the empty path.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
