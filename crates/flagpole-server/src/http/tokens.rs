//! API tokens for automation: list, create (the token is shown once), revoke.
//! Global resources: only unscoped admins manage them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath};
use crate::auth::{Actor, Role, Scope};
use crate::domain::api_tokens;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::api_token::{self, ApiToken};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A list of tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiTokenList {
    /// Tokens, newest first.
    items: Vec<ApiToken>,
}

/// A just-created token: the only time the token itself is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedApiToken {
    /// The token (`fp_api_…`). Store it now; it cannot be shown again.
    token: String,
    /// The token's description.
    #[serde(flatten)]
    info: ApiToken,
}

/// Lists API tokens, revoked ones included.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = ApiTokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tokens(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<ApiTokenList>> {
    actor.require(Role::Admin, None)?;
    let mut conn = state.db.pool.acquire().await?;
    let items = api_token::list(&mut conn).await?;
    Ok(Json(ApiTokenList { items }))
}

/// A new token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiToken {
    /// What it is for (1 to 100 characters).
    name: String,
    /// `reader`, `writer` or `admin`.
    role: Role,
    /// Key of the project to limit it to; absent or `null` for all projects.
    #[serde(default)]
    project: Option<String>,
    /// The one action to limit it to; absent or `null` for the whole API as its role
    /// allows. An `alerts:trigger` token (`fp_alert_…`) may only call the Alertmanager
    /// webhook, which needs the writer role in the project.
    #[serde(default)]
    scope: Option<Scope>,
}

/// Creates a token and returns it, once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("api_token" = []), ("session" = [])), request_body = CreateApiToken,
    responses((status = 201, body = CreatedApiToken), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    actor.require(Role::Admin, None)?;
    let (token, info) = api_tokens::create(
        &state,
        &actor,
        &body.name,
        body.role,
        body.project.as_deref(),
        body.scope,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedApiToken { token, info })))
}

/// Revokes a token: from now on it authenticates nothing. Revoking twice is a no-op.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    actor.require(Role::Admin, None)?;
    api_tokens::revoke(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
