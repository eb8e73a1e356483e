//! SDK keys of an environment: list, create (the key is shown once), revoke. Managed by
//! admins of the environment's project.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project_env;
use super::extract::{ApiJson, ApiPath};
use crate::auth::{Actor, Role};
use crate::domain::sdk_keys;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::sdk_key::{self, SdkKey};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sdk_keys, create_sdk_key))
        .routes(routes!(revoke_sdk_key))
}

/// A list of SDK keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SdkKeyList {
    /// Keys, newest first.
    items: Vec<SdkKey>,
}

/// A just-created SDK key: the only time the key itself is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedSdkKey {
    /// The key (`fp_sdk_…`). Store it now; it cannot be shown again.
    key: String,
    /// The key's description.
    #[serde(flatten)]
    info: SdkKey,
}

/// A new SDK key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSdkKey {
    /// What it is for (1 to 100 characters).
    name: String,
}

/// Lists the environment's SDK keys, revoked ones included.
#[utoipa::path(get, path = "/api/v1/projects/{project}/environments/{env}/sdk-keys", tag = "sdk-keys", security(("api_token" = []), ("session" = [])),
    params(("project" = String, Path, description = "Project key"), ("env" = String, Path, description = "Environment key")),
    responses((status = 200, body = SdkKeyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_sdk_keys(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project, env)): ApiPath<(String, String)>,
) -> ApiResult<Json<SdkKeyList>> {
    let (_, env) = project_env(&state, &actor, &project, &env, Role::Admin).await?;
    let mut conn = state.db.pool.acquire().await?;
    let mut items = sdk_key::list(&mut conn, env.id, &env.key).await?;
    // Uses this replica noted but has not written yet are newer than the stored ones.
    for key in &mut items {
        if let Some(at) = state.auth.sdk_seen.pending(key.id) {
            key.last_seen_at = Some(key.last_seen_at.map_or(at, |stored| stored.max(at)));
        }
    }
    Ok(Json(SdkKeyList { items }))
}

/// Creates an SDK key for the environment and returns it, once.
#[utoipa::path(post, path = "/api/v1/projects/{project}/environments/{env}/sdk-keys", tag = "sdk-keys", security(("api_token" = []), ("session" = [])),
    request_body = CreateSdkKey,
    params(("project" = String, Path, description = "Project key"), ("env" = String, Path, description = "Environment key")),
    responses((status = 201, body = CreatedSdkKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_sdk_key(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project, env)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CreateSdkKey>,
) -> ApiResult<(StatusCode, Json<CreatedSdkKey>)> {
    let (_, env) = project_env(&state, &actor, &project, &env, Role::Admin).await?;
    let (key, info) = sdk_keys::create(&state, &actor, &env, &body.name).await?;
    Ok((StatusCode::CREATED, Json(CreatedSdkKey { key, info })))
}

/// Revokes an SDK key. This replica stops accepting it at once, others within 30 s; its
/// open streams are closed (1008) within a heartbeat interval after that.
/// Revoking twice is a no-op.
#[utoipa::path(delete, path = "/api/v1/projects/{project}/environments/{env}/sdk-keys/{id}", tag = "sdk-keys", security(("api_token" = []), ("session" = [])),
    params(("project" = String, Path, description = "Project key"), ("env" = String, Path, description = "Environment key"),
        ("id" = i64, Path, description = "SDK key id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn revoke_sdk_key(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project, env, id)): ApiPath<(String, String, i64)>,
) -> ApiResult<StatusCode> {
    let (_, env) = project_env(&state, &actor, &project, &env, Role::Admin).await?;
    sdk_keys::revoke(&state, &actor, &env, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
