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
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    /// A line-by-line transcription of Java's `Utils.murmur2` in `i32`
    /// arithmetic, signed bytes and all, as a model for the u32 version.
    fn java_murmur2(bytes: &[u8]) -> i32 {
        let data: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
        let length = data.len() as i32;
        let seed = 0x9747_b28c_u32 as i32;
        let m: i32 = 0x5bd1_e995;
        let r = 24;
        let ushr = |x: i32, n: u32| ((x as u32) >> n) as i32;
        let mut h = seed ^ length;
        let length4 = length / 4;
        for i in 0..length4 {
            let i4 = (i * 4) as usize;
            let mut k = (i32::from(data[i4]) & 0xff)
                .wrapping_add((i32::from(data[i4 + 1]) & 0xff) << 8)
                .wrapping_add((i32::from(data[i4 + 2]) & 0xff) << 16)
                .wrapping_add((i32::from(data[i4 + 3]) & 0xff) << 24);
            k = k.wrapping_mul(m);
            k ^= ushr(k, r);
            k = k.wrapping_mul(m);
            h = h.wrapping_mul(m);
            h ^= k;
        }
        let tail = (length & !3) as usize;
        let rem = length % 4;
        if rem >= 3 {
            h ^= (i32::from(data[tail + 2]) & 0xff) << 16;
        }
        if rem >= 2 {
            h ^= (i32::from(data[tail + 1]) & 0xff) << 8;
        }
        if rem >= 1 {
            h ^= i32::from(data[tail]) & 0xff;
            h = h.wrapping_mul(m);
        }
        h ^= ushr(h, 13);
        h = h.wrapping_mul(m);
        h ^= ushr(h, 15);
        h
    }

    /// Apache Kafka's own vectors:
    /// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
    /// `testMurmur2`.
    #[test]
    fn murmur2_matches_kafka_utils_test() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            // Kafka writes this one as `new byte[] {'a', 'b', 'c'}`.
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), want, "{:?}", String::from_utf8_lossy(key));
            assert_eq!(java_murmur2(key), want);
        }
    }

    /// librdkafka's vectors, labelled as the Java client's results:
    /// confluentinc/librdkafka src/rdmurmur2.c, `unittest_murmur2`
    /// (`java_murmur2_results`). They cover every tail length and the empty key.
    #[test]
    fn murmur2_matches_librdkafka_java_results() {
        let unaligned = "PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: [(&str, u32); 11] = [
            ("kafka", 0xd067_cf64),
            ("giberish123456789", 0x8f55_2b0c),
            ("1234", 0x9fc9_7b14),
            ("234", 0xe7c0_09ca),
            ("34", 0x8739_30da),
            ("4", 0x5a4b_5ca1),
            (unaligned, 0x7842_4f1c),
            (&unaligned[1..], 0x4a62_b377),
            (&unaligned[2..], 0xe0e4_e09e),
            (&unaligned[3..], 0x62b8_b43f),
            ("", 0x106e_08d9),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()), want as i32, "{key:?}");
        }
    }

    /// Expected partitions from librdkafka's partitioner test, which derives
    /// them from the Java client ("using tests/java/Murmur2Cli"):
    /// confluentinc/librdkafka tests/0048-partitioner.c,
    /// `do_test_partitioners`, partitioner "murmur2", 17 partitions (7 in
    /// quick mode). The constants there are the positive hashes.
    #[test]
    fn partition_for_key_matches_java_client() {
        let cases: [(&str, u32); 4] = [
            ("", 0x106e_08d9),
            ("23456", 0x058d_780f),
            (
                "this is another string with more length to it perhaps",
                0x4f77_03da,
            ),
            ("hejsan", 0x5ec1_9395),
        ];
        for (key, positive) in cases {
            assert_eq!((murmur2(key.as_bytes()) & 0x7fff_ffff) as u32, positive);
            for partitions in [7, 17] {
                assert_eq!(
                    partition_for_key(key.as_bytes(), partitions),
                    Some(PartitionId(positive % partitions)),
                    "{key:?} over {partitions}"
                );
            }
        }
    }

    #[test]
    fn partition_for_key_clears_the_sign_bit_rather_than_negating() {
        // murmur2("21") = -973932308 = 0xc5f3_9bec; & 0x7fffffff = 0x45f3_9bec
        // = 1173551340, while abs() would give 973932308.
        assert_eq!(
            partition_for_key(b"21", 1 << 31),
            Some(PartitionId(1_173_551_340))
        );
        assert_eq!(partition_for_key(b"21", 1), Some(PartitionId(0)));
        assert_eq!(partition_for_key(b"21", 0), None);
    }

    proptest! {
        #[test]
        fn murmur2_equals_java_transcription(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(murmur2(&data), java_murmur2(&data));
        }

        #[test]
        fn partition_for_key_is_in_range(
            key in proptest::collection::vec(any::<u8>(), 0..32),
            partitions in 1u32..,
        ) {
            let p = partition_for_key(&key, partitions);
            prop_assert!(matches!(p, Some(PartitionId(n)) if n < partitions));
        }

        #[test]
        fn sticky_partition_is_always_in_range(
            seed in any::<u64>(),
            batch_size in 0usize..64,
            calls in proptest::collection::vec((1u32..8, 0usize..40), 1..200),
        ) {
            let sticky = StickyPartitioner::with_seed(batch_size, seed);
            for (partitions, bytes) in calls {
                let PartitionId(p) = sticky.partition(partitions, bytes);
                prop_assert!(p < partitions);
            }
        }
    }

    #[test]
    fn sticks_until_batch_size_bytes_then_switches() {
        // As Kafka's BuiltInPartitionerTest.testStickyPartitioning: room for
        // three 1-byte records, so the fourth goes elsewhere.
        for seed in 0..50 {
            let sticky = StickyPartitioner::with_seed(3, seed);
            let first = sticky.partition(3, 1);
            assert_eq!(sticky.partition(3, 1), first);
            assert_eq!(sticky.partition(3, 1), first);
            assert_ne!(sticky.partition(3, 1), first, "seed {seed}");
        }
    }

    #[test]
    fn the_record_that_crosses_the_batch_size_still_goes_to_the_old_partition() {
        let sticky = StickyPartitioner::with_seed(100, 7);
        let first = sticky.partition(10, 30);
        for _ in 0..3 {
            // 60, 90, 120 bytes: the third of these crosses 100 but is still sent here.
            assert_eq!(sticky.partition(10, 30), first);
        }
        assert_ne!(sticky.partition(10, 30), first);
    }

    #[test]
    fn one_partition_always_gets_everything() {
        let sticky = StickyPartitioner::with_seed(1, 3);
        for _ in 0..20 {
            assert_eq!(sticky.partition(1, 5), PartitionId(0));
        }
    }

    #[test]
    fn zero_partitions_answers_zero_and_keeps_state() {
        let sticky = StickyPartitioner::with_seed(100, 3);
        let first = sticky.partition(8, 10);
        assert_eq!(sticky.partition(0, 10), PartitionId(0));
        assert_eq!(sticky.partition(8, 10), first);
    }

    #[test]
    fn a_zero_batch_size_switches_after_every_record() {
        let sticky = StickyPartitioner::with_seed(0, 11);
        let mut last = sticky.partition(4, 0);
        for _ in 0..20 {
            let next = sticky.partition(4, 0);
            assert_ne!(next, last);
            last = next;
        }
    }

    #[test]
    fn a_partition_count_that_shrinks_below_the_sticky_partition_moves_it() {
        for seed in 0..50 {
            let sticky = StickyPartitioner::with_seed(1_000, seed);
            let PartitionId(p) = sticky.partition(100, 1);
            let shrunk = p / 2 + 1; // p is now out of range unless p == 0
            let PartitionId(q) = sticky.partition(shrunk, 1);
            assert!(q < shrunk);
            if p >= shrunk {
                // And the new choice sticks.
                assert_eq!(sticky.partition(shrunk, 1), PartitionId(q));
            } else {
                assert_eq!(q, p);
            }
        }
    }

    #[test]
    fn growing_the_partition_count_keeps_the_sticky_partition() {
        let sticky = StickyPartitioner::with_seed(1_000, 5);
        let first = sticky.partition(4, 1);
        assert_eq!(sticky.partition(40, 1), first);
    }

    #[test]
    fn batches_spread_uniformly_over_partitions() {
        const PARTITIONS: u32 = 8;
        const BATCHES: usize = 16_000;
        let sticky = StickyPartitioner::with_seed(100, 0x5eed);
        let mut records = [0u32; PARTITIONS as usize];
        // Ten 10-byte records fill each 100-byte batch.
        for _ in 0..BATCHES * 10 {
            records[sticky.partition(PARTITIONS, 10).0 as usize] += 1;
        }
        let expected = (BATCHES * 10) as f64 / f64::from(PARTITIONS);
        for (p, &n) in records.iter().enumerate() {
            let ratio = f64::from(n) / expected;
            // Batches per partition are about Binomial(16000, 1/8): sd ~ 42
            // batches of 2000, so 15% is more than 7 standard deviations.
            assert!(
                (0.85..1.15).contains(&ratio),
                "partition {p}: {n} records, ratio {ratio}"
            );
        }
    }

    #[test]
    fn distinct_partitioners_start_on_different_partitions() {
        // Seeds come from RandomState and the clock; 64 partitioners over 1000
        // partitions all landing on one would mean the seeding is broken.
        let first: BTreeSet<_> = (0..64)
            .map(|_| StickyPartitioner::new(16_384).partition(1_000, 1))
            .collect();
        assert!(first.len() > 1);
    }

    #[test]
    fn concurrent_callers_never_see_an_out_of_range_partition() {
        let sticky = Arc::new(StickyPartitioner::with_seed(64, 42));
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let sticky = Arc::clone(&sticky);
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        // Threads disagree about the partition count, as during
                        // a metadata refresh after partitions were added.
                        let partitions = 1 + (i + t) % 7;
                        let PartitionId(p) = sticky.partition(partitions, (i % 13) as usize);
                        assert!(p < partitions, "{p} >= {partitions}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn concurrent_callers_share_one_sticky_partition() {
        // With a batch size no caller reaches, every thread sees the same
        // partition: the state is shared, not per thread.
        let sticky = Arc::new(StickyPartitioner::with_seed(usize::MAX, 9));
        let first = sticky.partition(16, 1);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let sticky = Arc::clone(&sticky);
                std::thread::spawn(move || (0..1_000).all(|_| sticky.partition(16, 1) == first))
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
    }

    #[test]
    fn sticky_partitioner_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<StickyPartitioner>();
    }
}
