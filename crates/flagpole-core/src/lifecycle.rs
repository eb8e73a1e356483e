//! Flag lifecycle: whether a flag is "potentially stale", and why. A pure decision over what
//! the server's store holds (the flag's type and dates, its configs, when SDKs last
//! evaluated it), so that the rules can be read and tested as a table, apart from SQL and
//! the clock (`now` is an argument).

use std::collections::BTreeSet;

use crate::model::{FlagConfig, Serve};
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A flag unchanged this long that serves one variant to everyone is settled.
pub const SETTLED_AFTER_DAYS: i64 = 14;
/// A flag nothing evaluated this long, in every environment, is unused.
pub const UNUSED_AFTER_DAYS: i64 = 7;

/// What a flag is for, which sets how long it is expected to live.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FlagType {
    /// Ships a change gradually, then goes (40 days).
    #[default]
    Release,
    /// An A/B test (40 days).
    Experiment,
    /// A short-lived operational toggle: a migration, a load shed (7 days).
    Operational,
    /// Turns a feature off in an incident; kept for good.
    KillSwitch,
    /// Grants a feature to some users; kept for good.
    Permission,
}

impl FlagType {
    /// Every type, in the order people pick them.
    pub const ALL: [FlagType; 5] = [
        FlagType::Release,
        FlagType::Experiment,
        FlagType::Operational,
        FlagType::KillSwitch,
        FlagType::Permission,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Release => "release",
            FlagType::Experiment => "experiment",
            FlagType::Operational => "operational",
            FlagType::KillSwitch => "kill_switch",
            FlagType::Permission => "permission",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(s: &str) -> Option<FlagType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The name in words ("kill switch").
    pub fn words(self) -> &'static str {
        match self {
            FlagType::KillSwitch => "kill switch",
            other => other.as_str(),
        }
    }
}

/// Expected lifetime per flag type, in days; `None` is "never expires". A project's
/// setting, defaulting to [`Lifetimes::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetimes {
    /// Release flags (default 40).
    pub release: Option<u32>,
    /// Experiments (default 40).
    pub experiment: Option<u32>,
    /// Operational flags (default 7).
    pub operational: Option<u32>,
    /// Kill switches (default never).
    pub kill_switch: Option<u32>,
    /// Permission flags (default never).
    pub permission: Option<u32>,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            release: Some(40),
            experiment: Some(40),
            operational: Some(7),
            kill_switch: None,
            permission: None,
        }
    }
}

impl Lifetimes {
    /// The expected lifetime of a flag of type `t`, in days.
    pub fn of(&self, t: FlagType) -> Option<u32> {
        match t {
            FlagType::Release => self.release,
            FlagType::Experiment => self.experiment,
            FlagType::Operational => self.operational,
            FlagType::KillSwitch => self.kill_switch,
            FlagType::Permission => self.permission,
        }
    }

    /// These lifetimes with type `t`'s set to `days` (a project's override).
    pub fn with(mut self, t: FlagType, days: Option<u32>) -> Lifetimes {
        *match t {
            FlagType::Release => &mut self.release,
            FlagType::Experiment => &mut self.experiment,
            FlagType::Operational => &mut self.operational,
            FlagType::KillSwitch => &mut self.kill_switch,
            FlagType::Permission => &mut self.permission,
        } = days;
        self
    }
}

/// Whole days from `from` to `to` (rounded down), for messages.
fn days_between(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(DAY_MS)
}

/// Why a flag is potentially stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleCode {
    /// Older than its type's expected lifetime.
    LifetimeExceeded,
    /// Unchanged for 14 days and serving one variant to everyone in every environment
    /// (off counts: it serves its off variant).
    Settled,
    /// Not evaluated for 7 days in any environment.
    NotEvaluated,
}

/// One reason, as a code and in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleReason {
    /// Machine-readable reason.
    pub code: StaleCode,
    /// For people.
    pub message: String,
}

/// A flag's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staleness {
    /// True when any reason applies (never for a permanent or archived flag).
    pub stale: bool,
    /// Every reason that applies, in the order of [`StaleCode`].
    pub reasons: Vec<StaleReason>,
}

