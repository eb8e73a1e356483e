//! Dashboard users: list, create, read, update (role, scope, password, disabled), delete.
//! Global resources: only unscoped admins manage them. Password hashes never leave here.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::required_version;
use crate::auth::users::{SELECT_USER, User, UserRow, load_user, to_user};
use crate::auth::{Actor, ActorKind, Role, is_plausible_email, password};
use crate::db::now_ms;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody, current_of};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// A list of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserList {
    /// Users, by email.
    items: Vec<User>,
}

/// Resolves an optional project key from a body field to its id (422 if unknown).
pub(crate) async fn project_id_of(
    conn: &mut Conn,
    key: Option<&str>,
    field: &str,
) -> ApiResult<Option<i64>> {
    let Some(key) = key else { return Ok(None) };
    let id: Option<i64> = sqlx::query_scalar("select id from project where key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    id.map(Some)
        .ok_or_else(|| ApiError::invalid(field, format!("no project with key `{key}`")))
}

fn normalise_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    if !is_plausible_email(&email) {
        return Err(ApiError::invalid("email", "not an email address"));
    }
    Ok(email)
}

fn validate_name(name: &str) -> ApiResult<()> {
    if name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be at most 200 characters"));
    }
    Ok(())
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<axum::Json<UserList>> {
    actor.require(Role::Admin, None)?;
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_USER} order by u.email"
    )))
    .fetch_all(&state.db.pool)
    .await?;
    let items = rows.into_iter().map(to_user).collect::<ApiResult<_>>()?;
    Ok(axum::Json(UserList { items }))
}

/// A new user.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// Sign-in email; stored in lower case; unique.
    email: String,
    /// Display name.
    #[serde(default)]
    name: String,
    /// Initial password, at least 12 characters.
    password: String,
    /// `reader`, `writer` or `admin`.
    role: Role,
    /// Key of the project to limit the user to; absent or `null` for all projects.
    #[serde(default)]
    project: Option<String>,
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("api_token" = []), ("session" = [])), request_body = CreateUser,
    responses((status = 201, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Email already used"), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    actor.require(Role::Admin, None)?;
    let email = normalise_email(&body.email)?;
    validate_name(&body.name)?;
    password::validate(&body.password, "password")?;
    // Hash before the transaction: on SQLite it holds the write lock.
    let hash = password::hash(body.password).await?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let project_id = project_id_of(&mut tx, body.project.as_deref(), "project").await?;
    let taken: Option<i64> = sqlx::query_scalar("select id from app_user where email = $1")
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Err(ApiError::Conflict {
            message: format!("a user with email `{email}` already exists"),
            current: None,
        });
    }
    let id: i64 = sqlx::query_scalar(
        "insert into app_user (email, name, password_hash, role, project_id, version, created_at) \
         values ($1, $2, $3, $4, $5, 1, $6) returning id",
    )
    .bind(&email)
    .bind(&body.name)
    .bind(&hash)
    .bind(body.role.as_str())
    .bind(project_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let user = load_user(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("inserted user missing")))?;
    let after = serde_json::to_value(&user)?;
    record(&mut tx, &actor, "user.create", id, (None, Some(after)), now).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Audits a change to user `id` (states as JSON, never with the hash).
async fn record(
    conn: &mut Conn,
    actor: &Actor,
    action: &str,
    id: i64,
    states: (Option<Value>, Option<Value>),
    now: i64,
) -> ApiResult<()> {
    let key = id.to_string();
    let event = NewAuditEvent {
        actor: &actor.name,
        action,
        resource_type: "user",
        resource_key: &key,
        before: states.0,
        after: states.1,
        ..NewAuditEvent::default()
    };
    audit::insert(conn, &event, now).await
}

/// Reads a user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<User>> {
    actor.require(Role::Admin, None)?;
    let mut conn = state.db.pool.acquire().await?;
    let user = load_user(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    Ok(axum::Json(user))
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    /// The version the change is based on (or send `If-Match`); 409 if it moved on.
    version: Option<i64>,
    /// New email.
    email: Option<String>,
    /// New display name.
    name: Option<String>,
    /// New role.
    role: Option<Role>,
    /// New project scope: a project key, or `null` for all projects.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    project: Option<Option<String>>,
    /// New password (at least 12 characters); ends the user's sessions.
    password: Option<String>,
    /// Disable (true) or re-enable (false); disabling ends the user's sessions.
    disabled: Option<bool>,
}

/// Distinguishes "absent" (outer `None`, via `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn own_account(actor: &Actor, id: i64) -> bool {
    actor.kind == ActorKind::User { id }
}

