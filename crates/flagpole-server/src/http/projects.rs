//! `/api/v1/projects`: projects and their lifecycle.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, expected_version, required_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::projects::{self as domain, ProjectDetail, ProjectPatch};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::environment;
use crate::store::project::{self as store, Project};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
}

/// Body of `POST /api/v1/projects`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProject {
    /// Unique key, a URL segment: ASCII letters, digits, `-` and `_`.
    pub(crate) key: String,
    /// Display name; defaults to the key.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub(crate) description: String,
}

/// Body of `PATCH /api/v1/projects/{project}`: absent fields are kept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateProject {
    /// New name.
    pub(crate) name: Option<String>,
    /// New description.
    pub(crate) description: Option<String>,
    /// Whether every write touching a critical environment must carry a comment.
    pub(crate) require_critical_comment: Option<bool>,
    /// The version being edited (or send `If-Match`).
    pub(crate) version: Option<i64>,
    /// Recorded in the audit log; required to turn the comment requirement off.
    pub(crate) comment: Option<String>,
}

/// Projects the caller can see.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)))]
async fn list_projects(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<Project>>> {
    actor.require(Role::Reader, actor.project_id)?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(store::list(&mut conn, actor.project_id).await?))
}

/// Creates a project with development, staging and production environments (admin of all
/// projects only).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectDetail), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectDetail>)> {
    actor.require(Role::Admin, None)?;
    let detail = domain::create(
        &state,
        &actor,
        &body.key,
        body.name.as_deref(),
        &body.description,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// A project with its environments.
#[utoipa::path(get, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project key")),
    responses((status = 200, body = ProjectDetail), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<ProjectDetail>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let environments = environment::list(&mut conn, project.id).await?;
    Ok(Json(ProjectDetail {
        project,
        environments,
    }))
}

/// Renames or redescribes a project, or sets whether writes touching a critical environment
/// need a comment (admin).
#[utoipa::path(patch, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project key"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateProject,
    responses((status = 200, body = Project), (status = 404, body = ErrorBody),
        (status = 409, description = "Stale version; `current` holds the stored project", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_project(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    project(&state, &actor, &key, Role::Admin).await?;
    let expected = required_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let patch = ProjectPatch {
        name: body.name.as_deref(),
        description: body.description.as_deref(),
        require_critical_comment: body.require_critical_comment,
    };
    let updated = domain::update(&state, &actor, &key, expected, patch, &comment).await?;
    Ok(Json(updated))
}

/// Deletes a project with its environments, flags, segments, tokens and SDK keys (admin).
#[utoipa::path(delete, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project key"),
        ("If-Match" = Option<String>, Header, description = "Expected version (optional)")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_project(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    project(&state, &actor, &key, Role::Admin).await?;
    let expected = expected_version(&headers, None)?;
    domain::delete(&state, &actor, &key, expected).await?;
    // Cached SDK keys of the deleted environment(s) must stop working now, not when
    // their cache entries expire.
    state.auth.sdk_keys.invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}
