//! Scheduled changes (issue 17): a flag's config change in one environment, asked for now
//! and applied later by the scheduler (`crate::scheduler`), each exactly once.
//!
//! Every write here goes through `configs::apply`, the write a person's edit makes:
//! scheduling runs it in a savepoint and rolls it back (so a change that would be refused
//! now is refused now, with the same 4xx naming the same field), and the scheduler runs it
//! for real with the flag's version at scheduling time as the expected version, as actor
//! `system:scheduler`: validation, history, audit and the publication after the commit
//! are the edit's own. A flag changed in between (by anyone, an earlier scheduled change
//! included) is not overwritten: the change is marked `conflict`, and a person rebases it
//! on the flag's current version or cancels it.

use serde::Serialize;
use sqlx::Connection as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::configs::{self, ConfigChange};
use super::{MAX_TEXT_LEN, state_of};
use crate::auth::{Actor, ActorKind, Role};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, current_of};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment::{self, Environment};
use crate::store::flag;
use crate::store::project::{self, Project};
use crate::store::scheduled_change::{
    self, NewScheduledChange, ScheduledChange, ScheduledEdit, ScheduledState,
};

/// Who applies scheduled changes, as audit entries and flag history name it.
pub(crate) const SCHEDULER: &str = "system:scheduler";

/// A scheduled change as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct ScheduledChangeView {
    /// Id, used in URLs.
    pub(crate) id: i64,
    /// Project key.
    pub(crate) project: String,
    /// Flag key.
    pub(crate) flag: String,
    /// Environment key.
    pub(crate) environment: String,
    /// The change: `{"config": FlagConfig}` or `{"enabled": bool}`, as the REST edit
    /// takes it.
    #[schema(value_type = Object)]
    pub(crate) change: ScheduledEdit,
    /// Recorded with the write.
    pub(crate) comment: String,
    /// When it is due (RFC 3339, UTC).
    pub(crate) at: String,
    /// The flag version it applies to; a flag at another version is a conflict.
    pub(crate) base_version: i64,
    /// `scheduled`, `applied`, `conflict`, `cancelled` or `failed`.
    pub(crate) state: ScheduledState,
    /// Who scheduled it.
    pub(crate) scheduled_by: String,
    /// When it was scheduled (RFC 3339).
    pub(crate) created_at: String,
    /// Last change of its state (RFC 3339).
    pub(crate) updated_at: String,
    /// When it was applied (RFC 3339).
    pub(crate) applied_at: Option<String>,
    /// Who applied it (`system:scheduler`).
    pub(crate) applied_by: Option<String>,
    /// The flag version the write made.
    pub(crate) applied_version: Option<i64>,
    /// Who cancelled it.
    pub(crate) cancelled_by: Option<String>,
    /// Why it was not applied (conflict, failed).
    pub(crate) error: Option<String>,
}

impl From<ScheduledChange> for ScheduledChangeView {
    fn from(c: ScheduledChange) -> ScheduledChangeView {
        ScheduledChangeView {
            id: c.id,
            project: c.project_key,
            flag: c.flag_key,
            environment: c.environment_key,
            change: c.edit,
            comment: c.comment,
            at: rfc3339(c.at),
            base_version: c.base_version,
            state: c.state,
            scheduled_by: c.scheduled_by,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            applied_at: c.applied_at.map(rfc3339),
            applied_by: c.applied_by,
            applied_version: c.applied_version,
            cancelled_by: c.cancelled_by,
            error: c.error,
        }
    }
}

/// Epoch milliseconds as RFC 3339 in UTC with milliseconds (`2026-12-24T08:00:00.250Z`).
/// Written by hand: the workspace builds `time` without its formatting feature.
pub(crate) fn rfc3339(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// An RFC 3339 time (any offset) as epoch milliseconds; 422 naming `field` otherwise.
pub(crate) fn parse_time(field: &str, text: &str) -> ApiResult<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ApiError::invalid(
            field,
            "expected an RFC 3339 time with an offset, e.g. 2026-12-24T08:00:00Z",
        )
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::invalid(field, "out of range"))
}

fn in_future(field: &str, at: i64, now: i64) -> ApiResult<()> {
    if at <= now {
        return Err(ApiError::invalid(
            field,
            format!(
                "{} is not in the future (now is {}); a change for now is an edit",
                rfc3339(at),
                rfc3339(now)
            ),
        ));
    }
    Ok(())
}

