//! The flag-key index of a snapshot, and byte comparison for short strings.
//!
//! Finding the flag is the one step every evaluation pays, and with `std`'s `HashMap` it
//! was half the cost of evaluating a flag without rules. This table is built once per
//! snapshot and only read afterwards, so it can be simpler than a general map:
//! - Open addressing with linear probing over 16-byte slots, at most half full, so a
//!   lookup usually reads one slot.
//! - Each slot carries 32 more bits of the hash and the position of its key in one
//!   contiguous byte arena; a miss is nearly always rejected without touching key bytes,
//!   and a hit compares against the arena while the flag itself is being loaded.
//! - The hash is foldhash's construction (folded 64×64→128-bit multiplies, a random
//!   per-table seed), written out so it inlines: one multiply per 16 bytes plus one.
//!   The seed keeps the probe lengths out of reach of whoever chooses flag keys.

use std::hash::BuildHasher;
use std::sync::Arc;

use crate::snapshot::CompiledFlag;

/// Marks an unused slot.
const EMPTY: u32 = u32::MAX;

/// Multiplier constants (the fractional parts of π used by foldhash).
const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;

/// Flag key → position in the snapshot's flag list, and back. Immutable once built.
#[derive(Debug)]
pub(crate) struct KeyIndex {
    seed: u64,
    /// `slots.len() - 1`; the length is a power of two.
    mask: usize,
    slots: Box<[Slot]>,
    /// Every key, in position order, back to back (so the snapshot need not keep its own
    /// copy of each flag's key).
    arena: Box<str>,
    /// Where each position's key is in `arena`: (start, len).
    keys: Box<[(u32, u32)]>,
}

#[derive(Debug, Clone)]
struct Slot {
    /// [`check`] of the key: high 32 bits of its hash and its length, compared at once.
    check: u64,
    /// Position of the flag; [`EMPTY`] for an unused slot.
    index: u32,
    /// Where the key's bytes start in the arena (its length is in `check`).
    start: u32,
    /// The compiled flag itself, once [`KeyIndex::attach`]ed to the snapshot's flags:
    /// evaluation goes from the slot straight to the flag, rather than from the slot to
    /// the position, to the flag list, to the flag (a dependent load on every evaluation,
    /// 0.4–0.7 ns of the 12–16 ns of a one-rule or rollout evaluation).
    flag: Option<Arc<CompiledFlag>>,
    /// The flag's first counting slot in this snapshot (see [`crate::counting`]), found
    /// with the flag so that counting costs no lookup of its own. With it a slot is 32
    /// bytes, a power of two: indexing is a shift, and no slot straddles a cache line.
    base: u32,
}

const UNUSED: Slot = Slot {
    check: 0,
    index: EMPTY,
    start: 0,
    flag: None,
    base: 0,
};

/// High 32 bits of the hash, and the length: a slot whose `check` differs is not the key.
#[inline(always)]
fn check(hash: u64, len: usize) -> u64 {
    (hash & 0xffff_ffff_0000_0000) | (len as u64 & 0xffff_ffff)
}

