//! API tokens for automation: list, create (the token is shown once), revoke.
//! Global resources: only unscoped admins manage them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::users::project_id_of;
use crate::auth::{API_TOKEN_PREFIX, Actor, Role, display_prefix, generate_secret, hash_secret};
use crate::db::now_ms;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// An API token as listed (never the token itself: only its hash is stored).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiToken {
    /// Id, used in URLs.
    id: i64,
    /// What it is for.
    name: String,
    /// The first characters of the token, to tell tokens apart.
    prefix: String,
    /// What it may do.
    role: Role,
    /// Key of the one project it is limited to; `null` for all projects.
    project: Option<String>,
    /// Who created it (`user:…`, `token:…`, `system:bootstrap`).
    created_by: String,
    /// Creation time (epoch ms).
    created_at: i64,
    /// Last use (epoch ms; updated at most once a minute).
    last_used_at: Option<i64>,
    /// When it was revoked; a revoked token authenticates nothing.
    revoked_at: Option<i64>,
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

type TokenRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

const SELECT_TOKEN: &str = "select t.id, t.name, t.prefix, t.role, p.key, t.created_by, t.created_at, \
     t.last_used_at, t.revoked_at from api_token t left join project p on p.id = t.project_id";

fn to_token(row: TokenRow) -> ApiResult<ApiToken> {
    let (id, name, prefix, role, project, created_by, created_at, last_used_at, revoked_at) = row;
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("api_token {id} has role {role}")))?;
    Ok(ApiToken {
        id,
        name,
        prefix,
        role,
        project,
        created_by,
        created_at,
        last_used_at,
        revoked_at,
    })
}

async fn load_token(conn: &mut Conn, id: i64) -> ApiResult<Option<ApiToken>> {
    let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_TOKEN} where t.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(to_token).transpose()
}

/// Lists API tokens, revoked ones included.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = ApiTokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tokens(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<ApiTokenList>> {
    actor.require(Role::Admin, None)?;
    let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_TOKEN} order by t.id desc"
    )))
    .fetch_all(&state.db.pool)
    .await?;
    let items = rows.into_iter().map(to_token).collect::<ApiResult<_>>()?;
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
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    let token = generate_secret(API_TOKEN_PREFIX);
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let project_id = project_id_of(&mut tx, body.project.as_deref(), "project").await?;
    let id: i64 = sqlx::query_scalar(
        "insert into api_token (name, token_hash, prefix, role, project_id, created_by, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(name)
    .bind(hash_secret(&token))
    .bind(display_prefix(&token))
    .bind(body.role.as_str())
    .bind(project_id)
    .bind(&actor.name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let info = load_token(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("inserted token missing")))?;
    record(&mut tx, &actor, "api_token.create", None, Some(&info), now).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CreatedApiToken { token, info })))
}

async fn record(
    conn: &mut Conn,
    actor: &Actor,
    action: &str,
    before: Option<&ApiToken>,
    after: Option<&ApiToken>,
    now: i64,
) -> ApiResult<()> {
    let key = before
        .or(after)
        .map(|t| t.id.to_string())
        .unwrap_or_default();
    let event = NewAuditEvent {
        actor: &actor.name,
        action,
        resource_type: "api_token",
        resource_key: &key,
        before: before.map(serde_json::to_value).transpose()?,
        after: after.map(serde_json::to_value).transpose()?,
        ..NewAuditEvent::default()
    };
    audit::insert(conn, &event, now).await
}

/// Revokes a token: from now on it authenticates nothing. Revoking twice is a no-op.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    actor.require(Role::Admin, None)?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = load_token(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("api_token", id.to_string()))?;
    if before.revoked_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    sqlx::query("update api_token set revoked_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = load_token(&mut tx, id).await?;
    record(
        &mut tx,
        &actor,
        "api_token.revoke",
        Some(&before),
        after.as_ref(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
