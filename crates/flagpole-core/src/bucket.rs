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

/// Inputs up to this size are hashed from a stack buffer; longer ones (rare: a bucketing
/// value over ~200 bytes) take one allocation.
const STACK_INPUT: usize = 256;

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

/// Hash of `salt ++ ":" ++ value`, without allocating for ordinary sizes.
pub fn hash_salted(salt: &[u8], value: &[u8]) -> u32 {
    let len = salt.len() + 1 + value.len();
    if len <= STACK_INPUT {
        let mut buf = [0u8; STACK_INPUT];
        buf[..salt.len()].copy_from_slice(salt);
        buf[salt.len()] = SEPARATOR;
        buf[salt.len() + 1..len].copy_from_slice(value);
        murmur3_32(&buf[..len])
    } else {
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(salt);
        buf.push(SEPARATOR);
        buf.extend_from_slice(value);
        murmur3_32(&buf)
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
        let value = "x".repeat(STACK_INPUT * 2);
        let mut joined = b"salt:".to_vec();
        joined.extend_from_slice(value.as_bytes());
        assert_eq!(hash_salted(b"salt", value.as_bytes()), murmur3_32(&joined));
    }

    #[test]
    fn bucket_range() {
        assert_eq!(bucket_of_hash(0), 0);
        assert_eq!(bucket_of_hash(u32::MAX), TOTAL_WEIGHT - 1);
    }
}
