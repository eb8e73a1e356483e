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
pub(crate) struct ExposureDedupe {
    /// Allocated on the first exposure: most clients never see a marked flag, and a full
    /// cache's table is a few MiB.
    seen: OnceLock<Mutex<LruCache<u64, Instant>>>,
    hasher: foldhash::quality::RandomState,
    capacity: NonZeroUsize,
    ttl: Duration,
}

impl ExposureDedupe {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        ExposureDedupe {
            seen: OnceLock::new(),
            hasher: foldhash::quality::RandomState::default(),
            capacity: NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            ttl,
        }
    }

    /// True if the triple was not reported within the TTL (and records it as reported now).
    pub(crate) fn first(&self, flag: &str, variant: &str, context_key: &str, now: Instant) -> bool {
        // `str`'s `Hash` writes a terminator, so ("ab", "c") and ("a", "bc") differ.
        let key = self.hasher.hash_one((flag, variant, context_key));
        let seen = self
            .seen
            .get_or_init(|| Mutex::new(LruCache::new(self.capacity)));
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
        let dedupe = ExposureDedupe::new(10, Duration::from_secs(60));
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
        let dedupe = ExposureDedupe::new(3, DEDUPE_TTL);
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
    fn a_full_default_sized_cache_still_dedupes_its_newest_keys() {
        let dedupe = ExposureDedupe::new(DEDUPE_CAPACITY, DEDUPE_TTL);
        let now = Instant::now();
        for i in 0..DEDUPE_CAPACITY + 1 {
            assert!(dedupe.first("f", "on", &format!("user-{i}"), now));
        }
        assert!(!dedupe.first("f", "on", &format!("user-{DEDUPE_CAPACITY}"), now));
        assert!(
            dedupe.first("f", "on", "user-0", now),
            "the oldest was evicted"
        );
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
