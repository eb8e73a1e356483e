//! `/api/v1/projects/{project}/environments`: a project's environments.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::{project, project_env};
use super::extract::{ApiJson, ApiPath, MaybeJson, expected_version, required_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::environments::{self as domain, EnvPatch, NewEnv};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::environment::{self as store, Environment};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(
            get_environment,
            update_environment,
            delete_environment
        ))
}

/// Body of `POST .../environments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEnvironment {
    /// Unique key in the project, a URL segment: ASCII letters, digits, `-` and `_`.
    pub(crate) key: String,
    /// Display name; defaults to the key.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub(crate) description: String,
    /// Display order; defaults to after the last environment.
    #[serde(default)]
    pub(crate) sort_order: Option<i64>,
    /// Changes need a review (diff and comment); off by default. A project's own
    /// `production` environment is created critical.
    #[serde(default)]
    pub(crate) critical: bool,
    /// Recorded in the audit log.
    #[serde(default)]
    pub(crate) comment: Option<String>,
}

/// Body of `PATCH .../environments/{env}`: absent fields are kept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateEnvironment {
    /// New name.
    pub(crate) name: Option<String>,
    /// New description.
    pub(crate) description: Option<String>,
    /// New display order.
    pub(crate) sort_order: Option<i64>,
    /// Whether changes need a review (diff and comment).
    pub(crate) critical: Option<bool>,
    /// The version being edited (or send `If-Match`).
    pub(crate) version: Option<i64>,
    /// Recorded in the audit log; required for a critical environment when the project
    /// requires comments.
    pub(crate) comment: Option<String>,
}

/// Body of delete (optional).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteEnvironment {
    /// Expected version (or send `If-Match`).
    version: Option<i64>,
    /// Recorded in the audit log; required for a critical environment when the project
    /// requires comments.
    comment: Option<String>,
}

/// The project's environments in display order.
#[utoipa::path(get, path = "/api/v1/projects/{project}/environments", tag = "environments",
    params(("project" = String, Path, description = "Project key")),
    responses((status = 200, body = Vec<Environment>), (status = 404, body = ErrorBody)))]
async fn list_environments(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Vec<Environment>>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(store::list(&mut conn, project.id).await?))
}

/// Creates an environment; every existing flag gets a disabled default config in it (admin).
#[utoipa::path(post, path = "/api/v1/projects/{project}/environments", tag = "environments",
    params(("project" = String, Path, description = "Project key")),
    request_body = CreateEnvironment,
    responses((status = 201, body = Environment), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_environment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateEnvironment>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    let project = project(&state, &actor, &key, Role::Admin).await?;
    let input = NewEnv {
        key: body.key,
        name: body.name,
        description: body.description,
        sort_order: body.sort_order,
        critical: body.critical,
        comment: comment(body.comment.as_deref())?,
    };
    let env = domain::create(&state, &actor, &project, input).await?;
    Ok((StatusCode::CREATED, Json(env)))
}

/// One environment, with its current `data_version`.
#[utoipa::path(get, path = "/api/v1/projects/{project}/environments/{env}", tag = "environments",
    params(("project" = String, Path, description = "Project key"),
        ("env" = String, Path, description = "Environment key")),
    responses((status = 200, body = Environment), (status = 404, body = ErrorBody)))]
async fn get_environment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, env)): ApiPath<(String, String)>,
) -> ApiResult<Json<Environment>> {
    let (_, env) = project_env(&state, &actor, &project_key, &env, Role::Reader).await?;
    Ok(Json(env))
}

/// Changes name, description, display order or whether it is critical (admin).
#[utoipa::path(patch, path = "/api/v1/projects/{project}/environments/{env}", tag = "environments",
    params(("project" = String, Path, description = "Project key"),
        ("env" = String, Path, description = "Environment key"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateEnvironment,
    responses((status = 200, body = Environment), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_environment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, env)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateEnvironment>,
) -> ApiResult<Json<Environment>> {
    let project = project(&state, &actor, &project_key, Role::Admin).await?;
    let expected = required_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let patch = EnvPatch {
        name: body.name,
        description: body.description,
        sort_order: body.sort_order,
        critical: body.critical,
    };
    let env = domain::update(&state, &actor, &project, &env, expected, patch, &comment).await?;
    Ok(Json(env))
}

/// Deletes an environment with its flag configs and SDK keys (admin).
#[utoipa::path(delete, path = "/api/v1/projects/{project}/environments/{env}", tag = "environments",
    params(("project" = String, Path, description = "Project key"),
        ("env" = String, Path, description = "Environment key"),
        ("If-Match" = Option<String>, Header, description = "Expected version (optional)")),
    request_body(content = Option<DeleteEnvironment>),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete_environment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, env)): ApiPath<(String, String)>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<DeleteEnvironment>,
) -> ApiResult<StatusCode> {
    let project = project(&state, &actor, &project_key, Role::Admin).await?;
    let (version, comment_text) = body.map(|b| (b.version, b.comment)).unwrap_or_default();
    let expected = expected_version(&headers, version)?;
    let comment = comment(comment_text.as_deref())?;
    domain::delete(&state, &actor, &project, &env, expected, &comment).await?;
    // Cached SDK keys of the deleted environment(s) must stop working now, not when
    // their cache entries expire.
    state.auth.sdk_keys.invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}
