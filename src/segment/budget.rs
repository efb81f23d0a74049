//! [`OpenSegments`]: the bound on segments whose maps (and, for an active
//! segment being written, files) are held open, shared by every partition of
//! a `Log`.
//!
//! A fixed table of `max` slots; a segment holds one while its maps are
//! loaded. A segment that needs a slot when all are taken evicts one chosen
//! by the CLOCK rule (second chance: a segment used since the hand last
//! passed is spared once), the standard approximation of least-recently-used
//! that needs no list update on the read and append paths, only a relaxed
//! store of a "referenced" bit.
//!
//! Eviction never blocks: the table's lock is held while a victim is
//! examined, so the victim's own locks are only *tried*. A busy victim (a
//! reader copying its maps, an appender writing to it) is skipped. A sealed
//! segment's maps are dropped; an active segment is parked (its files
//! closed, its maps dropped) and reopened by its next append. Readers holding an `Arc` of an evicted segment's maps keep
//! valid bytes: the mapping lives until the last `Arc` goes.
//!
//! Lock order: a segment's `data` lock, then the table; the table never waits
//! for a segment or writer lock (it only tries them). A partition's writer
//! lock may be held while waiting for the table.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::{ActiveSegment, Segment};

/// The writer lock of a partition, as the table reaches it to park an
/// evicted active segment.
pub(crate) type WriterCell = Mutex<Option<ActiveSegment>>;

/// Marks a segment that holds no slot.
pub(crate) const NO_SLOT: usize = usize::MAX;

/// A bound on the segments whose memory maps and files are held open, shared
/// by every partition opened with it (a [`Log`](crate::Log) shares one across
/// all its partitions, sized by [`LogConfig::max_open_segments`](crate::LogConfig::max_open_segments)).
///
/// Each open segment holds three memory maps (log, offset index, time
/// index); the active segment of a partition that is being written also holds
/// its three files open. So at most `3 * max` maps and `3 * max` file
/// descriptors belong to segments at any time, plus, briefly, the file a
/// sync, a checkpoint write or a recovery has open, and maps that a reader
/// still holds (a [`Batches`](crate::Batches) result keeps its segment's map
/// alive after eviction). When a segment must be opened and every slot is
/// taken, the least recently used segment (CLOCK approximation) is closed:
/// a sealed segment is simply unmapped; an idle active segment is *parked*
/// (its files closed) and reopened by its next append.
///
/// Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct OpenSegments {
    inner: Arc<Table>,
}

struct Table {
    max: usize,
    state: Mutex<State>,
    evictions: AtomicUsize,
}

struct State {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    hand: usize,
}

struct Entry {
    segment: Weak<Segment>,
    /// The partition's writer lock, while the segment may be its active one.
    writer: Option<Weak<WriterCell>>,
}

/// What trying to evict one slot found.
enum Tried {
    /// The slot is free now.
    Freed,
    /// In use since the hand last passed, or locked: try another.
    Spared,
}

