//! Choosing a partition for a record, as Kafka's Java producer does: murmur2
//! of the key for keyed records, uniform sticky partitioning (KIP-794) for
//! keyless ones. Pure, no I/O.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::types::PartitionId;

/// Kafka's `Utils.murmur2`: the 32-bit MurmurHash2 of `data` with seed
/// `0x9747b28c`, bit for bit as the Java client computes it.
///
/// Keyed records go to `(murmur2(key) & 0x7fffffff) % partitions`
/// ([`partition_for_key`]); matching the Java client here is what lets a
/// moldau producer and a Java producer put the same key in the same partition.
///
/// ```
/// assert_eq!(moldau::murmur2(b"foobar"), -790_332_482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    // Java computes in `int` with wrapping multiplication; u32 with
    // wrapping_mul gives the same bits, and u32 `>>` is Java's `>>>`.
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java arrays hold at most i32::MAX bytes, so Java never truncates here;
    // a longer slice wraps its length, which only changes the hash.
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        // Little-endian with each byte masked `& 0xff`, as Java assembles it.
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's `switch (length % 4)` falls through from case 3 to case 1.
    match *words.remainder() {
        [a, b, c] => {
            h ^= u32::from(c) << 16;
            h ^= u32::from(b) << 8;
            h ^= u32::from(a);
            h = h.wrapping_mul(M);
        }
        [a, b] => {
            h ^= u32::from(b) << 8;
            h ^= u32::from(a);
            h = h.wrapping_mul(M);
        }
        [a] => {
            h ^= u32::from(a);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java producer picks for a record with key `key` in a
/// topic of `partitions` partitions: `toPositive(murmur2(key)) % partitions`
/// (`BuiltInPartitioner.partitionForKey`).
///
/// `partitions` must be at least 1; `None` for 0, since no partition exists.
///
/// ```
/// use moldau::{partition_for_key, PartitionId};
/// assert_eq!(partition_for_key(b"foobar", 12), Some(PartitionId(6)));
/// assert_eq!(partition_for_key(b"foobar", 0), None);
/// ```
pub fn partition_for_key(key: &[u8], partitions: u32) -> Option<PartitionId> {
    // toPositive clears the sign bit (it is not abs()), so the dividend is a
    // non-negative i32 and u32 arithmetic gives Java's result.
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    positive.checked_rem(partitions).map(PartitionId)
}

/// Kafka's uniform sticky partitioner (KIP-794) for the keyless records of
/// one topic: every keyless record goes to the current sticky partition until
/// at least `batch_size` bytes have gone to it, then the partitioner switches
/// to another partition chosen uniformly at random.
///
/// Sticking fills one batch at a time instead of spreading small batches over
/// every partition, which is what makes keyless produce efficient; switching
/// after a batch's worth of bytes keeps partitions evenly loaded over time.
///
/// Differences from Kafka's `BuiltInPartitioner`: the switch always picks a
/// partition other than the current one (Kafka may pick the same one again),
/// and there is no adaptive weighting by broker queue size.
///
/// Lock-free: the sticky partition and the bytes produced to it share one
/// `AtomicU64` updated by compare-and-swap, so concurrent senders never block
/// each other and a switch is seen by all of them at once.
#[derive(Debug)]
pub(crate) struct StickyPartitioner {
    /// The current sticky partition (high 32 bits, [`Self::NO_PARTITION`] before
    /// the first record) and the bytes produced to it since it was chosen
    /// (low 32 bits, saturating). One word, so both change together.
    state: AtomicU64,
    /// splitmix64 state; each draw adds [`Self::GOLDEN_GAMMA`], so concurrent draws
    /// get distinct values without a lock.
    rng: AtomicU64,
    /// Bytes to send to a partition before switching, at least 1.
    batch_size: u32,
}

impl StickyPartitioner {
    /// Marks "no sticky partition chosen yet" in `state`; never a valid
    /// partition, because a partition is below a `u32` count.
    const NO_PARTITION: u32 = u32::MAX;

    /// splitmix64's increment (the golden ratio in 64 bits).
    const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// A partitioner that switches partitions after `batch_size` bytes
    /// (Kafka uses the producer's `batch.size`, 16384 by default). A
    /// `batch_size` of 0 is taken as 1 (switch after every record); sizes
    /// beyond `u32::MAX` as `u32::MAX`.
    pub(crate) fn new(batch_size: usize) -> Self {
        Self::with_seed(batch_size, Self::random_seed())
    }

    /// A partitioner whose random choices are fixed by `seed`, for tests.
    pub(crate) fn with_seed(batch_size: usize, seed: u64) -> Self {
        StickyPartitioner {
            state: AtomicU64::new(Self::pack(Self::NO_PARTITION, 0)),
            rng: AtomicU64::new(seed),
            batch_size: u32::try_from(batch_size).unwrap_or(u32::MAX).max(1),
        }
    }

    /// The partition for the next keyless record of the topic, which now has
    /// `partitions` partitions; `record_bytes` is the record's approximate
    /// size (at least 1 is counted), towards the switch.
    ///
    /// The record goes to the current sticky partition; if that brings the
    /// bytes sent to it to `batch_size` or more, the following records go to
    /// a new one. If the current partition is no longer below `partitions`
    /// (or there is none yet), a new one is picked first. `partitions` of 0
    /// has no valid answer and returns partition 0 without changing state.
    pub(crate) fn partition(&self, partitions: u32, record_bytes: usize) -> PartitionId {
        if partitions == 0 {
            return PartitionId(0);
        }
        // Every record takes some room in a batch; counting at least one byte
        // keeps a caller that reports 0 from sticking forever.
        let added = u32::try_from(record_bytes).unwrap_or(u32::MAX).max(1);
        // Relaxed is enough: the state word is the only data involved, and a
        // read-modify-write on one atomic is totally ordered on its own.
        let mut seen = self.state.load(Ordering::Relaxed);
        loop {
            let (mut current, mut produced) = Self::unpack(seen);
            if current >= partitions {
                // None chosen yet, or the topic shrank under us.
                current = self.random_partition(partitions, None);
                produced = 0;
            }
            let produced = produced.saturating_add(added);
            let next = if produced >= self.batch_size {
                Self::pack(self.random_partition(partitions, Some(current)), 0)
            } else {
                Self::pack(current, produced)
            };
            match self
                .state
                .compare_exchange_weak(seen, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return PartitionId(current),
                Err(actual) => seen = actual,
            }
        }
    }

    /// A uniformly random partition below `partitions` (at least 1), other
    /// than `avoid` when there is another to choose.
    fn random_partition(&self, partitions: u32, avoid: Option<u32>) -> u32 {
        let r = self.next_random();
        match avoid {
            Some(avoid) if partitions > 1 && avoid < partitions => {
                // Draw among the partitions - 1 others and skip over `avoid`.
                let k = (r % u64::from(partitions - 1)) as u32;
                if k >= avoid {
                    k + 1
                } else {
                    k
                }
            }
            _ => (r % u64::from(partitions)) as u32,
        }
    }

    /// The next splitmix64 output. The modulo bias over at most 2^32
    /// partitions is below 2^-32, far under any load difference that matters.
    fn next_random(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(Self::GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A seed that differs between processes and between partitioners: std's
    /// `RandomState` carries per-process random keys (and changes them per
    /// call), mixed with the current time.
    fn random_seed() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.finish()
    }

    /// The state word for sticky partition `partition` with `produced` bytes.
    const fn pack(partition: u32, produced: u32) -> u64 {
        (partition as u64) << 32 | produced as u64
    }

    /// The inverse of [`Self::pack`].
    const fn unpack(state: u64) -> (u32, u32) {
        ((state >> 32) as u32, state as u32)
    }
}

#[cfg(test)]
mod tests;