/// What the decision reads about one flag.
#[derive(Debug, Clone)]
pub struct FlagFacts<'a> {
    /// What the flag is for.
    pub flag_type: FlagType,
    /// Marked to stay: never stale.
    pub permanent: bool,
    /// Archived: already retired, never stale.
    pub archived: bool,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change to the definition or any environment's config (epoch ms).
    pub updated_at: i64,
    /// One entry per environment: its config and when an SDK last evaluated the flag there
    /// (`None`: never since telemetry started).
    pub environments: &'a [(&'a FlagConfig, Option<i64>)],
}

/// Whether a flag is potentially stale at `now`, and why.
pub fn staleness(facts: &FlagFacts<'_>, lifetimes: &Lifetimes, now: i64) -> Staleness {
    let mut reasons = Vec::new();
    if facts.permanent || facts.archived {
        return Staleness {
            stale: false,
            reasons,
        };
    }
    if let Some(days) = lifetimes.of(facts.flag_type)
        && now - facts.created_at > i64::from(days) * DAY_MS
    {
        reasons.push(StaleReason {
            code: StaleCode::LifetimeExceeded,
            message: format!(
                "lifetime of {days} days for {} flags exceeded (created {} days ago)",
                facts.flag_type.words(),
                days_between(facts.created_at, now)
            ),
        });
    }
    let envs = facts.environments;
    if now - facts.updated_at >= SETTLED_AFTER_DAYS * DAY_MS
        && !envs.is_empty()
        && envs.iter().all(|(config, _)| serves_one_variant(config))
    {
        let all_off = envs.iter().all(|(config, _)| !config.enabled);
        reasons.push(StaleReason {
            code: StaleCode::Settled,
            message: format!(
                "unchanged for {} days and {} in every environment",
                days_between(facts.updated_at, now),
                if all_off {
                    "off"
                } else {
                    "serving one variant to everyone"
                }
            ),
        });
    }
    // A flag never evaluated counts from its creation: a new flag is not unused on day one.
    if !envs.is_empty()
        && envs.iter().all(|(_, last)| {
            now - last.unwrap_or(facts.created_at).max(facts.created_at)
                >= UNUSED_AFTER_DAYS * DAY_MS
        })
    {
        reasons.push(StaleReason {
            code: StaleCode::NotEvaluated,
            message: format!(
                "not evaluated in any environment for the last {UNUSED_AFTER_DAYS} days"
            ),
        });
    }
    Staleness {
        stale: !reasons.is_empty(),
        reasons,
    }
}

/// True when every context gets the same variant: the flag is off, or nothing on it
/// (targets, rules, rollout slices, failing prerequisites) can serve anything but one.
fn serves_one_variant(config: &FlagConfig) -> bool {
    if !config.enabled {
        return true;
    }
    let mut served: BTreeSet<&str> = BTreeSet::new();
    for s in std::iter::once(&config.default_serve).chain(config.rules.iter().map(|r| &r.serve)) {
        match s {
            Serve::Variant(v) => {
                served.insert(v);
            }
            Serve::Rollout(r) => served.extend(
                r.weights
                    .iter()
                    .filter(|w| w.weight > 0)
                    .map(|w| w.variant.as_str()),
            ),
        }
    }
    served.extend(config.targets.iter().map(|t| t.variant.as_str()));
    if !config.prerequisites.is_empty() {
        served.insert(&config.off_variant);
    }
    served.len() <= 1
}

#[cfg(test)]
mod tests {
    use super::StaleCode::*;
    use super::*;
    use crate::model::{Prerequisite, Rollout, Rule, Target, WeightedVariant};

    const NOW: i64 = 1_000 * DAY_MS;

    fn on(serve: Serve) -> FlagConfig {
        FlagConfig {
            enabled: true,
            off_variant: "off".into(),
            targets: vec![],
            prerequisites: vec![],
            rules: vec![],
            default_serve: serve,
        }
    }
    fn variant(v: &str) -> Serve {
        Serve::Variant(v.into())
    }
    fn rollout(weights: &[(&str, u32)]) -> Serve {
        Serve::Rollout(Rollout {
            bucket_by: String::new(),
            weights: weights
                .iter()
                .map(|(v, w)| WeightedVariant {
                    variant: (*v).into(),
                    weight: *w,
                })
                .collect(),
        })
    }
    fn off() -> FlagConfig {
        FlagConfig {
            enabled: false,
            ..on(variant("on"))
        }
    }
    fn with_rule(mut c: FlagConfig, serve: Serve) -> FlagConfig {
        c.rules.push(Rule {
            id: "r1".into(),
            description: String::new(),
            clauses: vec![],
            serve,
        });
        c
    }
    fn with_target(mut c: FlagConfig, v: &str) -> FlagConfig {
        c.targets.push(Target {
            variant: v.into(),
            keys: vec!["user-1".into()],
        });
        c
    }
    fn with_prerequisite(mut c: FlagConfig) -> FlagConfig {
        c.prerequisites.push(Prerequisite {
            flag: "other".into(),
            variants: vec!["on".into()],
        });
        c
    }

