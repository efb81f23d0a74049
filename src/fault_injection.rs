//! Test-only observation of fsyncs (feature `fault-injection`), for
//! power-loss simulation: which byte ranges and directory entries a completed
//! fsync made durable.
//!
//! A crash-test child installs an observer with [`set_sync_observer`] and
//! writes each [`SyncEvent`] to a side channel; after killing the child, the
//! harness throws away whatever no fsync covered (as a power cut would) and
//! reopens. Without the feature the notes in `fsutil` compile to nothing.

use std::path::Path;
use std::sync::OnceLock;

/// A completed durability step, reported to the observer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SyncEvent<'a> {
    /// The first `len` bytes of the file at `path` are on stable storage
    /// (reported after the fsync returned; `len` is what the file held, or
    /// what was published of a memory-mapped log, when the fsync started).
    File {
        /// The file, by the name it had when synced.
        path: &'a Path,
        /// Bytes known durable from the file's start.
        len: u64,
    },
    /// An fsync of directory `path` is about to start: entries present now
    /// will be durable once the matching [`SyncEvent::DirSynced`] arrives.
    DirStarted {
        /// The directory.
        path: &'a Path,
    },
    /// The fsync of directory `path` announced by the last
    /// [`SyncEvent::DirStarted`] for it returned successfully.
    DirSynced {
        /// The directory.
        path: &'a Path,
    },
}

type Observer = Box<dyn Fn(&SyncEvent<'_>) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Installs the process-wide fsync observer. Only the first call takes
/// effect; returns whether this one did. The observer runs on the thread
/// that synced, so it sees events in the order they happened on that thread.
pub fn set_sync_observer(observer: impl Fn(&SyncEvent<'_>) + Send + Sync + 'static) -> bool {
    OBSERVER.set(Box::new(observer)).is_ok()
}

/// Whether an observer is installed.
pub(crate) fn observing() -> bool {
    OBSERVER.get().is_some()
}

pub(crate) fn emit(event: SyncEvent<'_>) {
    if let Some(observer) = OBSERVER.get() {
        observer(&event);
    }
}
