//! Owned evaluation details, for callers that keep a result after the flags change.
//!
//! `flagpole-core`'s [`flagpole_core::Detail`] borrows the variant key and rule id from the
//! snapshot, which the SDK swaps whenever a change arrives. The client's `*_detail` calls
//! therefore return [`EvaluationDetail`], whose strings are `Arc<str>` interned once per
//! snapshot in [`Names`]: for boolean and number flags a detail costs reference-count
//! increments, not allocations. (String and JSON values are cloned; use
//! [`crate::Client::flags`] to borrow them instead.)

use std::collections::HashMap;
use std::sync::Arc;

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::{ErrorKind, Reason};

/// Why a value was served: [`flagpole_core::Reason`] without the borrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvaluationReason {
    /// The flag is disabled in this environment; the off variant was served.
    Off,
    /// The context key is individually targeted.
    TargetMatch,
    /// A rule matched.
    RuleMatch {
        /// Position of the rule, from 0.
        rule_index: usize,
        /// The rule's id (empty if it has none).
        rule_id: Arc<str>,
        /// True if the rule served a rollout, so the bucket decided the variant.
        in_rollout: bool,
    },
    /// A prerequisite flag was off or served an unaccepted variant; the off variant was served.
    PrerequisiteFailed {
        /// Key of the prerequisite that failed.
        prerequisite: Arc<str>,
    },
    /// No target or rule matched; the default serve decided.
    Fallthrough {
        /// True if the default serve is a rollout.
        in_rollout: bool,
    },
    /// The caller's default was served.
    Error {
        /// What went wrong ([`ErrorKind::NotReady`] before the first flags).
        error: ErrorKind,
    },
}

impl EvaluationReason {
    /// The reason's wire name (`RULE_MATCH`), as in [`flagpole_core::Reason::code`].
    pub fn code(&self) -> &'static str {
        match self {
            EvaluationReason::Off => "OFF",
            EvaluationReason::TargetMatch => "TARGET_MATCH",
            EvaluationReason::RuleMatch { .. } => "RULE_MATCH",
            EvaluationReason::PrerequisiteFailed { .. } => "PREREQUISITE_FAILED",
            EvaluationReason::Fallthrough { .. } => "FALLTHROUGH",
            EvaluationReason::Error { .. } => "ERROR",
        }
    }

    /// True if a percentage rollout picked the variant.
    pub fn in_rollout(&self) -> bool {
        matches!(
            self,
            EvaluationReason::RuleMatch {
                in_rollout: true,
                ..
            } | EvaluationReason::Fallthrough { in_rollout: true }
        )
    }

    /// The error, if the caller's default was served.
    pub fn error(&self) -> Option<ErrorKind> {
        match self {
            EvaluationReason::Error { error } => Some(*error),
            _ => None,
        }
    }
}

/// A typed evaluation result: value, variant and reason.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationDetail<T> {
    /// The served value, or the caller's default on error.
    pub value: T,
    /// Key of the served variant; `None` when the default was used.
    pub variant: Option<Arc<str>>,
    /// Why.
    pub reason: EvaluationReason,
}

impl<T> EvaluationDetail<T> {
    /// The caller's default with an error reason.
    pub(crate) fn error(value: T, error: ErrorKind) -> Self {
        EvaluationDetail {
            value,
            variant: None,
            reason: EvaluationReason::Error { error },
        }
    }
}

/// The variant keys, rule ids and flag keys of one snapshot as shared strings, so an owned
/// detail is built from reference counts.
#[derive(Default)]
pub(crate) struct Names {
    flags: HashMap<String, FlagNames, foldhash::fast::RandomState>,
}

struct FlagNames {
    key: Arc<str>,
    variants: Box<[Arc<str>]>,
    rules: Box<[Arc<str>]>,
}

impl Names {
    pub(crate) fn new(env: &EnvironmentSnapshot) -> Self {
        let mut flags = HashMap::with_capacity_and_hasher(env.flags.len(), Default::default());
        for state in &env.flags {
            // The first of duplicate keys wins, as in `Snapshot::compile`.
            flags
                .entry(state.flag.key.clone())
                .or_insert_with(|| FlagNames {
                    key: state.flag.key.as_str().into(),
                    variants: state
                        .flag
                        .variants
                        .iter()
                        .map(|v| v.key.as_str().into())
                        .collect(),
                    rules: state
                        .config
                        .rules
                        .iter()
                        .map(|r| r.id.as_str().into())
                        .collect(),
                });
        }
        Names { flags }
    }

    /// Turns a borrowed core detail into an owned one.
    pub(crate) fn detail<T>(
        &self,
        flag_key: &str,
        value: T,
        variant: Option<&str>,
        reason: Reason<'_>,
    ) -> EvaluationDetail<T> {
        let names = self.flags.get(flag_key);
        EvaluationDetail {
            value,
            variant: variant.map(|v| {
                names
                    .and_then(|n| n.variants.iter().find(|k| &***k == v).cloned())
                    // Unreachable for a snapshot compiled from the same environment;
                    // allocating is the correct fallback, not a panic.
                    .unwrap_or_else(|| v.into())
            }),
            reason: self.reason(names, reason),
        }
    }

    fn reason(&self, names: Option<&FlagNames>, reason: Reason<'_>) -> EvaluationReason {
        match reason {
            Reason::Off => EvaluationReason::Off,
            Reason::TargetMatch => EvaluationReason::TargetMatch,
            Reason::RuleMatch {
                rule_index,
                rule_id,
                in_rollout,
            } => EvaluationReason::RuleMatch {
                rule_index,
                rule_id: names
                    .and_then(|n| n.rules.get(rule_index))
                    .filter(|id| &***id == rule_id)
                    .cloned()
                    .unwrap_or_else(|| rule_id.into()),
                in_rollout,
            },
            Reason::PrerequisiteFailed { prerequisite } => EvaluationReason::PrerequisiteFailed {
                prerequisite: self
                    .flags
                    .get(prerequisite)
                    .map(|n| n.key.clone())
                    .unwrap_or_else(|| prerequisite.into()),
            },
            Reason::Fallthrough { in_rollout } => EvaluationReason::Fallthrough { in_rollout },
            Reason::Error { error } => EvaluationReason::Error { error },
        }
    }
}
