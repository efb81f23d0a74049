//! Tests of `partitioner`.
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
