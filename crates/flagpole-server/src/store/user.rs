//! The `app_user` table: dashboard users. Password hashes are written here and read only
//! by sign-in ([`login_row`]); every other read returns [`User`], which has none.

use serde::Serialize;

use super::{Conn, StoreError, StoreResult};
use crate::role::Role;

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

type UserRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

const SELECT_USER: &str = "select u.id, u.email, u.name, u.role, p.key, u.disabled_at, u.version, \
     u.created_at from app_user u left join project p on p.id = u.project_id";

fn to_user(row: UserRow) -> StoreResult<User> {
    let (id, email, name, role, project, disabled_at, version, created_at) = row;
    let role = Role::parse(&role).ok_or_else(|| {
        StoreError::corrupt(
            format!("app_user {id} role"),
            format!("unknown role {role}"),
        )
    })?;
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

/// Every user, by email.
pub(crate) async fn list(conn: &mut Conn) -> StoreResult<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_USER} order by u.email"
    )))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(to_user).collect()
}

/// The user with this id.
pub(crate) async fn by_id(conn: &mut Conn, id: i64) -> StoreResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_USER} where u.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(to_user).transpose()
}

/// True if a user other than `except` has this email.
pub(crate) async fn email_taken(
    conn: &mut Conn,
    email: &str,
    except: Option<i64>,
) -> StoreResult<bool> {
    let taken: Option<i64> =
        sqlx::query_scalar("select id from app_user where email = $1 and id <> $2")
            .bind(email)
            .bind(except.unwrap_or(0))
            .fetch_optional(conn)
            .await?;
    Ok(taken.is_some())
}

/// True if there is at least one user (first start creates the admin only when not).
pub(crate) async fn any_exists(conn: &mut Conn) -> StoreResult<bool> {
    let any: Option<i64> = sqlx::query_scalar("select id from app_user limit 1")
        .fetch_optional(conn)
        .await?;
    Ok(any.is_some())
}

/// Arbitrary constant naming the first-start advisory lock (`pg_advisory_xact_lock`).
const FIRST_START_LOCK_ID: i64 = 0x666c_6167_706f_6c65; // "flagpole"

/// Serialises first starts: on Postgres a transaction-scoped advisory lock, released at
/// commit or rollback; on SQLite nothing, since `begin immediate` already holds the write
/// lock.
pub(crate) async fn lock_first_start(conn: &mut Conn) -> Result<(), sqlx::Error> {
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(FIRST_START_LOCK_ID)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Arbitrary constant naming the lock that serialises changes to who is an admin of all
/// projects ("admins": `pg_advisory_xact_lock`).
const ADMINS_LOCK_ID: i64 = 0x666c_6167_6164_6d6e; // "flagadmn"

/// Serialises writes that could take away an admin of all projects, so "is another one
/// left?" stays true until the writer commits. On Postgres a transaction-scoped advisory
/// lock: under read committed, two demotions of two different admins would each count the
/// other one and both commit, leaving none (row locks would not help: each locks only the
/// row it changes). On SQLite nothing, since `begin immediate` already holds the write
/// lock. Take it before reading the user being changed.
pub(crate) async fn lock_admins(conn: &mut Conn) -> StoreResult<()> {
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(ADMINS_LOCK_ID)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// How many enabled admins of all projects there are, other than user `except`.
pub(crate) async fn other_full_admins(conn: &mut Conn, except: i64) -> StoreResult<i64> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from app_user where role = 'admin' and project_id is null \
         and disabled_at is null and id <> $1",
    )
    .bind(except)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// A user to insert; `password_hash` is the argon2 PHC string.
#[derive(Debug)]
pub(crate) struct NewUser<'a> {
    pub(crate) email: &'a str,
    pub(crate) name: &'a str,
    pub(crate) password_hash: &'a str,
    pub(crate) role: Role,
    pub(crate) project_id: Option<i64>,
}

/// Inserts a user at version 1 and returns its id.
pub(crate) async fn insert(conn: &mut Conn, new: &NewUser<'_>, now: i64) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "insert into app_user (email, name, password_hash, role, project_id, version, created_at) \
         values ($1, $2, $3, $4, $5, 1, $6) returning id",
    )
    .bind(new.email)
    .bind(new.name)
    .bind(new.password_hash)
    .bind(new.role.as_str())
    .bind(new.project_id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Changes to a user's columns; `None` leaves a column as it is. For the nullable columns
/// the outer `Option` says whether to set, the inner one is the value.
#[derive(Debug, Default)]
pub(crate) struct UserChange {
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) role: Option<Role>,
    pub(crate) password_hash: Option<String>,
    pub(crate) project_id: Option<Option<i64>>,
    pub(crate) disabled_at: Option<Option<i64>>,
}

/// Applies `change` to user `id` and bumps its version.
pub(crate) async fn update(conn: &mut Conn, id: i64, change: UserChange) -> StoreResult<()> {
    // Each column keeps its value unless the change sets it: `coalesce($n, col)`, with a
    // flag for the nullable ones where "set to null" differs from "leave".
    sqlx::query(
        "update app_user set email = coalesce($1, email), name = coalesce($2, name), \
         role = coalesce($3, role), password_hash = coalesce($4, password_hash), \
         project_id = case when $5 = 1 then $6 else project_id end, \
         disabled_at = case when $7 = 1 then $8 else disabled_at end, \
         version = version + 1 where id = $9",
    )
    .bind(change.email)
    .bind(change.name)
    .bind(change.role.map(Role::as_str))
    .bind(change.password_hash)
    .bind(i64::from(change.project_id.is_some()))
    .bind(change.project_id.flatten())
    .bind(i64::from(change.disabled_at.is_some()))
    .bind(change.disabled_at.flatten())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes user `id` (the caller ends their sessions first).
pub(crate) async fn delete(conn: &mut Conn, id: i64) -> StoreResult<()> {
    sqlx::query("delete from app_user where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// User `id`'s password hash (argon2 PHC string), for checking the current password before
/// a change.
pub(crate) async fn password_hash(conn: &mut Conn, id: i64) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("select password_hash from app_user where id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// What sign-in needs to check a password: the user's id, password hash and whether the
/// user is disabled.
pub(crate) async fn login_row(
    conn: &mut Conn,
    email: &str,
) -> StoreResult<Option<(i64, String, bool)>> {
    let row: Option<(i64, String, Option<i64>)> =
        sqlx::query_as("select id, password_hash, disabled_at from app_user where email = $1")
            .bind(email)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(id, hash, disabled_at)| (id, hash, disabled_at.is_some())))
}
