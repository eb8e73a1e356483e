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
//! `session` table does not let anyone sign in. Sessions are written by
//! [`crate::domain::sessions`].

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use super::hash_secret;
use crate::db::Db;
use crate::store;
pub(crate) use crate::store::session::SessionRow;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "fp_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

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

/// The session with this cookie value, expired or not (the caller decides).
pub(crate) async fn find(db: &Db, cookie_value: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    store::session::by_hash(&mut conn, &hash_secret(cookie_value)).await
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
