//! Dashboard user records as the API shows them: read by sign-in and by the users API.

use serde::Serialize;

use super::Role;
use crate::error::{ApiError, ApiResult};
use crate::store::Conn;

/// A dashboard user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct User {
    /// Id, used in URLs.
    pub(crate) id: i64,
    /// Sign-in email (lower case).
    pub(crate) email: String,
    /// Display name.
    pub(crate) name: String,
    /// What the user may do.
    pub(crate) role: Role,
    /// Key of the one project the user is limited to; `null` for all projects.
    pub(crate) project: Option<String>,
    /// True if the user may not sign in.
    pub(crate) disabled: bool,
    /// Optimistic-concurrency version; send it back on update.
    pub(crate) version: i64,
    /// Creation time (epoch ms).
    pub(crate) created_at: i64,
}

pub(crate) type UserRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

pub(crate) const SELECT_USER: &str = "select u.id, u.email, u.name, u.role, p.key, u.disabled_at, u.version, \
     u.created_at from app_user u left join project p on p.id = u.project_id";

pub(crate) fn to_user(row: UserRow) -> ApiResult<User> {
    let (id, email, name, role, project, disabled_at, version, created_at) = row;
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("app_user {id} has role {role}")))?;
    Ok(User {
        id,
        email,
        name,
        role,
        project,
        disabled: disabled_at.is_some(),
        version,
        created_at,
    })
}

/// The user with this id.
pub(crate) async fn load_user(conn: &mut Conn, id: i64) -> ApiResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_USER} where u.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(to_user).transpose()
}
