//! Acting on Alertmanager's notifications: every firing alert that one of the project's
//! mappings matches is acted on once per (mapping, fingerprint, `startsAt`), each in a
//! transaction of its own that claims the firing, acts, records what came of it on the
//! mapping and in the audit log, and commits together.
//!
//! The kill switch goes through `configs::apply`, the write a person's toggle makes, inside
//! a savepoint: a flag already off (or archived) rolls back the data-version bump it
//! made, and the claim and the record still commit, so the firing is not acted on again.
//! A database failure rolls everything back and answers 5xx, and Alertmanager retries.

use serde::Serialize;
use sqlx::Connection as _;

use super::configs::{self, Applied, ConfigChange};
use super::state_of;
use crate::alerts::{FiringAlert, FiringRecord, MappingAction, Outcome, Rule};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::alert_mapping::{self, AlertMapping};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment;
use crate::store::project::Project;

/// What became of one firing alert for one mapping that matched it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AlertHandled)]
pub(crate) struct Handled {
    /// The mapping's id.
    pub(crate) mapping: i64,
    /// The alert's name.
    pub(crate) alert: String,
    /// Its fingerprint.
    pub(crate) fingerprint: String,
    /// What came of it.
    pub(crate) outcome: Handling,
    /// The same in words.
    pub(crate) message: String,
}

/// What came of a firing: an [`Outcome`], or nothing because it was acted on before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AlertHandling)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Handling {
    /// The flag was on and is now off.
    TurnedOff,
    /// The flag was already off.
    AlreadyOff,
    /// The action could not be done; the message says why.
    Failed,
    /// This firing was acted on before (a repeated notification): nothing done.
    Duplicate,
}

impl From<Outcome> for Handling {
    fn from(outcome: Outcome) -> Handling {
        match outcome {
            Outcome::TurnedOff => Handling::TurnedOff,
            Outcome::AlreadyOff => Handling::AlreadyOff,
            Outcome::Failed => Handling::Failed,
        }
    }
}

/// Acts on `firing` (the firing alerts of one notification from `receiver`) as the
/// project's mappings say. `caller` is the `alerts:trigger` token.
pub(crate) async fn act(
    state: &AppState,
    caller: &Actor,
    project: &Project,
    receiver: &str,
    firing: &[FiringAlert],
) -> ApiResult<Vec<Handled>> {
    if firing.is_empty() {
        return Ok(Vec::new());
    }
    let mappings = {
        let mut conn = state.db.pool.acquire().await?;
        alert_mapping::list(&mut conn, project.id).await?
    };
    let rules: Vec<(AlertMapping, Rule)> = mappings
        .into_iter()
        .filter_map(|m| match Rule::compile(&m.alert, &m.matchers) {
            Ok(rule) => Some((m, rule)),
            Err(problems) => {
                // Checked when written; only a bug or a hand-edited row gets here.
                tracing::error!(
                    mapping = m.id,
                    ?problems,
                    "stored alert mapping does not compile"
                );
                None
            }
        })
        .collect();
    // Audit entries and flag history name both: which Alertmanager receiver, and which
    // credential it used.
    let actor = Actor {
        name: format!("alertmanager:{receiver} via {}", caller.name),
        ..caller.clone()
    };
    let mut handled = Vec::new();
    for alert in firing {
        for (mapping, rule) in &rules {
            if rule.matches(alert) {
                handled.push(act_once(state, &actor, project, mapping, alert, receiver).await?);
            }
        }
    }
    Ok(handled)
}