impl OpenSegments {
    /// A bound of `max` open segments (at least 2; smaller values are raised
    /// to 2, since an append may need its active segment and a sealed one a
    /// reader is loading).
    pub fn new(max: usize) -> OpenSegments {
        let max = max.max(2);
        OpenSegments {
            inner: Arc::new(Table {
                max,
                state: Mutex::new(State {
                    slots: Vec::new(),
                    free: Vec::new(),
                    hand: 0,
                }),
                evictions: AtomicUsize::new(0),
            }),
        }
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Segments holding a slot now (dropped segments count until the slot is
    /// reused).
    pub fn open(&self) -> usize {
        let state = self.inner.state.lock();
        state.slots.len() - state.free.len()
    }

    /// Segments closed to make room since this bound was created.
    pub fn evictions(&self) -> usize {
        self.inner.evictions.load(Ordering::Relaxed)
    }

    /// Gives `segment` a slot (evicting another segment if none is free);
    /// with `writer`, the slot may be reclaimed by parking the partition's
    /// active segment. Returns at once if the segment already has one.
    ///
    /// Waits (yielding) only while every slot belongs to a segment that is
    /// being used right now.
    pub(crate) fn admit(&self, segment: &Arc<Segment>, writer: Option<Weak<WriterCell>>) {
        segment.touch();
        let t = &self.inner;
        loop {
            {
                let mut st = t.state.lock();
                let held = segment.slot.load(Ordering::Acquire);
                if held != NO_SLOT {
                    if let (Some(entry), Some(w)) = (st.slots[held].as_mut(), writer) {
                        entry.writer = Some(w);
                    }
                    return;
                }
                let free = match st.free.pop() {
                    Some(i) => Some(i),
                    // Slots are made as needed, up to the bound.
                    None if st.slots.len() < t.max => {
                        st.slots.push(None);
                        Some(st.slots.len() - 1)
                    }
                    None => self.sweep(&mut st),
                };
                if let Some(i) = free {
                    st.slots[i] = Some(Entry {
                        segment: Arc::downgrade(segment),
                        writer,
                    });
                    segment.slot.store(i, Ordering::Release);
                    return;
                }
            }
            // Every slot is in use this instant (readers copying maps,
            // appenders writing); each finishes without needing a slot.
            std::thread::yield_now();
        }
    }

    /// Frees the slot of `segment`, whose maps the caller just dropped while
    /// holding its `data` lock.
    pub(crate) fn release(&self, segment: &Segment) {
        let mut st = self.inner.state.lock();
        let held = segment.slot.swap(NO_SLOT, Ordering::AcqRel);
        if held != NO_SLOT {
            st.slots[held] = None;
            st.free.push(held);
        }
    }

    /// Moves the hand until a slot is freed; at most two turns (the first
    /// may only clear "referenced" bits). `None` if every slot is busy.
    fn sweep(&self, st: &mut State) -> Option<usize> {
        for _ in 0..2 * self.inner.max {
            let i = st.hand;
            st.hand = (st.hand + 1) % self.inner.max;
            if let Tried::Freed = try_evict(st.slots[i].as_ref()) {
                st.slots[i] = None;
                self.inner.evictions.fetch_add(1, Ordering::Relaxed);
                return Some(i);
            }
        }
        None
    }
}

/// Tries to close the segment in a slot without waiting for any lock.
fn try_evict(entry: Option<&Entry>) -> Tried {
    let Some(entry) = entry else {
        return Tried::Freed;
    };
    // A dropped segment's maps went with it.
    let Some(segment) = entry.segment.upgrade() else {
        return Tried::Freed;
    };
    if segment.take_referenced() {
        return Tried::Spared;
    }
    if let Some(cell) = entry.writer.as_ref().and_then(Weak::upgrade) {
        let Some(mut guard) = cell.try_lock() else {
            return Tried::Spared;
        };
        // The writer lock is held whenever an active segment is being
        // created or reopened, so an unlocked cell that holds another
        // segment (or none) means this one is no longer its active segment.
        if let Some(active) = guard
            .as_mut()
            .filter(|a| Arc::ptr_eq(&a.segment, &segment) && a.is_open())
        {
            return match active.park() {
                true => {
                    segment.slot.store(NO_SLOT, Ordering::Release);
                    Tried::Freed
                }
                false => Tried::Spared,
            };
        }
    }
    match segment.unload_for_eviction() {
        true => {
            segment.slot.store(NO_SLOT, Ordering::Release);
            Tried::Freed
        }
        false => Tried::Spared,
    }
}

impl fmt::Debug for OpenSegments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSegments")
            .field("max", &self.inner.max)
            .field("evictions", &self.evictions())
            .finish()
    }
}

impl Default for OpenSegments {
    /// A bound of [`OpenSegments::default_max`] segments.
    fn default() -> Self {
        OpenSegments::new(OpenSegments::default_max())
    }
}

impl OpenSegments {
    /// The default bound: a quarter of the process's open-file limit
    /// (`RLIMIT_NOFILE`, soft) when it is read, between 64 and 4096. With the
    /// common soft limit of 1,024 that is 256 segments: at most 768 file
    /// descriptors and 768 maps for segments, leaving room for the rest of
    /// the program.
    pub fn default_max() -> usize {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        usize::try_from(soft / 4)
            .unwrap_or(usize::MAX)
            .clamp(64, 4096)
    }
}