fn config_change(edit: &ScheduledEdit) -> ConfigChange {
    match edit {
        ScheduledEdit::Config { config } => ConfigChange::Replace(config.clone()),
        ScheduledEdit::Toggle { enabled } => ConfigChange::Toggle(*enabled),
    }
}

/// Runs the edit through `configs::apply` in a savepoint of `tx` and rolls it back: the
/// person's edit, checked now against the flag as it is (validation, version, archived,
/// a critical environment's comment). Returns the flag's current version, on which the
/// change is based.
#[allow(clippy::too_many_arguments)]
async fn check(
    tx: &mut Conn,
    state: &AppState,
    actor: &Actor,
    project: &Project,
    flag_key: &str,
    env: &Environment,
    expected: Option<i64>,
    edit: &ScheduledEdit,
    comment: &str,
) -> ApiResult<i64> {
    let mut savepoint = tx.begin().await?;
    let applied = configs::apply(
        &mut savepoint,
        &state.push,
        actor,
        project,
        flag_key,
        env,
        expected,
        config_change(edit),
        comment,
    )
    .await?;
    savepoint.rollback().await?;
    if !applied.changed() {
        let ScheduledEdit::Toggle { enabled } = edit else {
            return Err(anyhow::anyhow!("a config replace always changes the flag").into());
        };
        // Applied, it would find the flag as it is now (or conflict): it can never do
        // anything.
        let now = if *enabled { "on" } else { "off" };
        return Err(ApiError::invalid(
            "enabled",
            format!("`{flag_key}` is already {now} in `{}`", env.key),
        ));
    }
    // The write made the version after the one it found.
    Ok(applied.view.version - 1)
}

