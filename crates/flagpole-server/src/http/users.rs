//! Dashboard users: list, create, read, update (role, scope, password, disabled), delete.
//! Global resources: only unscoped admins manage them. Password hashes never leave here.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, required_version};
use crate::auth::{Actor, Role};
use crate::domain::users::{self, NewUserInput, UserPatch};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::user::{self as user_store, User};

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

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("api_token" = []), ("session" = [])),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<axum::Json<UserList>> {
    actor.require(Role::Admin, None)?;
    let mut conn = state.db.pool.acquire().await?;
    let items = user_store::list(&mut conn).await?;
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
    let input = NewUserInput {
        email: body.email,
        name: body.name,
        password: body.password,
        role: body.role,
        project: body.project,
    };
    let user = users::create(&state, &actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Reads a user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<axum::Json<User>> {
    actor.require(Role::Admin, None)?;
    let mut conn = state.db.pool.acquire().await?;
    let user = user_store::by_id(&mut conn, id)
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

/// Updates a user (optimistic concurrency on `version`).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("api_token" = []), ("session" = [])), request_body = UpdateUser,
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Version conflict or email taken; `current` holds the user"),
        (status = 422, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    actor.require(Role::Admin, None)?;
    let expected = required_version(&headers, body.version)?;
    let patch = UserPatch {
        email: body.email,
        name: body.name,
        role: body.role,
        project: body.project,
        password: body.password,
        disabled: body.disabled,
    };
    let user = users::update(&state, &actor, id, expected, patch).await?;
    Ok(axum::Json(user))
}

/// Deletes a user and ends their sessions. The audit trail keeps their name as actor.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("api_token" = []), ("session" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "Deleting your own account")))]
async fn delete_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    actor.require(Role::Admin, None)?;
    users::delete(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
