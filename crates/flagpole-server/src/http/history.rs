//! `/api/v1/projects/{project}/flags/{flag}/versions|diff|revert`: flag history.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, ApiQuery, required_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::diff::{Change, diff};
use crate::domain::flag_write::FlagView;
use crate::domain::history as domain;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version::{self, FlagVersionState, VersionSummary};
use crate::store::project::Project;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(diff_versions))
        .routes(routes!(revert))
}

/// Paging of the version list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Page size (default 50, at most 200).
    limit: Option<i64>,
    /// Entries skipped.
    offset: Option<i64>,
}

/// The two versions to compare.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DiffQuery {
    /// The older version.
    from: i64,
    /// The newer version.
    to: i64,
}

/// One version with its full state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct VersionDetail {
    #[serde(flatten)]
    summary: VersionSummary,
    /// The flag as it was.
    state: FlagVersionState,
}

/// What changed between two versions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct VersionDiff {
    from: i64,
    to: i64,
    /// Leaf changes, in document order.
    changes: Vec<Change>,
}

/// Body of revert.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revert {
    /// The version whose state to restore.
    to_version: i64,
    /// The current version (or send `If-Match`). Required.
    version: Option<i64>,
    comment: Option<String>,
}

async fn flag_row(
    state: &AppState,
    actor: &Actor,
    project_key: &str,
    key: &str,
) -> ApiResult<(Project, FlagRow)> {
    let project = project(state, actor, project_key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let row = flag::by_key(&mut conn, project.id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    Ok((project, row))
}

async fn version_state(
    state: &AppState,
    flag_id: i64,
    version: i64,
) -> ApiResult<(VersionSummary, FlagVersionState)> {
    let mut conn = state.db.pool.acquire().await?;
    flag_version::get(&mut conn, flag_id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("flag version", version.to_string()))
}

/// The flag's versions, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/versions", tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"), Page),
    responses((status = 200, body = Vec<VersionSummary>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<VersionSummary>>> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 200"));
    }
    let offset = page.offset.unwrap_or(0).max(0);
    let (_, row) = flag_row(&state, &actor, &project_key, &key).await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(
        flag_version::list(&mut conn, row.id, limit, offset).await?,
    ))
}

/// One version with the flag's full state at that version.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/versions/{version}",
    tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("version" = i64, Path, description = "Flag version")),
    responses((status = 200, body = VersionDetail), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key, version)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<VersionDetail>> {
    let (_, row) = flag_row(&state, &actor, &project_key, &key).await?;
    let (summary, state) = version_state(&state, row.id, version).await?;
    Ok(Json(VersionDetail { summary, state }))
}

/// The changes from version `from` to version `to`, as `{path, before, after}` items.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/diff", tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"), DiffQuery),
    responses((status = 200, body = VersionDiff), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn diff_versions(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> ApiResult<Json<VersionDiff>> {
    let (_, row) = flag_row(&state, &actor, &project_key, &key).await?;
    let (_, before) = version_state(&state, row.id, query.from).await?;
    let (_, after) = version_state(&state, row.id, query.to).await?;
    let changes = diff(
        &serde_json::to_value(&before)?,
        &serde_json::to_value(&after)?,
    );
    Ok(Json(VersionDiff {
        from: query.from,
        to: query.to,
        changes,
    }))
}

/// Restores an earlier version's state as a new version (writer); validated and audited
/// as `flag.revert`.
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags/{flag}/revert", tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("If-Match" = Option<String>, Header, description = "Current flag version")),
    request_body = Revert,
    responses((status = 200, body = FlagView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn revert(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Revert>,
) -> ApiResult<Json<FlagView>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let expected = required_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let view = domain::revert(
        &state,
        &actor,
        &project,
        &key,
        body.to_version,
        expected,
        &comment,
    )
    .await?;
    Ok(Json(view))
}
