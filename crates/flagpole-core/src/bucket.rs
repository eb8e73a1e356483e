//! Consistent bucketing: which slice of a rollout a context falls into.
//!
//! `bucket = murmur3_x86_32(salt ++ ":" ++ value, seed 0) * 100_000 >> 32`, a number in
//! `[0, 100_000)`. Every SDK, in any language, must reproduce this exactly; the vectors in
//! `tests/golden/bucketing.json` pin it.
//!
//! Why these choices:
//! - murmur3 x86_32 has reference implementations everywhere, so other SDKs can agree.
//! - The per-flag salt (the flag key unless set) makes flags independent: two 10% rollouts
//!   pick different people. Changing the salt re-randomises one flag.
//! - Multiply-shift instead of `%`: no modulo bias and monotonic in the hash.
//! - Buckets fill a rollout's slices in order, so growing the first slice only adds people.

use crate::model::TOTAL_WEIGHT;

/// Separates salt from value so that ("ab", "c") and ("a", "bc") hash differently.
pub const SEPARATOR: u8 = b':';

/// murmur3 x86_32 with seed 0. The one place the hash function is chosen.
pub fn murmur3_32(bytes: &[u8]) -> u32 {
    mur3::murmurhash3_x86_32(bytes, 0)
}

/// Maps a 32-bit hash onto `[0, TOTAL_WEIGHT)`.
pub fn bucket_of_hash(hash: u32) -> u32 {
    ((u64::from(hash) * u64::from(TOTAL_WEIGHT)) >> 32) as u32
}

/// The bucket of `value` for a flag whose salt is `salt`.
pub fn bucket(salt: &str, value: &str) -> u32 {
    bucket_of_hash(hash_salted(salt.as_bytes(), value.as_bytes()))
}

/// Hash of `salt ++ ":" ++ value`, without concatenating (so without allocating).
pub fn hash_salted(salt: &[u8], value: &[u8]) -> u32 {
    SaltedPrefix::new(salt).hash(value)
}

/// murmur3 x86_32 (seed 0) part-way through `salt ++ ":"`, so that a value can be hashed
/// as if appended to it. Compilation computes one per flag; evaluation then hashes only
/// the context's value: no copying, no allocation whatever its length, and roughly half
/// the blocks for a typical flag key. Identical to [`murmur3_32`] over the concatenation
/// (pinned by the tests here, the golden vectors and the property tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SaltedPrefix {
    /// The hash state after every whole 4-byte block so far.
    h: u32,
    /// The bytes after the last whole block (`carry_len` of them, little-endian).
    carry: u32,
    carry_len: u32,
    /// Bytes absorbed so far.
    len: usize,
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline(always)]
fn mix_block(h: u32, k: u32) -> u32 {
    (h ^ mix_k(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

impl SaltedPrefix {
    /// The state after `salt ++ ":"`.
    pub(crate) fn new(salt: &[u8]) -> SaltedPrefix {
        let empty = SaltedPrefix {
            h: 0,
            carry: 0,
            carry_len: 0,
            len: 0,
        };
        empty.absorb(salt).absorb(&[SEPARATOR])
    }

    /// The hash of the prefix followed by `value`.
    #[inline]
    pub(crate) fn hash(&self, value: &[u8]) -> u32 {
        let end = self.absorb(value);
        let mut h = end.h;
        if end.carry_len > 0 {
            h ^= mix_k(end.carry);
        }
        // murmur3 mixes in the length as a 32-bit int.
        h ^= end.len as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }

    /// Feeds `bytes`. The carried bytes and each new 4-byte word form a window of up to
    /// 7 bytes in a `u64`; its low 4 bytes are the next block, the rest carry on.
    #[inline]
    fn absorb(self, bytes: &[u8]) -> SaltedPrefix {
        let shift = 8 * self.carry_len;
        let mut h = self.h;
        let mut carry = u64::from(self.carry);
        let mut words = bytes.chunks_exact(4);
        for word in &mut words {
            let window = carry
                | (u64::from(u32::from_le_bytes([word[0], word[1], word[2], word[3]])) << shift);
            h = mix_block(h, window as u32);
            carry = window >> 32;
        }
        let rest = words.remainder();
        let mut tail = 0u64;
        for (i, &b) in rest.iter().enumerate() {
            tail |= u64::from(b) << (8 * i);
        }
        let mut window = carry | (tail << shift);
        let mut carry_len = self.carry_len + rest.len() as u32;
        if carry_len >= 4 {
            h = mix_block(h, window as u32);
            window >>= 32;
            carry_len -= 4;
        }
        SaltedPrefix {
            h,
            carry: window as u32,
            carry_len,
            len: self.len + bytes.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // Published murmur3 x86_32 vectors; they fail if the crate or its use changes.
        assert_eq!(mur3::murmurhash3_x86_32(b"test", 0), 0xba6b_d213);
        assert_eq!(
            mur3::murmurhash3_x86_32(b"Hello, world!", 1234),
            0xfaf6_cdb3
        );
        assert_eq!(murmur3_32(b""), 0);
    }

    #[test]
    fn long_inputs_hash_like_short_ones() {
        let value = "x".repeat(600);
        let mut joined = b"salt:".to_vec();
        joined.extend_from_slice(value.as_bytes());
        assert_eq!(hash_salted(b"salt", value.as_bytes()), murmur3_32(&joined));
    }

    #[test]
    fn salted_prefix_is_murmur3_of_the_concatenation() {
        // Every split of carried and new bytes, with bytes that differ by position.
        let bytes: Vec<u8> = (0..64u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        for salt_len in 0..12 {
            let prefix = SaltedPrefix::new(&bytes[..salt_len]);
            for value_len in 0..40 {
                let value = &bytes[20..20 + value_len];
                let mut joined = bytes[..salt_len].to_vec();
                joined.push(SEPARATOR);
                joined.extend_from_slice(value);
                assert_eq!(
                    prefix.hash(value),
                    murmur3_32(&joined),
                    "salt {salt_len} value {value_len}"
                );
            }
        }
    }

    #[test]
    fn bucket_range() {
        assert_eq!(bucket_of_hash(0), 0);
        assert_eq!(bucket_of_hash(u32::MAX), TOTAL_WEIGHT - 1);
    }
}
