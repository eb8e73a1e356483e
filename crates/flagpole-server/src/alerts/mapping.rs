//! What an alert mapping does when its alert fires, and what it did the last time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a mapping does. One kind so far; the rollback of a release plan (issue 17) will be
/// the second, with its own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertAction)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum MappingAction {
    /// Turn flag `flag` off in environment `environment`: the kill switch, through the
    /// same write as a person's toggle, pushed to SDKs the same way. Allowed in critical
    /// environments without anyone confirming (nobody is awake to), with the alert
    /// recorded as the comment.
    FlagOff {
        /// The flag's key.
        flag: String,
        /// The environment's key.
        environment: String,
    },
}

impl MappingAction {
    /// The stored name of the kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            MappingAction::FlagOff { .. } => "flag_off",
        }
    }
}

/// What acting on a firing came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertOutcome)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The flag was on and is now off.
    TurnedOff,
    /// The flag was already off: nothing written but this record.
    AlreadyOff,
    /// The action could not be done (the flag is archived, say); `message` says why. The
    /// firing is not retried: its next notification is a repeat.
    Failed,
}

/// One firing a mapping acted on: kept as the mapping's `last_fired`, and recorded in the
/// audit log (`alert_mapping.fire`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertFiring)]
pub(crate) struct FiringRecord {
    /// When Flagpole acted (epoch ms).
    pub(crate) at: i64,
    /// The alert's name.
    pub(crate) alert: String,
    /// The alert's labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// Alertmanager's fingerprint of the alert.
    pub(crate) fingerprint: String,
    /// When the alert started firing (epoch ms, its `startsAt`).
    pub(crate) starts_at: i64,
    /// The Alertmanager receiver that sent it.
    pub(crate) receiver: String,
    /// What came of it.
    pub(crate) outcome: Outcome,
    /// The same in words: "turned `new-checkout` off in `production`".
    pub(crate) message: String,
}
