//! Scheduled changes: a flag's config change in one environment for a later time
//! (`/api/v1/projects/{project}/flags/{flag}/environments/{env}/scheduled-changes`), the
//! flag's and the project's lists, cancelling, and rebasing a conflict.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use flagpole_core::model::FlagConfig;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::{project, project_env};
use super::extract::{ApiJson, ApiPath, ApiQuery, MaybeJson, expected_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::scheduled_changes::{self as domain, ScheduledChangeView, parse_time};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::scheduled_change::{ScheduledEdit, ScheduledState};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schedule))
        .routes(routes!(flag_list))
        .routes(routes!(project_list))
        .routes(routes!(get_one))
        .routes(routes!(cancel))
        .routes(routes!(rebase))
}

/// Body of a scheduled change: when, and the body of the edit it stands for (`config`, as
/// `PUT .../environments/{env}` takes it, or `enabled`, as `.../toggle` takes it).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleBody {
    /// When to apply it: RFC 3339 with an offset, in the future. Stored in UTC.
    at: String,
    /// The whole config to write then. Error paths point into it, as for the edit.
    #[schema(value_type = Option<Object>)]
    config: Option<FlagConfig>,
    /// Or: turn the flag on or off then.
    enabled: Option<bool>,
    /// The flag version being edited (or send `If-Match`); checked if given. The change
    /// is based on the current version either way, and not applied if the flag changes
    /// before it is due.
    version: Option<i64>,
    /// Recorded with the change and with the write.
    comment: Option<String>,
}

/// Filter of the lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only changes in this state: `scheduled`, `applied`, `conflict`, `cancelled`,
    /// `failed`.
    state: Option<String>,
    /// At most this many (1 to 1000; default 200).
    limit: Option<i64>,
}

/// Body of a rebase.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RebaseBody {
    /// The flag version the person reviewed; checked if given.
    version: Option<i64>,
    /// A new due time (RFC 3339, in the future); without it the change keeps its time,
    /// and one already past is applied at once.
    at: Option<String>,
}

fn filter(query: &ListQuery) -> ApiResult<(Option<ScheduledState>, i64)> {
    let state = match &query.state {
        None => None,
        Some(name) => Some(ScheduledState::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "state",
                "expected scheduled, applied, conflict, cancelled or failed",
            )
        })?),
    };
    let limit = query.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "expected 1 to 1000"));
    }
    Ok((state, limit))
}

/// Schedules a change of the flag's config in one environment (writer). Checked now as
/// the edit would be (422 naming the field, 409 on a stale `version`); applied at `at` by
/// `system:scheduler` if the flag is still at the version it was scheduled on, otherwise
/// marked `conflict`.
#[utoipa::path(post,
    path = "/api/v1/projects/{project}/flags/{flag}/environments/{env}/scheduled-changes",
    tag = "scheduled-changes",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("env" = String, Path, description = "Environment key"),
        ("If-Match" = Option<String>, Header, description = "Expected flag version")),
    request_body = ScheduleBody,
    responses((status = 201, body = ScheduledChangeView), (status = 404, body = ErrorBody),
        (status = 409, description = "Stale version", body = ErrorBody),
        (status = 422, description = "Invalid: `at` in the past, or the change (`config.…`, `enabled`)", body = ErrorBody)))]
async fn schedule(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag, env)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<(StatusCode, Json<ScheduledChangeView>)> {
    let (project, env) = project_env(&state, &actor, &project_key, &env, Role::Writer).await?;
    let at = parse_time("at", &body.at)?;
    let expected = expected_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let edit = match (body.config, body.enabled) {
        (Some(config), None) => ScheduledEdit::Config { config },
        (None, Some(enabled)) => ScheduledEdit::Toggle { enabled },
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "enabled",
                "give either `config` or `enabled`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "config",
                "give the change: `config` (the whole config) or `enabled`",
            ));
        }
    };
    let view = domain::schedule(
        &state, &actor, &project, &flag, &env, expected, edit, at, &comment,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The flag's scheduled changes in every environment, by due time (reader).
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/scheduled-changes",
    tag = "scheduled-changes",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"), ListQuery),
    responses((status = 200, body = Vec<ScheduledChangeView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn flag_list(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<ScheduledChangeView>>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    let (filter_state, limit) = filter(&query)?;
    let list = domain::list(&state, &project, Some(&flag), filter_state, limit).await?;
    Ok(Json(list))
}

/// The project's scheduled changes, by due time (reader).
#[utoipa::path(get, path = "/api/v1/projects/{project}/scheduled-changes",
    tag = "scheduled-changes",
    params(("project" = String, Path, description = "Project key"), ListQuery),
    responses((status = 200, body = Vec<ScheduledChangeView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn project_list(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(project_key): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<ScheduledChangeView>>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    let (filter_state, limit) = filter(&query)?;
    let list = domain::list(&state, &project, None, filter_state, limit).await?;
    Ok(Json(list))
}

/// One scheduled change (reader).
#[utoipa::path(get, path = "/api/v1/projects/{project}/scheduled-changes/{change}",
    tag = "scheduled-changes",
    params(("project" = String, Path, description = "Project key"),
        ("change" = i64, Path, description = "Scheduled change id")),
    responses((status = 200, body = ScheduledChangeView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<ScheduledChangeView>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    Ok(Json(domain::get(&state, &project, id).await?))
}

/// Cancels a change that is waiting or in conflict (writer); 409 for one already
/// applied, cancelled or failed.
#[utoipa::path(post, path = "/api/v1/projects/{project}/scheduled-changes/{change}/cancel",
    tag = "scheduled-changes",
    params(("project" = String, Path, description = "Project key"),
        ("change" = i64, Path, description = "Scheduled change id")),
    responses((status = 200, body = ScheduledChangeView), (status = 404, body = ErrorBody),
        (status = 409, description = "Not waiting or in conflict", body = ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<ScheduledChangeView>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    Ok(Json(domain::cancel(&state, &actor, &project, id).await?))
}

/// Resolves a conflict (or a failure) by re-basing the change on the flag's current
/// version (writer): checked again as a new edit, then scheduled again.
#[utoipa::path(post, path = "/api/v1/projects/{project}/scheduled-changes/{change}/rebase",
    tag = "scheduled-changes",
    params(("project" = String, Path, description = "Project key"),
        ("change" = i64, Path, description = "Scheduled change id")),
    request_body(content = Option<RebaseBody>),
    responses((status = 200, body = ScheduledChangeView), (status = 404, body = ErrorBody),
        (status = 409, description = "Not in conflict or failed, or a stale version", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn rebase(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, id)): ApiPath<(String, i64)>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<RebaseBody>,
) -> ApiResult<Json<ScheduledChangeView>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let (version, at) = match body {
        Some(RebaseBody { version, at }) => (version, at),
        None => (None, None),
    };
    let expected = expected_version(&headers, version)?;
    let at = at.map(|at| parse_time("at", &at)).transpose()?;
    let view = domain::rebase(&state, &actor, &project, id, expected, at).await?;
    Ok(Json(view))
}