    struct Case {
        name: &'static str,
        flag_type: FlagType,
        permanent: bool,
        archived: bool,
        /// Days before NOW.
        created: i64,
        updated: i64,
        /// Config and days since last evaluated (`None`: never).
        envs: Vec<(FlagConfig, Option<i64>)>,
        want: &'static [StaleCode],
    }

    fn case(name: &'static str, created: i64, updated: i64) -> Case {
        Case {
            name,
            flag_type: FlagType::Release,
            permanent: false,
            archived: false,
            created,
            updated,
            envs: vec![(on(rollout(&[("on", 50_000), ("off", 50_000)])), Some(0))],
            want: &[],
        }
    }

    #[test]
    fn decides_staleness_from_type_changes_configs_and_evaluations() {
        let split = || on(rollout(&[("on", 50_000), ("off", 50_000)]));
        let cases = vec![
            Case {
                ..case("fresh release in use", 10, 1)
            },
            Case {
                want: &[LifetimeExceeded],
                ..case("release older than 40 days", 41, 1)
            },
            Case {
                ..case("release exactly 40 days old", 40, 1)
            },
            Case {
                flag_type: FlagType::Experiment,
                want: &[LifetimeExceeded],
                ..case("experiment past 40 days", 45, 1)
            },
            Case {
                flag_type: FlagType::Operational,
                want: &[LifetimeExceeded],
                ..case("operational past 7 days", 8, 1)
            },
            Case {
                flag_type: FlagType::Operational,
                ..case("operational at 6 days", 6, 1)
            },
            Case {
                flag_type: FlagType::KillSwitch,
                ..case("kill switch never expires", 900, 1)
            },
            Case {
                flag_type: FlagType::Permission,
                ..case("permission never expires", 900, 1)
            },
            Case {
                permanent: true,
                envs: vec![(off(), None)],
                ..case("permanent opts out of every reason", 900, 900)
            },
            Case {
                archived: true,
                ..case("archived flags are not stale", 900, 900)
            },
            Case {
                envs: vec![(off(), Some(0)), (off(), Some(0))],
                want: &[Settled],
                ..case("off everywhere, unchanged 14 days", 20, 14)
            },
            Case {
                envs: vec![(off(), Some(0)), (off(), Some(0))],
                ..case("off everywhere but changed 13 days ago", 20, 13)
            },
            Case {
                envs: vec![(on(variant("on")), Some(0)), (off(), Some(0))],
                want: &[Settled],
                ..case("one variant in one env, off in the other", 20, 15)
            },
            Case {
                envs: vec![(on(rollout(&[("on", 100_000), ("off", 0)])), Some(0))],
                want: &[Settled],
                ..case("a 100% rollout serves one variant", 20, 15)
            },
            Case {
                envs: vec![(on(variant("on")), Some(0)), (split(), Some(0))],
                ..case("a split in any environment is not settled", 20, 15)
            },
            Case {
                envs: vec![(with_rule(on(variant("on")), variant("off")), Some(0))],
                ..case("a rule serving another variant", 20, 15)
            },
            Case {
                envs: vec![(with_rule(on(variant("on")), variant("on")), Some(0))],
                want: &[Settled],
                ..case("a rule serving the same variant", 20, 15)
            },
            Case {
                envs: vec![(with_target(on(variant("on")), "off"), Some(0))],
                ..case("a target pinned to another variant", 20, 15)
            },
            Case {
                envs: vec![(with_prerequisite(on(variant("on"))), Some(0))],
                ..case("a prerequisite can serve the off variant", 20, 15)
            },
            Case {
                envs: vec![(split(), Some(7)), (split(), Some(30))],
                want: &[NotEvaluated],
                ..case("not evaluated for 7 days anywhere", 20, 1)
            },
            Case {
                envs: vec![(split(), Some(6)), (split(), Some(30))],
                ..case("evaluated 6 days ago in one environment", 20, 1)
            },
            Case {
                envs: vec![(split(), None), (split(), None)],
                want: &[NotEvaluated],
                ..case("never evaluated, created 8 days ago", 8, 1)
            },
            Case {
                envs: vec![(split(), None), (split(), None)],
                ..case("never evaluated, created 6 days ago", 6, 1)
            },
            Case {
                envs: vec![],
                ..case("no environments: nothing to judge but age", 10, 1)
            },
            Case {
                envs: vec![(off(), None)],
                want: &[LifetimeExceeded, Settled, NotEvaluated],
                ..case("every reason at once", 100, 50)
            },
        ];
        for c in cases {
            let envs: Vec<(&FlagConfig, Option<i64>)> = c
                .envs
                .iter()
                .map(|(config, days)| (config, days.map(|d| NOW - d * DAY_MS)))
                .collect();
            let facts = FlagFacts {
                flag_type: c.flag_type,
                permanent: c.permanent,
                archived: c.archived,
                created_at: NOW - c.created * DAY_MS,
                updated_at: NOW - c.updated * DAY_MS,
                environments: &envs,
            };
            let got = staleness(&facts, &Lifetimes::default(), NOW);
            let codes: Vec<StaleCode> = got.reasons.iter().map(|r| r.code).collect();
            assert_eq!(codes, c.want, "{}", c.name);
            assert_eq!(got.stale, !c.want.is_empty(), "{}", c.name);
        }
    }

