//! Exposures: which flags ask for them, and the dedupe that sends one per (flag, variant,
//! context key) per hour.
//!
//! Only flags whose state carries `exposures: true` pay anything: [`MarkedFlags`] is built
//! once per received environment and is `None` when no flag is marked, so the evaluation
//! path of an environment without experiments checks one `Option`. A marked flag's
//! evaluation hashes its (flag, variant, key) triple and looks it up in an LRU under a
//! mutex; a new triple then costs the allocations of one [`Exposure`].

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use flagpole_core::model::EnvironmentSnapshot;
use lru::LruCache;

/// Keys the dedupe remembers (the bound: 100k).
pub(crate) const DEDUPE_CAPACITY: usize = 100_000;

/// How long a (flag, variant, key) triple is remembered: a context that keeps seeing a
/// variant is reported again once an hour, so an hourly rollup sees it.
pub(crate) const DEDUPE_TTL: Duration = Duration::from_secs(3600);

/// The flags of one environment that ask for exposures, with their versions.
#[derive(Debug)]
pub(crate) struct MarkedFlags {
    versions: HashMap<Box<str>, u64, foldhash::fast::RandomState>,
}

impl MarkedFlags {
    /// `None` when no flag in `env` is marked: the common case costs nothing to check.
    pub(crate) fn of(env: &EnvironmentSnapshot) -> Option<MarkedFlags> {
        if !env.flags.iter().any(|state| state.exposures) {
            return None;
        }
        // The first of duplicate keys wins, as in `Snapshot::compile`, so a marked
        // duplicate cannot report exposures for the flag actually evaluated.
        let mut first: HashMap<&str, (bool, u64), foldhash::fast::RandomState> = HashMap::default();
        for state in &env.flags {
            first
                .entry(state.flag.key.as_str())
                .or_insert((state.exposures, state.version));
        }
        let versions: HashMap<Box<str>, u64, _> = first
            .into_iter()
            .filter(|(_, (marked, _))| *marked)
            .map(|(key, (_, version))| (key.into(), version))
            .collect();
        (!versions.is_empty()).then_some(MarkedFlags { versions })
    }

    /// The flag's version if it asks for exposures.
    #[inline]
    pub(crate) fn version(&self, flag_key: &str) -> Option<u64> {
        self.versions.get(flag_key).copied()
    }
}

/// Remembers which (flag, variant, context key) triples were reported in the last hour,
/// for at most `capacity` triples (the least recently seen go first).
///
/// Triples are kept as a 64-bit hash, not as strings, so a repeated exposure allocates
/// nothing and 100k keys take a few MiB. Two triples colliding (about 1 in 10^9 for a full
/// cache) only means one exposure is not sent; the seed is random per client.
///
/// The cache is split into shards by hash, each an LRU of its share of the capacity
/// under its own mutex: threads evaluating marked flags for different contexts rarely
/// wait on each other. One mutex measured 146 ns per evaluation on one thread and 791 ns
/// on four (benches/exposures.rs). Eviction is least-recently-seen within a shard, which
/// for hashed keys is the global order up to the shards' uneven filling.
pub(crate) struct ExposureDedupe {
    /// Each allocated on its first exposure: most clients never see a marked flag, and
    /// a full cache's tables are a few MiB.
    shards: Box<[OnceLock<Shard>]>,
    hasher: foldhash::quality::RandomState,
    shard_capacity: NonZeroUsize,
    ttl: Duration,
}

/// One shard: triple hash -> when it was last reported.
type Shard = Mutex<LruCache<u64, Instant>>;

/// Shards of the default dedupe.
pub(crate) const DEDUPE_SHARDS: usize = 16;

impl ExposureDedupe {
    pub(crate) fn new(capacity: usize, ttl: Duration, shards: usize) -> Self {
        let shards = shards.max(1);
        ExposureDedupe {
            shards: (0..shards).map(|_| OnceLock::new()).collect(),
            hasher: foldhash::quality::RandomState::default(),
            shard_capacity: NonZeroUsize::new(capacity.div_ceil(shards))
                .unwrap_or(NonZeroUsize::MIN),
            ttl,
        }
    }

