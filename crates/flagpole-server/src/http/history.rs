//! `/api/v1/projects/{project}/flags/{flag}/versions|diff|revert`: flag history, and
//! reverting the whole flag or one environment after a preview.

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
use crate::domain::history::{self as domain, HistoryEntry, RevertPreview, RevertTarget};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::environment::{self, Environment};
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version::{self, FlagVersionState, VersionSummary};
use crate::store::project::Project;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(diff_versions))
        .routes(routes!(revert))
        .routes(routes!(revert_preview))
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
    /// Restore only this environment's config, leaving the definition and every other
    /// environment as they are. Absent: the whole flag.
    environment: Option<String>,
    /// The current version (or send `If-Match`). Required.
    version: Option<i64>,
    /// Recorded in the audit log and the history; required when the revert touches a
    /// critical environment and the project requires comments.
    comment: Option<String>,
}

/// What to preview.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PreviewQuery {
    /// The version whose state would be restored.
    to_version: i64,
    /// Only this environment (absent: the whole flag).
    environment: Option<String>,
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

/// The flag's versions, newest first, each with the environments it changed.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/versions", tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"), Page),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 200"));
    }
    let offset = page.offset.unwrap_or(0).max(0);
    let (_, row) = flag_row(&state, &actor, &project_key, &key).await?;
    let mut conn = state.db.pool.acquire().await?;
    // One more than the page: the last entry is compared with the version before it.
    let rows = flag_version::list(&mut conn, row.id, limit + 1, offset).await?;
    Ok(Json(domain::entries(rows, limit as usize)))
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

/// Environment `key` of `project`, for a one-environment revert or its preview.
async fn revert_environment(
    state: &AppState,
    project: &Project,
    key: Option<&str>,
) -> ApiResult<Option<Environment>> {
    let Some(key) = key else {
        return Ok(None);
    };
    let mut conn = state.db.pool.acquire().await?;
    let env = environment::by_key(&mut conn, project.id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("environment", key))?;
    Ok(Some(env))
}

/// What a revert would change, per environment, without writing anything: the diff of
/// each changed environment's config, whether the flag would be on there before and
/// after, a plain-words warning for each critical environment turned on or off, and the
/// problems that would make the revert fail.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/revert/preview",
    tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"), PreviewQuery),
    responses((status = 200, body = RevertPreview), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn revert_preview(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<PreviewQuery>,
) -> ApiResult<Json<RevertPreview>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    let env = revert_environment(&state, &project, query.environment.as_deref()).await?;
    let target = RevertTarget {
        to_version: query.to_version,
        environment: env.as_ref(),
    };
    Ok(Json(domain::preview(&state, &project, &key, target).await?))
}

/// Restores an earlier version's state as a new version (writer): the whole flag, or with
/// `environment` only that environment's config. Validated and audited as `flag.revert`.
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags/{flag}/revert", tag = "history",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("If-Match" = Option<String>, Header, description = "Current flag version")),
    request_body = Revert,
    responses((status = 200, body = FlagView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "Invalid; `field` is e.g. `environments.production.off_variant` or `comment`", body = ErrorBody)))]
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
    let env = revert_environment(&state, &project, body.environment.as_deref()).await?;
    let target = RevertTarget {
        to_version: body.to_version,
        environment: env.as_ref(),
    };
    let view = domain::revert(&state, &actor, &project, &key, target, expected, &comment).await?;
    Ok(Json(view))
}
