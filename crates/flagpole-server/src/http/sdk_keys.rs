//! SDK keys of an environment: list, create (the key is shown once), revoke. Managed by
//! admins of the environment's project.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Actor, Role, SDK_KEY_PREFIX, display_prefix, generate_secret, hash_secret};
use crate::db::now_ms;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sdk_keys, create_sdk_key))
        .routes(routes!(revoke_sdk_key))
}

/// An SDK key as listed (never the key itself: only its hash is stored).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct SdkKey {
    /// Id, used in URLs.
    id: i64,
    /// What it is for (e.g. the service using it).
    name: String,
    /// The first characters of the key, to tell keys apart.
    prefix: String,
    /// Key of the environment it reads.
    environment: String,
    /// Who created it.
    created_by: String,
    /// Creation time (epoch ms).
    created_at: i64,
    /// When it was revoked; a revoked key authenticates nothing (other replicas notice
    /// within 30 s).
    revoked_at: Option<i64>,
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

/// The environment named by the path, after checking the actor is an admin of its project.
struct Target {
    project_id: i64,
    environment_id: i64,
    environment_key: String,
}

async fn target(conn: &mut Conn, actor: &Actor, project: &str, env: &str) -> ApiResult<Target> {
    let project_id: i64 = sqlx::query_scalar("select id from project where key = $1")
        .bind(project)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::not_found("project", project))?;
    actor.require(Role::Admin, Some(project_id))?;
    let environment_id: i64 =
        sqlx::query_scalar("select id from environment where project_id = $1 and key = $2")
            .bind(project_id)
            .bind(env)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ApiError::not_found("environment", env))?;
    Ok(Target {
        project_id,
        environment_id,
        environment_key: env.to_owned(),
    })
}

type KeyRow = (i64, String, String, String, i64, Option<i64>);

const SELECT_KEY: &str = "select id, name, prefix, created_by, created_at, revoked_at from sdk_key";

fn to_key(row: KeyRow, environment: &str) -> SdkKey {
    let (id, name, prefix, created_by, created_at, revoked_at) = row;
    SdkKey {
        id,
        name,
        prefix,
        environment: environment.to_owned(),
        created_by,
        created_at,
        revoked_at,
    }
}

/// Lists the environment's SDK keys, revoked ones included.
#[utoipa::path(get, path = "/api/v1/projects/{project}/environments/{env}/sdk-keys", tag = "sdk-keys", security(("api_token" = []), ("session" = [])),
    params(("project" = String, Path, description = "Project key"), ("env" = String, Path, description = "Environment key")),
    responses((status = 200, body = SdkKeyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_sdk_keys(
    State(state): State<AppState>,
    actor: Actor,
    Path((project, env)): Path<(String, String)>,
) -> ApiResult<Json<SdkKeyList>> {
    let mut conn = state.db.pool.acquire().await?;
    let t = target(&mut conn, &actor, &project, &env).await?;
    let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_KEY} where environment_id = $1 order by id desc"
    )))
    .bind(t.environment_id)
    .fetch_all(&mut *conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| to_key(r, &t.environment_key))
        .collect();
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
    Path((project, env)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateSdkKey>,
) -> ApiResult<(StatusCode, Json<CreatedSdkKey>)> {
    let name = body.name.trim();
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let t = target(&mut tx, &actor, &project, &env).await?;
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    let key = generate_secret(SDK_KEY_PREFIX);
    let row: KeyRow = sqlx::query_as(
        "insert into sdk_key (environment_id, name, key_hash, prefix, created_by, created_at) \
         values ($1, $2, $3, $4, $5, $6) returning id, name, prefix, created_by, created_at, revoked_at",
    )
    .bind(t.environment_id)
    .bind(name)
    .bind(hash_secret(&key))
    .bind(display_prefix(&key))
    .bind(&actor.name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let info = to_key(row, &t.environment_key);
    record(
        &mut tx,
        &actor,
        &t,
        "sdk_key.create",
        None,
        Some(&info),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CreatedSdkKey { key, info })))
}

async fn record(
    conn: &mut Conn,
    actor: &Actor,
    t: &Target,
    action: &str,
    before: Option<&SdkKey>,
    after: Option<&SdkKey>,
    now: i64,
) -> ApiResult<()> {
    let key = before
        .or(after)
        .map(|k| k.id.to_string())
        .unwrap_or_default();
    let event = NewAuditEvent {
        actor: &actor.name,
        action,
        project_id: Some(t.project_id),
        environment_id: Some(t.environment_id),
        resource_type: "sdk_key",
        resource_key: &key,
        before: before.map(serde_json::to_value).transpose()?,
        after: after.map(serde_json::to_value).transpose()?,
        ..NewAuditEvent::default()
    };
    audit::insert(conn, &event, now).await
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
    Path((project, env, id)): Path<(String, String, i64)>,
) -> ApiResult<StatusCode> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let t = target(&mut tx, &actor, &project, &env).await?;
    let found: Option<(KeyRow, String)> =
        sqlx::query_as::<_, (i64, String, String, String, i64, Option<i64>, String)>(
            "select id, name, prefix, created_by, created_at, revoked_at, key_hash from sdk_key \
         where id = $1 and environment_id = $2",
        )
        .bind(id)
        .bind(t.environment_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(a, b, c, d, e, f, hash)| ((a, b, c, d, e, f), hash));
    let Some((row, key_hash)) = found else {
        return Err(ApiError::not_found("sdk_key", id.to_string()));
    };
    let before = to_key(row, &t.environment_key);
    if before.revoked_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    sqlx::query("update sdk_key set revoked_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = SdkKey {
        revoked_at: Some(now),
        ..before.clone()
    };
    record(
        &mut tx,
        &actor,
        &t,
        "sdk_key.revoke",
        Some(&before),
        Some(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    // After the commit: invalidating earlier could let a concurrent lookup re-cache the key
    // as valid from the not-yet-committed state.
    state.auth.sdk_keys.invalidate(&key_hash).await;
    Ok(StatusCode::NO_CONTENT)
}
