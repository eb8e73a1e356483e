//! Project writes. A new project starts with development, staging and production.

use serde::Serialize;
use serde_json::json;

use super::{MAX_NAME_LEN, MAX_TEXT_LEN, Problems, check_version, stale};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment::{self, Environment, NewEnvironment};
use crate::store::project::{self, Project, ProjectFields};

/// A project with its environments (GET one, create).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ProjectDetail {
    /// The project.
    #[serde(flatten)]
    pub project: Project,
    /// Its environments in display order.
    pub environments: Vec<Environment>,
}

/// The environments every new project gets: (key, name, critical). Production is created
/// as production, so it is critical from the start.
const DEFAULT_ENVIRONMENTS: [(&str, &str, bool); 3] = [
    ("development", "Development", false),
    ("staging", "Staging", false),
    ("production", "Production", true),
];

/// Creates a project and its default environments.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    key: &str,
    name: Option<&str>,
    description: &str,
) -> ApiResult<ProjectDetail> {
    let name = name.filter(|n| !n.trim().is_empty()).unwrap_or(key);
    let mut problems = Problems::default();
    problems.url_key("key", key);
    problems.text("name", name, MAX_NAME_LEN);
    problems.text("description", description, MAX_TEXT_LEN);
    problems.finish()?;

    let mut tx = state.db.begin_write().await?;
    if project::by_key(&mut tx, key).await?.is_some() {
        return Err(ApiError::Conflict {
            message: format!("project `{key}` already exists"),
            current: None,
        });
    }
    let now = now_ms();
    let project = project::insert(&mut tx, key, name, description, now).await?;
    let mut environments = Vec::new();
    for (order, (env_key, env_name, critical)) in DEFAULT_ENVIRONMENTS.into_iter().enumerate() {
        let new = NewEnvironment {
            key: env_key,
            name: env_name,
            description: "",
            sort_order: order as i64,
            critical,
        };
        environments.push(environment::insert(&mut tx, project.id, &new, now).await?);
    }
    let detail = ProjectDetail {
        project,
        environments,
    };
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "project.create",
            project_id: Some(detail.project.id),
            resource_type: "project",
            resource_key: key,
            after: Some(serde_json::to_value(&detail)?),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(detail)
}

/// Changes to a project's own fields; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProjectPatch<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) description: Option<&'a str>,
    pub(crate) require_critical_comment: Option<bool>,
}

/// Changes a project's name, description and comment requirement. Turning the
/// requirement off is itself a change that needs a comment while it is on.
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    key: &str,
    expected: i64,
    patch: ProjectPatch<'_>,
    comment: &str,
) -> ApiResult<Project> {
    let ProjectPatch {
        name,
        description,
        require_critical_comment,
    } = patch;
    let mut problems = Problems::default();
    if let Some(name) = name {
        if name.trim().is_empty() {
            problems.push("name", "must not be empty");
        }
        problems.text("name", name, MAX_NAME_LEN);
    }
    if let Some(d) = description {
        problems.text("description", d, MAX_TEXT_LEN);
    }
    problems.finish()?;

    let mut tx = state.db.begin_write().await?;
    let before = project::by_key(&mut tx, key)
        .await?
        .ok_or_else(|| ApiError::not_found("project", key))?;
    check_version(Some(expected), before.version, || before.clone())?;
    let require = require_critical_comment.unwrap_or(before.require_critical_comment);
    if before.require_critical_comment && !require && comment.is_empty() {
        return Err(ApiError::invalid(
            "comment",
            "required: turning off the comment requirement needs a comment",
        ));
    }
    let now = now_ms();
    let fields = ProjectFields {
        name: name.unwrap_or(&before.name),
        description: description.unwrap_or(&before.description),
        require_critical_comment: require,
    };
    let after = project::update(&mut tx, before.id, expected, &fields, now)
        .await?
        .ok_or_else(|| stale(expected, before.version, &before))?;
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "project.update",
            project_id: Some(after.id),
            resource_type: "project",
            resource_key: key,
            before: Some(serde_json::to_value(&before)?),
            after: Some(serde_json::to_value(&after)?),
            comment,
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a project and everything in it. The audit entry outlives it (its project
/// reference becomes null), keyed by the project key.
pub(crate) async fn delete(
    state: &AppState,
    actor: &Actor,
    key: &str,
    expected: Option<i64>,
) -> ApiResult<()> {
    let mut tx = state.db.begin_write().await?;
    let before = project::by_key(&mut tx, key)
        .await?
        .ok_or_else(|| ApiError::not_found("project", key))?;
    check_version(expected, before.version, || before.clone())?;
    project::delete(&mut tx, before.id).await?;
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "project.delete",
            resource_type: "project",
            resource_key: key,
            before: Some(json!(before)),
            ..Default::default()
        },
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