/// One mapping's action on one firing, in one transaction.
async fn act_once(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    mapping: &AlertMapping,
    alert: &FiringAlert,
    receiver: &str,
) -> ApiResult<Handled> {
    let now = now_ms();
    let handled = |outcome: Handling, message: String| Handled {
        mapping: mapping.id,
        alert: alert.name.clone(),
        fingerprint: alert.fingerprint.clone(),
        outcome,
        message,
    };
    let mut tx = state.db.begin_write().await?;
    let first = alert_mapping::claim_firing(
        &mut tx,
        mapping.id,
        &alert.fingerprint,
        alert.starts_at,
        now,
    )
    .await?;
    if !first {
        metrics::counter!("alert_actions_total", "outcome" => "duplicate").increment(1);
        let message = format!(
            "already acted on this firing (fingerprint {}, started {})",
            alert.fingerprint, alert.starts_at_text
        );
        return Ok(handled(Handling::Duplicate, message));
    }
    let comment = comment(mapping, alert, receiver);
    let (outcome, message, applied) = match &mapping.action {
        MappingAction::FlagOff { flag, environment } => {
            flag_off(&mut tx, state, actor, project, flag, environment, &comment).await?
        }
    };
    let record = FiringRecord {
        at: now,
        alert: alert.name.clone(),
        labels: alert.labels.clone(),
        fingerprint: alert.fingerprint.clone(),
        starts_at: alert.starts_at,
        receiver: receiver.to_owned(),
        outcome,
        message: message.clone(),
    };
    alert_mapping::set_last_fired(&mut tx, mapping.id, &record).await?;
    let key = mapping.id.to_string();
    let event = NewAuditEvent {
        actor: &actor.name,
        action: "alert_mapping.fire",
        project_id: Some(project.id),
        environment_id: mapping.environment_id,
        resource_type: "alert_mapping",
        resource_key: &key,
        before: None,
        after: Some(state_of(&record)?),
        comment: &comment,
    };
    audit::insert(&mut tx, &event, now).await?;
    tx.commit().await?;
    if let Some(applied) = applied {
        applied.publish(state);
    }
    let label = match outcome {
        Outcome::TurnedOff => "turned_off",
        Outcome::AlreadyOff => "already_off",
        Outcome::Failed => "failed",
    };
    metrics::counter!("alert_actions_total", "outcome" => label).increment(1);
    tracing::info!(
        mapping = mapping.id,
        alert = %alert.name,
        fingerprint = %alert.fingerprint,
        outcome = label,
        "{message}"
    );
    Ok(handled(outcome.into(), message))
}

/// Turns `flag` off in `environment` through the same write as a person's toggle, in a
/// savepoint of `tx`: kept if it changed the flag, rolled back otherwise. Only a database
/// failure is an error; anything the write refuses (an archived flag) is an outcome.
async fn flag_off(
    tx: &mut Conn,
    state: &AppState,
    actor: &Actor,
    project: &Project,
    flag: &str,
    environment: &str,
    comment: &str,
) -> ApiResult<(Outcome, String, Option<Applied>)> {
    let Some(env) = environment::by_key(&mut *tx, project.id, environment).await? else {
        let message = format!("environment `{environment}` no longer exists");
        return Ok((Outcome::Failed, message, None));
    };
    let mut savepoint = tx.begin().await?;
    let change = ConfigChange::Toggle(false);
    let written = configs::apply(
        &mut savepoint,
        &state.push,
        actor,
        project,
        flag,
        &env,
        None,
        change,
        comment,
    )
    .await;
    let critical = if env.critical { " (critical)" } else { "" };
    match written {
        Ok(applied) if applied.changed() => {
            savepoint.commit().await?;
            let message = format!("turned `{flag}` off in `{environment}`{critical}");
            Ok((Outcome::TurnedOff, message, Some(applied)))
        }
        Ok(_) => {
            savepoint.rollback().await?;
            let message = format!("`{flag}` was already off in `{environment}`{critical}");
            Ok((Outcome::AlreadyOff, message, None))
        }
        Err(err @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => Err(err),
        Err(refused) => {
            savepoint.rollback().await?;
            let message = format!("could not turn `{flag}` off in `{environment}`: {refused}");
            Ok((Outcome::Failed, message, None))
        }
    }
}

/// The comment recorded with the action: which alert, since when, with which labels. It
/// also satisfies a project's requirement of a comment on critical environments: the
/// alert is the reason, and nobody is there to write one.
fn comment(mapping: &AlertMapping, alert: &FiringAlert, receiver: &str) -> String {
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let text = format!(
        "alert `{}` firing since {} (fingerprint {}, Alertmanager receiver `{receiver}`, \
         alert mapping {}); labels: {}",
        alert.name,
        alert.starts_at_text,
        alert.fingerprint,
        mapping.id,
        if labels.is_empty() {
            "none".to_owned()
        } else {
            labels.join(", ")
        }
    );
    // Comments are bounded (`domain::MAX_TEXT_LEN`); labels come from outside.
    text.chars().take(super::MAX_TEXT_LEN).collect()
}
