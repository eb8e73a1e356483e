//! Bounds on what a client can make the server store under names it chooses: distinct
//! unknown flag keys and distinct applications per environment per UTC day. Beyond them,
//! counts are added up under [`OTHER`] and exposures of unknown flags are dropped (and
//! reported as dropped), so a buggy client cannot create unbounded rows.
//!
//! Kept in the writer's memory, per replica: a restart or another replica admits its own
//! quota, which bounds rows by quota × replicas × restarts rather than by what a client
//! sends. Counted per environment, the unit rows are keyed by.

use std::collections::{HashMap, HashSet};

use crate::store::ingest::{AppKey, DAY_MS};

/// The flag key (or application name) that stands for everything over the cap; it cannot
/// be a flag key (parentheses are not allowed in keys).
pub(crate) const OTHER: &str = "(other)";

/// Distinct applications (name, version, SDK) an environment may add per day.
const APPS_PER_DAY: usize = 1000;

/// The day's admissions.
pub(crate) struct Caps {
    unknown_flags_per_day: usize,
    day: i64,
    unknown_flags: HashMap<i64, HashSet<String>>,
    apps: HashMap<i64, HashSet<AppKey>>,
}

impl Caps {
    /// At most `unknown_flags_per_day` unknown flag keys per environment per day.
    pub(crate) fn new(unknown_flags_per_day: usize) -> Caps {
        Caps {
            unknown_flags_per_day,
            day: 0,
            unknown_flags: HashMap::new(),
            apps: HashMap::new(),
        }
    }

    /// Starts a new day's quota when `now` is in another day.
    pub(crate) fn at(&mut self, now: i64) {
        let day = now.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.unknown_flags.clear();
            self.apps.clear();
        }
    }

    /// True if unknown flag key `key` may have rows of its own in `environment_id`.
    pub(crate) fn admit_unknown_flag(&mut self, environment_id: i64, key: &str) -> bool {
        let seen = self.unknown_flags.entry(environment_id).or_default();
        if seen.contains(key) {
            return true;
        }
        if seen.len() >= self.unknown_flags_per_day {
            return false;
        }
        seen.insert(key.to_owned());
        true
    }

    /// True if the application may have a row of its own.
    pub(crate) fn admit_app(&mut self, app: &AppKey) -> bool {
        let seen = self.apps.entry(app.environment_id).or_default();
        if seen.contains(app) {
            return true;
        }
        if seen.len() >= APPS_PER_DAY {
            return false;
        }
        seen.insert(app.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_admitted_up_to_the_cap_per_environment_and_day() {
        let mut caps = Caps::new(2);
        caps.at(DAY_MS);
        assert!(caps.admit_unknown_flag(1, "a"));
        assert!(caps.admit_unknown_flag(1, "b"));
        assert!(
            caps.admit_unknown_flag(1, "a"),
            "an admitted key stays admitted"
        );
        assert!(!caps.admit_unknown_flag(1, "c"));
        assert!(
            caps.admit_unknown_flag(2, "c"),
            "another environment has its own quota"
        );
        caps.at(2 * DAY_MS);
        assert!(caps.admit_unknown_flag(1, "c"), "a new day, a new quota");
    }
}
