//! The `session` table: dashboard sessions, stored by the SHA-256 of their cookie value.

use super::Conn;

/// A session found from its cookie, with its user's current state.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    /// `app_user.id`.
    pub(crate) user_id: i64,
    /// The CSRF token of the session.
    pub(crate) csrf_token: String,
    /// Epoch ms.
    pub(crate) expires_at: i64,
    /// The user's email.
    pub(crate) email: String,
    /// The user's role (database name).
    pub(crate) role: String,
    /// The user's project scope.
    pub(crate) project_id: Option<i64>,
    /// Set when the user was disabled.
    pub(crate) disabled_at: Option<i64>,
}

/// A session to insert.
#[derive(Debug)]
pub(crate) struct NewSessionRow<'a> {
    /// `auth::hash_secret` of the cookie value.
    pub(crate) token_hash: &'a str,
    pub(crate) user_id: i64,
    pub(crate) csrf_token: &'a str,
    pub(crate) expires_at: i64,
}

/// Inserts a session.
pub(crate) async fn insert(
    conn: &mut Conn,
    new: &NewSessionRow<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into session (token_hash, user_id, csrf_token, created_at, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(new.token_hash)
    .bind(new.user_id)
    .bind(new.csrf_token)
    .bind(now)
    .bind(new.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes `user_id`'s sessions that expired at or before `now`.
pub(crate) async fn delete_expired(
    conn: &mut Conn,
    user_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from session where user_id = $1 and expires_at <= $2")
        .bind(user_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every session of `user_id` (password change, disabling, deletion).
pub(crate) async fn delete_for_user(conn: &mut Conn, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("delete from session where user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every session of `user_id` but the one with hash `keep` (a password change
/// signs out the user's other browsers, not the one that made it).
pub(crate) async fn delete_others(
    conn: &mut Conn,
    user_id: i64,
    keep: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from session where user_id = $1 and token_hash <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the session with this hash. Deleting nothing is fine.
pub(crate) async fn delete(conn: &mut Conn, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from session where token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// The session with this hash, expired or not (the caller decides).
pub(crate) async fn by_hash(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    type Row = (i64, String, i64, String, String, Option<i64>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "select s.user_id, s.csrf_token, s.expires_at, u.email, u.role, u.project_id, u.disabled_at \
         from session s join app_user u on u.id = s.user_id where s.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(user_id, csrf_token, expires_at, email, role, project_id, disabled_at)| SessionRow {
            user_id,
            csrf_token,
            expires_at,
            email,
            role,
            project_id,
            disabled_at,
        },
    ))
}