impl KeyIndex {
    /// Indexes `keys` by position. When a key occurs more than once, the first wins.
    pub(crate) fn new<'k>(keys: impl ExactSizeIterator<Item = &'k str> + Clone) -> KeyIndex {
        // At most half full, so probe sequences stay short; never zero slots, so every
        // probe sequence ends at an unused slot.
        let capacity = (keys.len() * 2).max(4).next_power_of_two();
        let arena_len = keys.clone().map(str::len).sum();
        let mut index = KeyIndex {
            seed: foldhash::fast::RandomState::default().hash_one(0x5eed_u64),
            mask: capacity - 1,
            slots: vec![UNUSED; capacity].into(),
            arena: Box::default(),
            keys: Box::default(),
        };
        // Limits of the compact slot layout; a snapshot anywhere near them (4 GiB of
        // keys, 4 billion flags) could not have been deserialised in the first place.
        assert!(
            u32::try_from(arena_len).is_ok() && u32::try_from(keys.len()).is_ok_and(|n| n < EMPTY),
            "flag keys exceed the index's limits"
        );
        let mut arena = String::with_capacity(arena_len);
        let mut spans = Vec::with_capacity(keys.len());
        for (i, key) in keys.enumerate() {
            let (start, len) = (arena.len() as u32, key.len() as u32);
            let (found, pos, hash) = index.probe(key.as_bytes(), arena.as_bytes());
            if found.is_none() {
                index.slots[pos] = Slot {
                    check: check(hash, key.len()),
                    index: i as u32,
                    start,
                    flag: None,
                    base: 0,
                };
            }
            arena.push_str(key);
            spans.push((start, len));
        }
        index.arena = arena.into();
        index.keys = spans.into();
        index
    }

    /// Position of the flag with this key.
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<usize> {
        self.probe(key.as_bytes(), self.arena.as_bytes())
            .0
            .map(|slot| slot.index as usize)
    }

    /// The flag with this key and its counting base, once [`KeyIndex::attach`]ed.
    #[inline(always)]
    pub(crate) fn find(&self, key: &str) -> Option<(usize, &CompiledFlag)> {
        let (slot, _, _) = self.probe(key.as_bytes(), self.arena.as_bytes());
        let slot = slot?;
        debug_assert!(
            slot.flag.is_some(),
            "the index was not attached to its flags"
        );
        Some((slot.base as usize, slot.flag.as_deref()?))
    }

    /// Gives every key's slot its flag's counting base, `bases` by position.
    pub(crate) fn set_bases(&mut self, bases: &[usize]) {
        for slot in self.slots.iter_mut().filter(|s| s.index != EMPTY) {
            slot.base = u32::try_from(bases[slot.index as usize])
                .expect("fewer than 4 billion counting slots");
        }
    }

    /// Gives every key's slot its flag from `flags` (by position).
    pub(crate) fn attach(&mut self, flags: &[Arc<CompiledFlag>]) {
        for slot in self.slots.iter_mut().filter(|s| s.index != EMPTY) {
            slot.flag = Some(Arc::clone(&flags[slot.index as usize]));
        }
    }

    /// A copy for another snapshot with the same keys, without this one's flags (the
    /// copy is [`KeyIndex::attach`]ed to its own).
    pub(crate) fn detached(&self) -> KeyIndex {
        KeyIndex {
            seed: self.seed,
            mask: self.mask,
            slots: self
                .slots
                .iter()
                .map(|s| Slot { flag: None, ..*s })
                .collect(),
            arena: self.arena.clone(),
            keys: self.keys.clone(),
        }
    }

    /// The key at position `i`.
    pub(crate) fn key(&self, i: usize) -> &str {
        let (start, len) = self.keys[i];
        &self.arena[start as usize..(start + len) as usize]
    }

    /// Looks `key` up in the slots, reading keys from `arena`: the slot found, the
    /// slot where the probe stopped (the unused slot where `key` would go, when absent),
    /// and the key's hash.
    #[inline(always)]
    fn probe(&self, key: &[u8], arena: &[u8]) -> (Option<&Slot>, usize, u64) {
        let hash = self.hash(key);
        let want = check(hash, key.len());
        let mut pos = hash as usize & self.mask;
        loop {
            let slot = &self.slots[pos];
            if slot.check == want && slot.index != EMPTY {
                let start = slot.start as usize;
                if bytes_eq(&arena[start..start + key.len()], key) {
                    return (Some(slot), pos, hash);
                }
            } else if slot.index == EMPTY {
                return (None, pos, hash);
            }
            pos = (pos + 1) & self.mask;
        }
    }

    #[inline(always)]
    fn hash(&self, bytes: &[u8]) -> u64 {
        let len = bytes.len();
        // The length is mixed in first, so overlapping reads below cannot make two keys
        // of different lengths look alike.
        let mut s = self.seed ^ (len as u64).wrapping_mul(K0);
        let (a, b) = if len > 32 {
            let mut rest = bytes;
            while rest.len() > 16 {
                s = folded_multiply(word(rest, 0) ^ s, word(rest, 8) ^ K1);
                rest = &rest[16..];
            }
            // The last 16 bytes, which may overlap the last block hashed above.
            (word(bytes, len - 16), word(bytes, len - 8))
        } else if len > 16 {
            // The loop above, unrolled for the commonest key lengths.
            s = folded_multiply(word(bytes, 0) ^ s, word(bytes, 8) ^ K1);
            (word(bytes, len - 16), word(bytes, len - 8))
        } else if len >= 8 {
            (word(bytes, 0), word(bytes, len - 8))
        } else if len >= 4 {
            (u64::from(half(bytes, 0)), u64::from(half(bytes, len - 4)))
        } else if len > 0 {
            let (lo, mid, hi) = (bytes[0], bytes[len / 2], bytes[len - 1]);
            (u64::from(lo), (u64::from(hi) << 8) | u64::from(mid))
        } else {
            (0, 0)
        };
        folded_multiply(a ^ s, b ^ K1 ^ self.seed)
    }
}

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn half(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// `a == b`, inlined for the short strings that flag keys and clause values usually are:
/// a few overlapping word compares instead of a call to `memcmp`.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0)
                && word(a, 8) == word(b, 8)
                && word(a, n - 16) == word(b, n - 16)
                && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_eq_agrees_with_slice_eq() {
        let base: Vec<u8> = (0..70u8).collect();
        for len in 0..70 {
            let a = &base[..len];
            assert!(bytes_eq(a, a));
            assert!(!bytes_eq(a, &base[..len + 1]));
            // Flip each byte in turn: every position must be compared.
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!bytes_eq(a, &b), "len {len}, byte {i}");
            }
        }
    }

    #[test]
    fn finds_every_key_and_nothing_else() {
        let keys: Vec<String> = (0..2000)
            .map(|i| "k".repeat(i % 40) + &i.to_string())
            .collect();
        let index = KeyIndex::new(keys.iter().map(String::as_str));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.get(k), Some(i), "{k}");
            assert_eq!(index.get(&format!("{k}x")), None);
        }
        assert_eq!(index.get(""), None);
    }

    #[test]
    fn first_duplicate_wins_and_empty_works() {
        let index = KeyIndex::new(["a", "b", "a", ""].into_iter());
        assert_eq!(index.key(2), "a");
        assert_eq!(index.key(3), "");
        assert_eq!(index.get("a"), Some(0));
        assert_eq!(index.get("b"), Some(1));
        assert_eq!(index.get(""), Some(3));
        let empty = KeyIndex::new(std::iter::empty());
        assert_eq!(empty.get("a"), None);
    }
}