    /// True if the triple was not reported within the TTL (and records it as reported now).
    pub(crate) fn first(&self, flag: &str, variant: &str, context_key: &str, now: Instant) -> bool {
        // `str`'s `Hash` writes a terminator, so ("ab", "c") and ("a", "bc") differ.
        let key = self.hasher.hash_one((flag, variant, context_key));
        // The high bits pick the shard; the table inside hashes the whole key again.
        let shard = ((key >> 40) as usize) % self.shards.len();
        let seen =
            self.shards[shard].get_or_init(|| Mutex::new(LruCache::new(self.shard_capacity)));
        // A poisoned lock only means another thread panicked mid-`put`; the cache is still
        // a valid LRU, so keep using it rather than turning every evaluation into a panic.
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(&key) {
            Some(at) if now.saturating_duration_since(*at) < self.ttl => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                seen.put(key, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_triple_is_reported_once_per_ttl() {
        let dedupe = ExposureDedupe::new(10, Duration::from_secs(60), DEDUPE_SHARDS);
        let t0 = Instant::now();
        assert!(dedupe.first("f", "on", "u1", t0));
        assert!(!dedupe.first("f", "on", "u1", t0 + Duration::from_secs(59)));
        assert!(dedupe.first("f", "off", "u1", t0), "another variant");
        assert!(dedupe.first("f", "on", "u2", t0), "another key");
        assert!(dedupe.first("g", "on", "u1", t0), "another flag");
        assert!(dedupe.first("fo", "n", "u1", t0), "the parts are delimited");
        assert!(
            dedupe.first("f", "on", "u1", t0 + Duration::from_secs(60)),
            "after the TTL it is reported again"
        );
        assert!(!dedupe.first("f", "on", "u1", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_least_recently_seen_triple_is_forgotten_at_capacity() {
        let dedupe = ExposureDedupe::new(3, DEDUPE_TTL, 1);
        let now = Instant::now();
        for key in ["u1", "u2", "u3"] {
            assert!(dedupe.first("f", "on", key, now));
        }
        // Touch u1 so that u2 is now the least recently seen.
        assert!(!dedupe.first("f", "on", "u1", now));
        assert!(dedupe.first("f", "on", "u4", now), "evicts u2");
        assert!(!dedupe.first("f", "on", "u1", now));
        assert!(!dedupe.first("f", "on", "u3", now));
        assert!(dedupe.first("f", "on", "u2", now), "u2 was forgotten");
    }

    #[test]
    fn the_default_cache_holds_100k_keys_and_forgets_the_oldest_beyond() {
        let dedupe = ExposureDedupe::new(DEDUPE_CAPACITY, DEDUPE_TTL, DEDUPE_SHARDS);
        let now = Instant::now();
        let key = |i: usize| format!("user-{i}");
        // Half the capacity: every shard is well below its share, so all are remembered.
        for i in 0..DEDUPE_CAPACITY / 2 {
            assert!(dedupe.first("f", "on", &key(i), now));
        }
        assert!((0..DEDUPE_CAPACITY / 2).all(|i| !dedupe.first("f", "on", &key(i), now)));
        // Up to three times the capacity: the newest half-capacity is remembered, the
        // keys seen first are forgotten.
        for i in DEDUPE_CAPACITY / 2..3 * DEDUPE_CAPACITY {
            assert!(dedupe.first("f", "on", &key(i), now));
        }
        let newest = (2 * DEDUPE_CAPACITY + DEDUPE_CAPACITY / 2..3 * DEDUPE_CAPACITY)
            .filter(|&i| !dedupe.first("f", "on", &key(i), now))
            .count();
        assert_eq!(newest, DEDUPE_CAPACITY / 2, "the newest are all remembered");
        // (Checked after the newest: each check of a forgotten key records it again.)
        let oldest = (0..DEDUPE_CAPACITY / 2)
            .filter(|&i| dedupe.first("f", "on", &key(i), now))
            .count();
        assert_eq!(oldest, DEDUPE_CAPACITY / 2, "the oldest are all forgotten");
    }

    #[test]
    fn only_marked_flags_are_indexed() {
        let env = |marks: [bool; 2]| -> EnvironmentSnapshot {
            let flag = |key: &str, marked: bool, version: u64| {
                json!({
                    "flag": {"key": key, "kind": "boolean", "variants": [
                        {"key": "on", "value": true}, {"key": "off", "value": false}]},
                    "config": {"enabled": true, "off_variant": "off",
                               "default_serve": {"variant": "on"}},
                    "version": version, "exposures": marked
                })
            };
            serde_json::from_value(json!({"version": 1, "flags": [
                flag("a", marks[0], 3), flag("b", marks[1], 4), flag("a", true, 9)
            ]}))
            .unwrap()
        };
        assert!(MarkedFlags::of(&env([false, false])).is_none());
        let marked = MarkedFlags::of(&env([false, true])).unwrap();
        assert_eq!(marked.version("b"), Some(4));
        assert_eq!(
            marked.version("a"),
            None,
            "the first of duplicate keys wins"
        );
        assert_eq!(
            MarkedFlags::of(&env([true, false])).unwrap().version("a"),
            Some(3)
        );
    }
}
