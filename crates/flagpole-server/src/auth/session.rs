//! Dashboard sessions: the `fp_session` cookie and its CSRF token.
//!
//! The contract with the dashboard:
//! - `POST /api/v1/auth/login` sets the cookie [`SESSION_COOKIE`] (HttpOnly, SameSite=Strict,
//!   Path=/, Secure when `--secure-cookies`) and returns `{user, csrf_token}`;
//!   `GET /api/v1/auth/me` returns the same for an existing session (after a page reload).
//! - Every request authenticated by the cookie whose method is not GET/HEAD/OPTIONS must
//!   send [`CSRF_HEADER`] equal to that `csrf_token`, or it gets 403. A cross-site page can
//!   make the browser send the cookie (older browsers ignore SameSite) but cannot read the
//!   token, so it cannot forge the header.
//!
//! The cookie value is 256 random bits; the database stores only its SHA-256, so a leaked
//! `session` table does not let anyone sign in.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use super::{generate_secret, hash_secret};
use crate::db::{Db, now_ms};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "fp_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A new session: what to put in the cookie and what to give the dashboard.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value (plaintext; only its hash is stored).
    pub cookie_value: String,
    /// The CSRF token the dashboard sends back in [`CSRF_HEADER`].
    pub csrf_token: String,
    /// Epoch ms when it stops being valid.
    pub expires_at: i64,
}

/// A session found from its cookie, with its user's current state.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// `app_user.id`.
    pub user_id: i64,
    /// The CSRF token of the session.
    pub csrf_token: String,
    /// Epoch ms.
    pub expires_at: i64,
    /// The user's email.
    pub email: String,
    /// The user's role (database name).
    pub role: String,
    /// The user's project scope.
    pub project_id: Option<i64>,
    /// Set when the user was disabled.
    pub disabled_at: Option<i64>,
}

/// The session cookie's value in a request, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Stores a new session for `user_id` lasting `hours`, and removes the user's expired ones
/// (sessions are otherwise only removed at logout, so this keeps the table small).
pub async fn create(db: &Db, user_id: i64, hours: u64) -> Result<NewSession, sqlx::Error> {
    let now = now_ms();
    let lifetime = i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
    let session = NewSession {
        cookie_value: generate_secret(""),
        csrf_token: generate_secret(""),
        expires_at: now.saturating_add(lifetime),
    };
    let mut tx = db.begin_write().await?;
    sqlx::query("delete from session where user_id = $1 and expires_at <= $2")
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into session (token_hash, user_id, csrf_token, created_at, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(hash_secret(&session.cookie_value))
    .bind(user_id)
    .bind(&session.csrf_token)
    .bind(now)
    .bind(session.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(session)
}

/// The session with this cookie value, expired or not (the caller decides).
pub async fn find(db: &Db, cookie_value: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    type Row = (i64, String, i64, String, String, Option<i64>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "select s.user_id, s.csrf_token, s.expires_at, u.email, u.role, u.project_id, u.disabled_at \
         from session s join app_user u on u.id = s.user_id where s.token_hash = $1",
    )
    .bind(hash_secret(cookie_value))
    .fetch_optional(&db.pool)
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

/// Deletes the session with this cookie value (logout). Deleting nothing is fine.
pub async fn delete(db: &Db, cookie_value: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from session where token_hash = $1")
        .bind(hash_secret(cookie_value))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// `Set-Cookie` value that installs the session cookie.
pub fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        assert_eq!(cookie_value(&headers), None);
        headers.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; fp_session_old=x"),
        );
        assert_eq!(cookie_value(&headers), None);
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1;  fp_session=abc ; b=2"),
        );
        assert_eq!(cookie_value(&headers), Some("abc"));
        let mut empty = HeaderMap::new();
        empty.insert(COOKIE, HeaderValue::from_static("fp_session="));
        assert_eq!(cookie_value(&empty), None);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set_cookie("v", 60, false),
            "fp_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(set_cookie("v", 60, true).ends_with("; Secure"));
        assert!(
            clear_cookie(true)
                .starts_with("fp_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
        );
    }
}
