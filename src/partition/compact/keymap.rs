//! The key map of a compaction pass: the latest offset of each key.
//!
//! Keys are compared exactly: the map is keyed by the key's bytes, and the
//! hash only chooses where to look. Kafka's cleaner keys its map by a 16-byte
//! digest, which lets two different keys collide and lose a record; this one
//! cannot.

use std::collections::HashMap;

use crate::types::Offset;

/// Bytes a map entry costs besides its key: the boxed slice's pointer and
/// length, the offset, and the table's control byte, rounded up for load.
const ENTRY_OVERHEAD_BYTES: usize = 40;

/// Latest offset of each key, with the memory it takes.
#[derive(Debug, Default)]
pub(super) struct KeyMap {
    latest: HashMap<Box<[u8]>, Offset>,
    memory_bytes: usize,
}

impl KeyMap {
    /// Records `offset` for `key`; offsets are inserted in increasing order,
    /// so the last insert of a key wins.
    pub(super) fn insert(&mut self, key: &[u8], offset: Offset) {
        if let Some(o) = self.latest.get_mut(key) {
            *o = offset;
            return;
        }
        self.memory_bytes += key.len() + ENTRY_OVERHEAD_BYTES;
        self.latest.insert(key.into(), offset);
    }

    /// The latest offset of `key`, if it was seen.
    pub(super) fn latest(&self, key: &[u8]) -> Option<Offset> {
        self.latest.get(key).copied()
    }

    /// Approximate heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_offset_of_each_exact_key_wins() {
        let mut map = KeyMap::default();
        map.insert(b"a", Offset(1));
        map.insert(b"b", Offset(2));
        map.insert(b"a", Offset(3));
        assert_eq!(map.latest(b"a"), Some(Offset(3)));
        assert_eq!(map.latest(b"b"), Some(Offset(2)));
        assert_eq!(map.latest(b"ab"), None);
        assert_eq!(map.memory_bytes(), 2 + 2 * ENTRY_OVERHEAD_BYTES);
    }
}
