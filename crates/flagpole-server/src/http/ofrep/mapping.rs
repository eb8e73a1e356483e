//! Flagpole's evaluation outcome in OFREP terms (the table in the parent module's docs),
//! and the evaluation counter.

use axum::http::StatusCode;
use flagpole_core::{Context, ErrorKind, Evaluation, Reason};

use super::Failure;
use super::wire::{EvaluationSuccess, FlagMetadata};
use crate::snapshots::CompiledEnvironment;

pub(super) enum Outcome<'s> {
    Success(EvaluationSuccess<'s>),
    Failure(Failure),
}

/// Labels of `flag_evaluations_total{reason}`: the OFREP reasons plus `ERROR`.
pub(super) const REASON_LABELS: [&str; 6] = [
    "STATIC",
    "TARGETING_MATCH",
    "SPLIT",
    "DISABLED",
    "DEFAULT",
    "ERROR",
];

impl Outcome<'_> {
    pub(super) fn reason_index(&self) -> usize {
        let label = self.reason_label();
        REASON_LABELS
            .iter()
            .position(|l| *l == label)
            .unwrap_or(REASON_LABELS.len() - 1)
    }

    pub(super) fn reason_label(&self) -> &'static str {
        match self {
            Outcome::Success(s) => s.reason,
            Outcome::Failure(_) => "ERROR",
        }
    }
}

/// Adds `n` evaluations with reason `REASON_LABELS[reason_index]`. The counters are looked
/// up once: the macro hashes name and label into the registry on every call, on every
/// OFREP request.
pub(super) fn count(reason_index: usize, n: u64) {
    static COUNTERS: std::sync::OnceLock<[metrics::Counter; REASON_LABELS.len()]> =
        std::sync::OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        REASON_LABELS.map(|reason| metrics::counter!("flag_evaluations_total", "reason" => reason))
    });
    counters[reason_index.min(REASON_LABELS.len() - 1)].increment(n);
}

/// Translates a Flagpole evaluation into OFREP terms (see the module docs for the table).
pub(super) fn map_evaluation<'s>(
    env: &'s CompiledEnvironment,
    key: &'s str,
    ctx: &Context,
    evaluation: Evaluation<'s>,
) -> Outcome<'s> {
    let mut metadata = FlagMetadata {
        flagpole_reason: evaluation.reason.code(),
        rule_id: None,
        rule_index: None,
        prerequisite: None,
        environment_version: env.data_version,
    };
    let reason = match evaluation.reason {
        Reason::Off => "DISABLED",
        Reason::TargetMatch => "TARGETING_MATCH",
        Reason::RuleMatch {
            rule_index,
            rule_id,
            in_rollout,
        } => {
            metadata.rule_index = Some(rule_index);
            metadata.rule_id = (!rule_id.is_empty()).then_some(rule_id);
            if in_rollout {
                "SPLIT"
            } else {
                "TARGETING_MATCH"
            }
        }
        Reason::Fallthrough { in_rollout: true } => "SPLIT",
        Reason::Fallthrough { in_rollout: false } if env.static_flags.contains(key) => "STATIC",
        Reason::Fallthrough { in_rollout: false } => "DEFAULT",
        Reason::PrerequisiteFailed { prerequisite } => {
            metadata.prerequisite = Some(prerequisite);
            "DEFAULT"
        }
        Reason::Error { error } => return Outcome::Failure(failure_of(error, key, ctx)),
    };
    match (evaluation.value, evaluation.variant) {
        (Some(value), Some(variant)) => Outcome::Success(EvaluationSuccess {
            key,
            value,
            reason,
            variant,
            metadata,
        }),
        // flagpole-core gives a value and variant with every non-error reason.
        _ => Outcome::Failure(Failure::general()),
    }
}

fn failure_of(error: ErrorKind, key: &str, ctx: &Context) -> Failure {
    match error {
        ErrorKind::FlagNotFound => Failure::new(
            StatusCode::NOT_FOUND,
            "FLAG_NOT_FOUND",
            format!("flag `{key}` was not found in this environment"),
        ),
        ErrorKind::MissingBucketKey if ctx.key.is_empty() => Failure::new(
            StatusCode::BAD_REQUEST,
            "TARGETING_KEY_MISSING",
            format!("flag `{key}` serves a percentage rollout, which needs a targetingKey"),
        ),
        ErrorKind::MissingBucketKey => Failure::new(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
            format!(
                "flag `{key}` serves a percentage rollout bucketed by an attribute the context lacks"
            ),
        ),
        ErrorKind::InvalidFlag => Failure::new(
            StatusCode::BAD_REQUEST,
            "PARSE_ERROR",
            format!("flag `{key}` has a configuration this server cannot evaluate"),
        ),
        ErrorKind::WrongType | ErrorKind::NotReady => Failure::general(),
    }
}