/// Updates a user (optimistic concurrency on `version`).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("api_token" = []), ("session" = [])), request_body = UpdateUser,
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Version conflict or email taken; `current` holds the user"),
        (status = 422, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    actor.require(Role::Admin, None)?;
    let expected = required_version(&headers, body.version)?;
    let email = body.email.as_deref().map(normalise_email).transpose()?;
    if let Some(name) = &body.name {
        validate_name(name)?;
    }
    if body.disabled == Some(true) && own_account(&actor, id) {
        return Err(ApiError::invalid(
            "disabled",
            "you cannot disable your own account",
        ));
    }
    let hash = match body.password {
        Some(p) => {
            password::validate(&p, "password")?;
            Some(password::hash(p).await?)
        }
        None => None,
    };
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = load_user(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    if before.version != expected {
        return Err(ApiError::Conflict {
            message: format!(
                "user {id} is at version {}, not {}",
                before.version, expected
            ),
            current: current_of(&before),
        });
    }
    if let Some(email) = &email {
        let taken: Option<i64> =
            sqlx::query_scalar("select id from app_user where email = $1 and id <> $2")
                .bind(email)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if taken.is_some() {
            return Err(ApiError::Conflict {
                message: format!("a user with email `{email}` already exists"),
                current: current_of(&before),
            });
        }
    }
    let project_id = match &body.project {
        Some(key) => Some(project_id_of(&mut tx, key.as_deref(), "project").await?),
        None => None,
    };
    // Each column keeps its value unless the body set it: `coalesce($n, col)`, with a flag
    // for the nullable ones where "set to null" differs from "leave".
    let disabled_at: Option<Option<i64>> = match body.disabled {
        None => None,
        Some(false) => Some(None),
        // Already disabled: keep the original time.
        Some(true) if before.disabled => None,
        Some(true) => Some(Some(now)),
    };
    sqlx::query(
        "update app_user set email = coalesce($1, email), name = coalesce($2, name), \
         role = coalesce($3, role), password_hash = coalesce($4, password_hash), \
         project_id = case when $5 = 1 then $6 else project_id end, \
         disabled_at = case when $7 = 1 then $8 else disabled_at end, \
         version = version + 1 where id = $9",
    )
    .bind(email)
    .bind(body.name)
    .bind(body.role.map(Role::as_str))
    .bind(hash.clone())
    .bind(i64::from(project_id.is_some()))
    .bind(project_id.flatten())
    .bind(i64::from(disabled_at.is_some()))
    .bind(disabled_at.flatten())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if hash.is_some() || body.disabled == Some(true) {
        sqlx::query("delete from session where user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let after = load_user(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("updated user missing")))?;
    let mut event_after = serde_json::to_value(&after)?;
    if hash.is_some() {
        event_after["password_changed"] = json!(true);
    }
    let states = (Some(serde_json::to_value(&before)?), Some(event_after));
    record(&mut tx, &actor, "user.update", id, states, now).await?;
    tx.commit().await?;
    Ok(axum::Json(after))
}

/// Deletes a user and ends their sessions. The audit trail keeps their name as actor.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "Deleting your own account")))]
async fn delete_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    actor.require(Role::Admin, None)?;
    if own_account(&actor, id) {
        return Err(ApiError::invalid(
            "id",
            "you cannot delete your own account",
        ));
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = load_user(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    sqlx::query("delete from session where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from app_user where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let before = serde_json::to_value(&before)?;
    record(
        &mut tx,
        &actor,
        "user.delete",
        id,
        (Some(before), None),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
