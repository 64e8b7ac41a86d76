//! The aggregate's table from a client's key hash to its id (its index in the client
//! vector), laid out so that a lookup can be started ahead of its use.
//!
//! hashbrown's `HashTable<u32>` served here before; its lookup cannot be split, so each
//! request waited on up to three cache misses in a row (the control bytes, the id, then
//! the client's record to compare keys). `perf annotate` on one bench file (2 M lines,
//! ~100 k clients, `--threads 1 --no-evidence`) put `id_of` at 22% of the parse
//! thread's samples, 90% of them on those loads. Here a slot holds the id with 32 bits
//! of the hash, so a batch of requests can prefetch their slots as they arrive, read
//! the ids without touching the clients, and prefetch the clients' records before any
//! of them is needed (see `Aggregate::add`).

/// Open addressing with linear probing. A slot is one `u64`: the hash's high 32 bits
/// (the tag) above the id + 1; 0 is an empty slot. The slot a hash starts from is its
/// top bits, which the tag holds too, so the table grows without hashing a key again
/// (and without touching the clients). Load at most 7/8: 8 bytes a slot, 9 to 18
/// bytes a client (hashbrown's `u32` table: 5 to 11).
#[derive(Debug, Default)]
pub(super) struct IdTable {
    slots: Vec<u64>,
    len: usize,
    /// log2 of the number of slots (0 while there are none).
    bits: u32,
}

/// Slots in a table's first allocation.
const FIRST_BITS: u32 = 4;

/// The table's slots address with the tag's top bits: at most 2³² of them.
const MAX_BITS: u32 = 32;

#[inline]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

impl IdTable {
    #[inline]
    fn start(&self, tag: u32) -> usize {
        // `bits` is at least FIRST_BITS whenever there are slots.
        (tag >> (32 - self.bits)) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Starts loading the slot `hash` starts from, for a lookup a little later.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[self.start(tag_of(hash))]);
        }
    }

    /// The first id whose slot carries `hash`'s tag, if any: the likely match, to be
    /// confirmed by comparing keys (then [`Self::find`] if it was not it).
    #[inline]
    pub fn first_candidate(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The id whose slot carries `hash`'s tag and for which `is` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        let mask = self.mask();
        let mut i = self.start(tag);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == tag {
                let id = (slot as u32).wrapping_sub(1);
                if is(id) {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `id` under `hash`; the caller knows no slot holds it yet.
    pub fn insert_unique(&mut self, hash: u64, id: u32) {
        assert!(
            id < u32::MAX,
            "fewer than 2^32 - 1 clients in one aggregate"
        );
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        self.place((hash >> 32) << 32 | (id as u64 + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.mask();
        let mut i = self.start((slot >> 32) as u32);
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let bits = if self.slots.is_empty() {
            FIRST_BITS
        } else {
            self.bits + 1
        };
        assert!(bits <= MAX_BITS, "at most 2^32 slots in a client table");
        let old = std::mem::replace(&mut self.slots, vec![0; 1 << bits]);
        self.bits = bits;
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.place(slot);
        }
    }
}

/// A hash whose high bits depend on all of `h`'s: open-addressing tables here take
/// their slot (and the id table its tag) from the high bits, and FxHasher's are a
/// rotated product's middle ones.
#[inline]
pub fn spread(h: u64) -> u64 {
    h.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Asks the CPU to start loading the cache line holding `value` (a hint: no effect on
/// what the program computes).
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetching has no architectural effect; the pointer comes from a
        // reference, so it is valid anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the hashes (colliding tags included), every id is found under its
        /// own hash and no id under a hash never inserted.
        #[test]
        fn finds_every_id_and_only_them(
            hashes in prop::collection::vec(
                prop_oneof![any::<u64>(), (0u64..8).prop_map(|h| h << 32), 0u64..4],
                0..3000,
            ),
        ) {
            let mut table = IdTable::default();
            let mut seen = std::collections::HashMap::new();
            for (id, &h) in hashes.iter().enumerate() {
                table.insert_unique(h, id as u32);
                seen.entry(h).or_insert_with(Vec::new).push(id as u32);
            }
            for (&h, ids) in &seen {
                for &id in ids {
                    prop_assert_eq!(table.find(h, |c| c == id), Some(id));
                }
                let first = table.first_candidate(h).expect("a candidate");
                prop_assert_eq!(hashes[first as usize] >> 32, h >> 32);
            }
            prop_assert_eq!(table.find(u64::MAX ^ 0x5555, |_| false), None);
            prop_assert!(table.len * 8 <= table.slots.len() * 7 || table.slots.is_empty());
        }
    }
}
