//! Choosing a partition: Kafka's murmur2 for keyed records, a sticky
//! partition for keyless ones.
//!
//! Stand-in so the producer builds on this branch; replaced at merge by the
//! partitioner branch's version with the same three signatures.

use parking_lot::Mutex;

use crate::types::PartitionId;

/// Kafka's `Utils.murmur2` (MurmurHash2, seed `0x9747b28c`), bit for bit.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java client picks for `key` among `partitions`:
/// `(murmur2(key) & 0x7fffffff) % partitions`; `None` for 0 partitions.
pub fn partition_for_key(key: &[u8], partitions: u32) -> Option<PartitionId> {
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    positive.checked_rem(partitions).map(PartitionId)
}

/// Kafka's uniform sticky partitioner (KIP-794) for keyless records: one
/// partition until `batch_size` bytes went to it, then the next.
#[derive(Debug)]
pub(crate) struct StickyPartitioner {
    batch_size: usize,
    /// The current partition and the bytes sent to it. Held for a few
    /// arithmetic operations per record.
    state: Mutex<(Option<u32>, usize)>,
}

impl StickyPartitioner {
    /// A partitioner that moves on after `batch_size` bytes.
    pub(crate) fn new(batch_size: usize) -> Self {
        StickyPartitioner {
            batch_size,
            state: Mutex::new((None, 0)),
        }
    }

    /// The partition for a keyless record of `record_bytes` among
    /// `partitions` (at least 1).
    pub(crate) fn partition(&self, partitions: u32, record_bytes: usize) -> PartitionId {
        let partitions = partitions.max(1);
        let mut st = self.state.lock();
        let current = match st.0 {
            Some(p) if p < partitions => p,
            Some(p) => p % partitions,
            None => 0,
        };
        st.1 += record_bytes;
        if st.1 >= self.batch_size {
            st.0 = Some((current + 1) % partitions);
            st.1 = 0;
        } else {
            st.0 = Some(current);
        }
        PartitionId(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), want, "{:?}", String::from_utf8_lossy(key));
        }
    }
}
