//! Dashboard sessions: login, logout, me, expiry, rate limiting and CSRF.

use axum::http::{Method, StatusCode};
use flagpole_server::db::{Backend, now_ms};
use serde_json::json;

use crate::on_both_backends;
use crate::support::auth::*;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN, Cred};

async fn login_logout_me(backend: Backend) {
    let h = harness(backend).await;
    let r = h
        .login_from("  Admin@Flagpole.local ", ADMIN_PASSWORD, "192.0.2.1")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let set = r.headers["set-cookie"].to_str().unwrap();
    for attr in [
        "fp_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(
        !set.contains("Secure"),
        "not Secure without --secure-cookies: {set}"
    );
    assert_eq!(r.body["user"]["email"], ADMIN_EMAIL);
    assert_eq!(r.body["user"]["role"], "admin");
    assert!(r.body["user"].get("password_hash").is_none());
    let (cookie, csrf) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let me = h
        .call(
            Method::GET,
            "/api/v1/auth/me",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["csrf_token"], csrf.as_str());
    assert_eq!(me.body["user"]["email"], ADMIN_EMAIL);
    let anonymous = h
        .call(Method::GET, "/api/v1/auth/me", Cred::None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["error"]["code"], "unauthenticated");
    let token = h
        .call(
            Method::GET,
            "/api/v1/auth/me",
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(token.status, StatusCode::UNAUTHORIZED);

    // The cookie authenticates management calls as the user.
    let users = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);

    let no_csrf = h
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let out = h
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Cred::Cookie(&cookie, Some(&csrf)),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = h
        .call(
            Method::GET,
            "/api/v1/auth/me",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let after = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    // Logging out without a session only clears the cookie.
    let again = h
        .call(Method::POST, "/api/v1/auth/logout", Cred::None, None)
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
}

async fn wrong_password_unknown_email_and_expiry(backend: Backend) {
    let h = harness(backend).await;
    let wrong = h
        .login_from(ADMIN_EMAIL, "not-the-password", "192.0.2.7")
        .await;
    let unknown = h
        .login_from("nobody@example.com", "not-the-password", "192.0.2.7")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // Same answer whether or not the email exists.
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.headers.get("set-cookie").is_none());
    let malformed = h
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Cred::None,
            Some(json!({"email": 1})),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);

    // An expired session is 401.
    let (cookie, _) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    sqlx::query("update session set expires_at = $1")
        .bind(now_ms() - 1)
        .execute(&h.db().pool)
        .await
        .unwrap();
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let r = h
        .call(
            Method::GET,
            "/api/v1/auth/me",
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn login_rate_limit(backend: Backend) {
    let h = harness(backend).await;
    for _ in 0..5 {
        let r = h
            .login_from(ADMIN_EMAIL, "wrong-password", "192.0.2.10")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Blocked now, even with the right password and from another address (per email).
    for ip in ["192.0.2.10", "198.51.100.3"] {
        let r = h.login_from(ADMIN_EMAIL, ADMIN_PASSWORD, ip).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry), "{retry}");
        assert_eq!(r.body["error"]["code"], "too_many_requests");
    }

    // A success resets the email's counter.
    h.create_user("carol@example.com", "reader", None).await;
    for _ in 0..4 {
        let r = h
            .login_from("carol@example.com", "wrong-password", "198.51.100.20")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let ok = h
        .login_from("carol@example.com", "long-enough-pw", "198.51.100.20")
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    for _ in 0..4 {
        let r = h
            .login_from("carol@example.com", "wrong-password", "198.51.100.21")
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "counter was reset by the success"
        );
    }

    // Per client address: 20 failures spread over emails block the address for any email.
    for i in 0..20 {
        let r = h
            .login_from(
                &format!("u{}@example.com", i / 4),
                "wrong-password",
                "203.0.113.9",
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = h
        .login_from("fresh@example.com", "wrong-password", "203.0.113.9")
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = h
        .login_from("fresh@example.com", "wrong-password", "203.0.113.10")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn csrf_for_cookie_writes_not_for_bearer(backend: Backend) {
    let h = harness(backend).await;
    let (cookie, csrf) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = || Some(json!({"name": "ci", "role": "reader"}));
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Cookie(&cookie, None),
            body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-CSRF-Token")
    );
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Cookie(&cookie, Some("wrong")),
            body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Cookie(&cookie, Some(&csrf)),
            body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["created_by"], format!("user:{ADMIN_EMAIL}"));
    let id = r.body["id"].as_i64().unwrap();
    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Cred::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "DELETE needs the header too"
    );
    // Bearer tokens need no CSRF token.
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A disabled user's session stops working at once.
    let uid = h.create_user("dave@example.com", "admin", None).await;
    let (dave, _) = h.login("dave@example.com", "long-enough-pw").await;
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{uid}"),
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 1, "disabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["disabled"], true);
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&dave, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .login_from("dave@example.com", "long-enough-pw", "192.0.2.50")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

on_both_backends!(
    login_logout_me,
    wrong_password_unknown_email_and_expiry,
    login_rate_limit,
    csrf_for_cookie_writes_not_for_bearer,
);
