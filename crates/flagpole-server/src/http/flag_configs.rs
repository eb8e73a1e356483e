//! `/api/v1/projects/{project}/flags/{flag}/environments/{env}`: one environment's
//! configuration of a flag, and its kill switch.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use flagpole_core::model::FlagConfig;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project_env;
use super::extract::{ApiJson, ApiPath, expected_version, required_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::configs::{self as domain, ConfigChange};
use crate::domain::flag_write::FlagView;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_config))
        .routes(routes!(toggle))
}

/// Body of the config write. Error paths point into it: `config.rules[0].serve.variant`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutConfig {
    /// The whole `FlagConfig`: enabled, off_variant, targets, prerequisites, rules,
    /// default_serve.
    #[schema(value_type = Object)]
    config: FlagConfig,
    /// The flag version being edited (or send `If-Match`). Required.
    version: Option<i64>,
    /// Recorded in the audit log and history.
    comment: Option<String>,
}

/// Body of the kill switch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Toggle {
    /// On or off.
    enabled: bool,
    /// Optional: checked if given.
    version: Option<i64>,
    comment: Option<String>,
}

/// Replaces the flag's configuration in one environment (writer). Validated by compiling
/// the environment with the change; other flags it would break reject it too.
#[utoipa::path(put, path = "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
    tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("env" = String, Path, description = "Environment key"),
        ("If-Match" = Option<String>, Header, description = "Expected flag version")),
    request_body = PutConfig,
    responses((status = 200, body = FlagView), (status = 404, body = ErrorBody),
        (status = 409, description = "Stale version; `current` holds the flag", body = ErrorBody),
        (status = 422, description = "Invalid; `field` is e.g. `config.rules[0].serve.variant`", body = ErrorBody)))]
async fn put_config(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag, env)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PutConfig>,
) -> ApiResult<Json<FlagView>> {
    let (project, env) = project_env(&state, &actor, &project_key, &env, Role::Writer).await?;
    let expected = required_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let change = ConfigChange::Replace(body.config);
    let view = domain::write(
        &state,
        &actor,
        &project,
        &flag,
        &env,
        Some(expected),
        change,
        &comment,
    )
    .await?;
    Ok(Json(view))
}

/// Turns the flag on or off in one environment (writer).
///
/// The version is optional here on purpose: this is the kill switch, and during an incident
/// it must work from a page loaded an hour ago. It only flips `enabled`, so it cannot
/// overwrite anyone's targeting; if a version is sent it is still checked.
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags/{flag}/environments/{env}/toggle",
    tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("env" = String, Path, description = "Environment key")),
    request_body = Toggle,
    responses((status = 200, body = FlagView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn toggle(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag, env)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Toggle>,
) -> ApiResult<Json<FlagView>> {
    let (project, env) = project_env(&state, &actor, &project_key, &env, Role::Writer).await?;
    let expected = expected_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let change = ConfigChange::Toggle(body.enabled);
    let view = domain::write(
        &state, &actor, &project, &flag, &env, expected, change, &comment,
    )
    .await?;
    Ok(Json(view))
}
