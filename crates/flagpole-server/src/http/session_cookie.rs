//! The dashboard's session cookie and its CSRF header, as the HTTP edge reads and writes
//! them; `auth::session` checks the session a cookie names.
//!
//! The contract with the dashboard:
//! - `POST /api/v1/auth/login` sets the cookie [`SESSION_COOKIE`] (HttpOnly, SameSite=Strict,
//!   Path=/, Secure when `--secure-cookies`) and returns `{user, csrf_token}`;
//!   `GET /api/v1/auth/me` returns the same for an existing session (after a page reload).
//! - Every request authenticated by the cookie whose method is not GET/HEAD/OPTIONS must
//!   send [`CSRF_HEADER`] equal to that `csrf_token`, or it gets 403. A cross-site page can
//!   make the browser send the cookie (older browsers ignore SameSite) but cannot read the
//!   token, so it cannot forge the header.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// Name of the session cookie.
pub(crate) const SESSION_COOKIE: &str = "fp_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's value in a request, if any.
pub(crate) fn cookie_value(headers: &HeaderMap) -> Option<&str> {
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

/// The CSRF header's value, empty when absent.
pub(crate) fn csrf_token(headers: &HeaderMap) -> &[u8] {
    headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default()
}

/// `Set-Cookie` value that installs the session cookie.
pub(crate) fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(secure: bool) -> String {
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