    #[test]
    fn project_lifetimes_override_the_defaults() {
        let config = on(variant("on"));
        let envs = [(&config, Some(NOW))];
        let facts = FlagFacts {
            flag_type: FlagType::Release,
            permanent: false,
            archived: false,
            created_at: NOW - 10 * DAY_MS,
            updated_at: NOW,
            environments: &envs,
        };
        let short = Lifetimes {
            release: Some(5),
            ..Lifetimes::default()
        };
        let got = staleness(&facts, &short, NOW);
        assert_eq!(got.reasons[0].code, LifetimeExceeded);
        assert_eq!(
            got.reasons[0].message,
            "lifetime of 5 days for release flags exceeded (created 10 days ago)"
        );
        let never = Lifetimes {
            release: None,
            ..Lifetimes::default()
        };
        assert!(!staleness(&facts, &never, NOW).stale);
        assert!(
            staleness(&facts, &Lifetimes::default(), NOW)
                .reasons
                .is_empty()
        );
    }

    #[test]
    fn messages_say_how_old_and_how_long_unchanged() {
        let config = off();
        let envs = [(&config, None)];
        let facts = FlagFacts {
            flag_type: FlagType::KillSwitch,
            permanent: false,
            archived: false,
            created_at: NOW - 52 * DAY_MS - 5,
            updated_at: NOW - 20 * DAY_MS,
            environments: &envs,
        };
        let lifetimes = Lifetimes::default().with(FlagType::KillSwitch, Some(40));
        assert_eq!(lifetimes.of(FlagType::KillSwitch), Some(40));
        assert_eq!(lifetimes.of(FlagType::Release), Some(40));
        let got = staleness(&facts, &lifetimes, NOW);
        let messages: Vec<&str> = got.reasons.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "lifetime of 40 days for kill switch flags exceeded (created 52 days ago)",
                "unchanged for 20 days and off in every environment",
                "not evaluated in any environment for the last 7 days",
            ]
        );
        let on_one = on(variant("on"));
        let envs = [(&on_one, Some(NOW))];
        let got = staleness(
            &FlagFacts {
                environments: &envs,
                ..facts
            },
            &Lifetimes::default(),
            NOW,
        );
        assert_eq!(
            got.reasons[0].message,
            "unchanged for 20 days and serving one variant to everyone in every environment"
        );
    }

    #[test]
    fn types_round_trip_their_names() {
        for t in FlagType::ALL {
            assert_eq!(FlagType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(FlagType::parse("kill switch"), None);
        assert_eq!(FlagType::KillSwitch.words(), "kill switch");
    }
}
