//! Alert mapping writes: create, update and delete, each one transaction with its audit
//! entry. A mapping's matchers must compile and the flag and environment its action names
//! must exist in the project (422 naming `action.flag` or `action.environment`), checked
//! inside the transaction that writes it.

use super::{check_version, state_of};
use crate::alerts::{Invalid, MappingAction, Matcher, Rule};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::alert_mapping::{self, AlertMapping, MappingFields};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::project::Project;
use crate::store::{environment, flag};

/// A mapping as a create or update gives it.
#[derive(Debug, Clone)]
pub(crate) struct MappingInput {
    /// The alert's name (`alertname` label).
    pub(crate) alert: String,
    /// Label matchers that must all hold too.
    pub(crate) matchers: Vec<Matcher>,
    /// What to do.
    pub(crate) action: MappingAction,
}

/// Creates a mapping in `project`.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    input: &MappingInput,
) -> ApiResult<AlertMapping> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let fields = checked(&mut tx, project, input).await?;
    let id = alert_mapping::insert(&mut tx, project.id, &fields, &actor.name, now).await?;
    let created = reread(&mut tx, project, id).await?;
    let states = (None, Some(&created));
    audit_mapping(
        &mut tx,
        actor,
        project,
        "alert_mapping.create",
        &created,
        states,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Replaces mapping `id`'s alert, matchers and action, if its version still is `expected`.
/// What it last did is kept.
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
    expected: i64,
    input: &MappingInput,
) -> ApiResult<AlertMapping> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = alert_mapping::by_id(&mut tx, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert_mapping", id.to_string()))?;
    check_version(Some(expected), before.version, || before.clone())?;
    let fields = checked(&mut tx, project, input).await?;
    if !alert_mapping::update(&mut tx, id, expected, &fields, now).await? {
        // Changed between the read and the update.
        let current = reread(&mut tx, project, id).await?;
        return Err(super::stale(expected, current.version, &current));
    }
    let after = reread(&mut tx, project, id).await?;
    let states = (Some(&before), Some(&after));
    audit_mapping(
        &mut tx,
        actor,
        project,
        "alert_mapping.update",
        &after,
        states,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes mapping `id`; the firings it acted on stay in the audit log.
pub(crate) async fn delete(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
) -> ApiResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = alert_mapping::by_id(&mut tx, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert_mapping", id.to_string()))?;
    alert_mapping::delete(&mut tx, id).await?;
    let states = (Some(&before), None);
    audit_mapping(
        &mut tx,
        actor,
        project,
        "alert_mapping.delete",
        &before,
        states,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The input checked against the project: every problem at once, each naming its field.
async fn checked<'a>(
    conn: &mut Conn,
    project: &Project,
    input: &'a MappingInput,
) -> ApiResult<MappingFields<'a>> {
    let mut problems: Vec<Invalid> = Rule::compile(&input.alert, &input.matchers)
        .err()
        .unwrap_or_default();
    let (flag_id, environment_id) = match &input.action {
        MappingAction::FlagOff { flag, environment } => {
            let found = flag::by_key(&mut *conn, project.id, flag).await?;
            let flag_id = match found {
                None => {
                    problems.push(Invalid::new(
                        "action.flag",
                        format!("no flag `{flag}` in project `{}`", project.key),
                    ));
                    None
                }
                Some(f) if f.archived_at.is_some() => {
                    problems.push(Invalid::new(
                        "action.flag",
                        format!("flag `{flag}` is archived; unarchive it first"),
                    ));
                    None
                }
                Some(f) => Some(f.id),
            };
            let env = environment::by_key(&mut *conn, project.id, environment).await?;
            if env.is_none() {
                problems.push(Invalid::new(
                    "action.environment",
                    format!(
                        "no environment `{environment}` in project `{}`",
                        project.key
                    ),
                ));
            }
            (flag_id, env.map(|e| e.id))
        }
    };
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(MappingFields {
        alert: input.alert.as_str(),
        matchers: &input.matchers,
        action: input.action.kind(),
        flag_id,
        environment_id,
    })
}

/// A 422 listing every problem.
pub(crate) fn invalid(problems: Vec<Invalid>) -> ApiError {
    ApiError::Validation(
        problems
            .into_iter()
            .map(|p| FieldError {
                field: p.field,
                message: p.message,
            })
            .collect(),
    )
}

async fn reread(conn: &mut Conn, project: &Project, id: i64) -> ApiResult<AlertMapping> {
    alert_mapping::by_id(conn, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert_mapping", id.to_string()))
}

/// Audits a change to `subject`; `(before, after)` as in `domain::audit_account`.
async fn audit_mapping(
    conn: &mut Conn,
    actor: &Actor,
    project: &Project,
    action: &str,
    subject: &AlertMapping,
    (before, after): (Option<&AlertMapping>, Option<&AlertMapping>),
    now: i64,
) -> ApiResult<()> {
    let key = subject.id.to_string();
    let event = NewAuditEvent {
        actor: &actor.name,
        action,
        project_id: Some(project.id),
        environment_id: subject.environment_id,
        resource_type: "alert_mapping",
        resource_key: &key,
        before: before.map(state_of).transpose()?,
        after: after.map(state_of).transpose()?,
        comment: "",
    };
    Ok(audit::insert(conn, &event, now).await?)
}