/// Schedules `edit` of `flag_key` in `env` for `at` (epoch ms, in the future). `expected`,
/// if given, is the version the person edited (a stale one is a 409, as for the edit).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn schedule(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    flag_key: &str,
    env: &Environment,
    expected: Option<i64>,
    edit: ScheduledEdit,
    at: i64,
    comment: &str,
) -> ApiResult<ScheduledChangeView> {
    let now = now_ms();
    in_future("at", at, now)?;
    let mut tx = state.db.begin_write().await?;
    let base_version = check(
        &mut tx, state, actor, project, flag_key, env, expected, &edit, comment,
    )
    .await?;
    let flag = flag::by_key(&mut tx, project.id, flag_key)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", flag_key))?;
    let new = NewScheduledChange {
        project_id: project.id,
        environment_id: env.id,
        flag_id: flag.id,
        edit: &edit,
        comment,
        at,
        base_version,
        scheduled_by: &actor.name,
    };
    let id = scheduled_change::insert(&mut tx, &new, now).await?;
    let view = view(&mut tx, project.id, id).await?;
    let ids = (project.id, env.id);
    audit_change(
        &mut tx,
        &actor.name,
        "scheduled_change.create",
        ids,
        &view,
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    state.scheduler.wake();
    Ok(view)
}

async fn view(conn: &mut Conn, project_id: i64, id: i64) -> ApiResult<ScheduledChangeView> {
    scheduled_change::by_id(conn, project_id, id)
        .await?
        .map(ScheduledChangeView::from)
        .ok_or_else(|| anyhow::anyhow!("scheduled change {id} vanished").into())
}

/// Audits a step in a scheduled change's life (`after`, `before` as the API shows it).
#[allow(clippy::too_many_arguments)]
async fn audit_change(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    (project_id, environment_id): (i64, i64),
    after: &ScheduledChangeView,
    before: Option<&ScheduledChangeView>,
    now: i64,
) -> ApiResult<()> {
    let key = after.id.to_string();
    let event = NewAuditEvent {
        actor,
        action,
        project_id: Some(project_id),
        environment_id: Some(environment_id),
        resource_type: "scheduled_change",
        resource_key: &key,
        before: before.map(state_of).transpose()?,
        after: Some(state_of(after)?),
        comment: &after.comment,
    };
    Ok(audit::insert(conn, &event, now).await?)
}

/// The change `id` of the project, locked, in a state `allowed` lets through (409
/// naming its state otherwise).
async fn lock_in_state(
    tx: &mut Conn,
    project: &Project,
    id: i64,
    what: &str,
    allowed: &[ScheduledState],
) -> ApiResult<ScheduledChange> {
    let change = scheduled_change::lock(&mut *tx, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("scheduled change", id.to_string()))?;
    if !allowed.contains(&change.state) {
        let view = ScheduledChangeView::from(change.clone());
        return Err(ApiError::Conflict {
            message: format!(
                "scheduled change {id} is {}; only a change that is {} can be {what}",
                change.state.as_str(),
                allowed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            current: current_of(&view),
        });
    }
    Ok(change)
}

/// Cancels a change that is waiting or in conflict.
pub(crate) async fn cancel(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
) -> ApiResult<ScheduledChangeView> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let allowed = [ScheduledState::Scheduled, ScheduledState::Conflict];
    let before = lock_in_state(&mut tx, project, id, "cancelled", &allowed).await?;
    scheduled_change::cancel(&mut tx, id, &actor.name, now).await?;
    let view = view(&mut tx, project.id, id).await?;
    let ids = (before.project_id, before.environment_id);
    let before = ScheduledChangeView::from(before);
    audit_change(
        &mut tx,
        &actor.name,
        "scheduled_change.cancel",
        ids,
        &view,
        Some(&before),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Resolves a conflict (or a failure) by re-basing the change on the flag's current
/// version, checked again as a new edit. `expected`, if given, is the version the person
/// looked at; `at`, if given, a new due time in the future. Without one, the change keeps
/// its time, and one already past is applied at once.
pub(crate) async fn rebase(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
    expected: Option<i64>,
    at: Option<i64>,
) -> ApiResult<ScheduledChangeView> {
    let now = now_ms();
    if let Some(at) = at {
        in_future("at", at, now)?;
    }
    let mut tx = state.db.begin_write().await?;
    let allowed = [ScheduledState::Conflict, ScheduledState::Failed];
    let before = lock_in_state(&mut tx, project, id, "rebased", &allowed).await?;
    let env = environment::by_key(&mut tx, project.id, &before.environment_key)
        .await?
        .ok_or_else(|| ApiError::not_found("environment", &before.environment_key))?;
    let base_version = check(
        &mut tx,
        state,
        actor,
        project,
        &before.flag_key,
        &env,
        expected,
        &before.edit,
        &before.comment,
    )
    .await?;
    let at = at.unwrap_or(before.at);
    scheduled_change::rebase(&mut tx, id, base_version, at, now).await?;
    let view = view(&mut tx, project.id, id).await?;
    let ids = (before.project_id, before.environment_id);
    let before = ScheduledChangeView::from(before);
    audit_change(
        &mut tx,
        &actor.name,
        "scheduled_change.rebase",
        ids,
        &view,
        Some(&before),
        now,
    )
    .await?;
    tx.commit().await?;
    state.scheduler.wake();
    Ok(view)
}

/// What the scheduler did with one due change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Done {
    /// The change's id.
    pub(crate) id: i64,
    /// `applied`, `conflict` or `failed`.
    pub(crate) state: ScheduledState,
    /// Milliseconds from its due time to the commit.
    pub(crate) late_ms: i64,
}

/// Claims the earliest due change no other replica holds and applies it, in one
/// transaction: the write (as `system:scheduler`, expecting the base version), the
/// change's new state and its audit entry commit together, so it is applied exactly once
/// whoever claims it and whenever a replica dies. `None` when nothing is due. An error
/// is the database's: the transaction rolled back and the change waits for a retry.
pub(crate) async fn apply_due(state: &AppState) -> ApiResult<Option<Done>> {
    let mut tx = state.db.begin_write().await?;
    let Some(change) = scheduled_change::claim_due(&mut tx, now_ms()).await? else {
        return Ok(None);
    };
    let actor = Actor {
        kind: ActorKind::System,
        name: SCHEDULER.to_owned(),
        role: Role::Admin,
        project_id: Some(change.project_id),
        scope: None,
    };
    let project = project::by_key(&mut tx, &change.project_key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("project of scheduled change {} vanished", change.id))?;
    let env = environment::by_key(&mut tx, project.id, &change.environment_key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("environment of scheduled change {} vanished", change.id))?;
    // The history and audit entries of the write say where it came from: the scheduled
    // change, who asked for it and why.
    let comment: String = if change.comment.is_empty() {
        format!("scheduled change {} by {}", change.id, change.scheduled_by)
    } else {
        format!(
            "scheduled change {} by {}: {}",
            change.id, change.scheduled_by, change.comment
        )
    }
    .chars()
    .take(MAX_TEXT_LEN)
    .collect();
    let mut savepoint = tx.begin().await?;
    let written = configs::apply(
        &mut savepoint,
        &state.push,
        &actor,
        &project,
        &change.flag_key,
        &env,
        Some(change.base_version),
        config_change(&change.edit),
        &comment,
    )
    .await;
    let (outcome, applied) = match written {
        Ok(applied) => {
            if applied.changed() {
                savepoint.commit().await?;
            } else {
                savepoint.rollback().await?;
            }
            (Ok(applied.view.version), Some(applied))
        }
        Err(err @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => return Err(err),
        Err(refused) => {
            savepoint.rollback().await?;
            let now_at = flag::by_key(&mut tx, project.id, &change.flag_key)
                .await?
                .map(|f| f.version);
            let outcome = match (&refused, now_at) {
                (ApiError::Conflict { .. }, Some(version)) if version != change.base_version => (
                    ScheduledState::Conflict,
                    format!(
                        "`{}` changed after this was scheduled: it is at version {version}, \
                         the change was made on version {}; rebase or cancel it",
                        change.flag_key, change.base_version
                    ),
                ),
                _ => (ScheduledState::Failed, describe(&refused)),
            };
            (Err(outcome), None)
        }
    };
    let now = now_ms();
    let (state_now, action) = match &outcome {
        Ok(version) => {
            scheduled_change::mark_applied(&mut tx, change.id, SCHEDULER, *version, now).await?;
            (ScheduledState::Applied, "scheduled_change.apply")
        }
        Err((not_applied, message)) => {
            scheduled_change::mark_not_applied(&mut tx, change.id, *not_applied, message, now)
                .await?;
            let action = match not_applied {
                ScheduledState::Conflict => "scheduled_change.conflict",
                _ => "scheduled_change.fail",
            };
            (*not_applied, action)
        }
    };
    let view = view(&mut tx, project.id, change.id).await?;
    let ids = (change.project_id, change.environment_id);
    let before = ScheduledChangeView::from(change.clone());
    audit_change(&mut tx, SCHEDULER, action, ids, &view, Some(&before), now).await?;
    tx.commit().await?;
    if let Some(applied) = applied.filter(|a| a.changed()) {
        applied.publish(state);
    }
    let late_ms = now - change.at;
    metrics::counter!("scheduled_changes_total", "outcome" => state_now.as_str()).increment(1);
    metrics::histogram!("scheduled_change_delay_seconds").record(late_ms as f64 / 1000.0);
    tracing::info!(
        id = change.id,
        flag = %change.flag_key,
        environment = %change.environment_key,
        outcome = state_now.as_str(),
        late_ms,
        "scheduled change"
    );
    Ok(Some(Done {
        id: change.id,
        state: state_now,
        late_ms,
    }))
}

/// A refusal in words, with the fields a validation error names.
fn describe(err: &ApiError) -> String {
    match err {
        ApiError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The changes of a project (of one flag, if given) in `state` if given, by due time.
pub(crate) async fn list(
    state: &AppState,
    project: &Project,
    flag_key: Option<&str>,
    filter_state: Option<ScheduledState>,
    limit: i64,
) -> ApiResult<Vec<ScheduledChangeView>> {
    let mut conn = state.db.pool.acquire().await?;
    let flag_id = match flag_key {
        Some(key) => Some(
            flag::by_key(&mut conn, project.id, key)
                .await?
                .ok_or_else(|| ApiError::not_found("flag", key))?
                .id,
        ),
        None => None,
    };
    let filter = scheduled_change::ListFilter {
        flag_id,
        environment_id: None,
        state: filter_state,
    };
    let rows = scheduled_change::list(&mut conn, project.id, &filter, limit).await?;
    Ok(rows.into_iter().map(ScheduledChangeView::from).collect())
}

/// One change of the project.
pub(crate) async fn get(
    state: &AppState,
    project: &Project,
    id: i64,
) -> ApiResult<ScheduledChangeView> {
    let mut conn = state.db.pool.acquire().await?;
    scheduled_change::by_id(&mut conn, project.id, id)
        .await?
        .map(ScheduledChangeView::from)
        .ok_or_else(|| ApiError::not_found("scheduled change", id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_utc() {
        let ms = parse_time("at", "2026-12-24T09:00:00.250+01:00").unwrap();
        assert_eq!(rfc3339(ms), "2026-12-24T08:00:00.250Z");
        assert!(parse_time("at", "tomorrow").is_err());
        assert!(parse_time("at", "2026-12-24T09:00:00").is_err());
    }
}
