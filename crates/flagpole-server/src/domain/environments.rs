//! Environment writes. A new environment gets a config for every flag of the project
//! (disabled, serving the flag's default variants) so every flag exists everywhere.

use serde_json::json;

use super::flag_write::default_config;
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, Problems, check_version, stale};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment::{self, Environment, EnvironmentFields, NewEnvironment};
use crate::store::flag;
use crate::store::project::Project;
use crate::store::project_data::ProjectData;

/// Fields of a new environment.
#[derive(Debug, Clone)]
pub(crate) struct NewEnv {
    pub(crate) key: String,
    pub(crate) name: Option<String>,
    pub(crate) description: String,
    /// Defaults to after the last environment.
    pub(crate) sort_order: Option<i64>,
    /// Whether changes need a review; off unless asked for.
    pub(crate) critical: bool,
    /// Recorded in the audit log.
    pub(crate) comment: String,
}

/// Creates an environment with a default config for every flag (archived ones included,
/// so unarchiving needs no special case).
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    input: NewEnv,
) -> ApiResult<Environment> {
    let name = input
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| input.key.clone());
    let mut problems = Problems::default();
    problems.url_key("key", &input.key);
    problems.text("name", &name, MAX_NAME_LEN);
    problems.text("description", &input.description, MAX_TEXT_LEN);
    problems.finish()?;

    let mut tx = state.db.begin_write().await?;
    let data = ProjectData::load(&mut tx, project.id).await?;
    if data.environments.iter().any(|e| e.key == input.key) {
        return Err(ApiError::Conflict {
            message: format!("environment `{}` already exists", input.key),
            current: None,
        });
    }
    let sort_order = input.sort_order.unwrap_or_else(|| {
        data.environments
            .iter()
            .map(|e| e.sort_order + 1)
            .max()
            .unwrap_or(0)
    });
    let now = now_ms();
    let new = NewEnvironment {
        key: &input.key,
        name: &name,
        description: &input.description,
        sort_order,
        critical: input.critical,
    };
    let env = environment::insert(&mut tx, project.id, &new, now).await?;
    for f in &data.flags {
        flag::put_config(&mut tx, f.id, env.id, &default_config(&f.definition)).await?;
    }
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "environment.create",
            project_id: Some(project.id),
            environment_id: Some(env.id),
            resource_type: "environment",
            resource_key: &env.key,
            after: Some(json!(env)),
            comment: &input.comment,
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(env)
}

/// Changes of an environment's own fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvPatch {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) sort_order: Option<i64>,
    pub(crate) critical: Option<bool>,
}

/// Updates name, description, display order and whether the environment is critical.
/// Changing a critical environment (making it not critical included) is a write that
/// touches it, so the project's comment requirement applies.
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    expected: i64,
    patch: EnvPatch,
    comment: &str,
) -> ApiResult<Environment> {
    let mut problems = Problems::default();
    if let Some(name) = &patch.name {
        if name.trim().is_empty() {
            problems.push("name", "must not be empty");
        }
        problems.text("name", name, MAX_NAME_LEN);
    }
    if let Some(d) = &patch.description {
        problems.text("description", d, MAX_TEXT_LEN);
    }
    problems.finish()?;

    let mut tx = state.db.begin_write().await?;
    let before = environment::by_key(&mut tx, project.id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("environment", key))?;
    check_version(Some(expected), before.version, || before.clone())?;
    super::critical::require_comment(project, [&before], comment)?;
    let now = now_ms();
    let fields = EnvironmentFields {
        name: patch.name.as_deref().unwrap_or(&before.name),
        description: patch.description.as_deref().unwrap_or(&before.description),
        sort_order: patch.sort_order.unwrap_or(before.sort_order),
        critical: patch.critical.unwrap_or(before.critical),
    };
    let after = environment::update(&mut tx, before.id, expected, &fields, now)
        .await?
        .ok_or_else(|| stale(expected, before.version, &before))?;
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "environment.update",
            project_id: Some(project.id),
            environment_id: Some(after.id),
            resource_type: "environment",
            resource_key: key,
            before: Some(json!(before)),
            after: Some(json!(after)),
            comment,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes an environment with its configs and SDK keys.
pub(crate) async fn delete(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    expected: Option<i64>,
    comment: &str,
) -> ApiResult<()> {
    let mut tx = state.db.begin_write().await?;
    let before = environment::by_key(&mut tx, project.id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("environment", key))?;
    check_version(expected, before.version, || before.clone())?;
    super::critical::require_comment(project, [&before], comment)?;
    environment::delete(&mut tx, before.id).await?;
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "environment.delete",
            project_id: Some(project.id),
            resource_type: "environment",
            resource_key: key,
            before: Some(json!(before)),
            comment,
            ..Default::default()
        },
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
