//! Authentication: login/logout/me, CSRF, rate limiting, API tokens, SDK keys, users and
//! bootstrap, through the router on both backends.

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use flagpole_server::auth::SdkClient;
use flagpole_server::bootstrap::{Bootstrapped, bootstrap};
use flagpole_server::db::{Backend, now_ms};
use flagpole_server::testing::{fresh_db, fresh_sqlite_dir};
use flagpole_server::{App, Config, Db};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ADMIN_TOKEN: &str = "fp_api_test_admin_token_0000000000000000";
const ADMIN_EMAIL: &str = "admin@flagpole.local";
const ADMIN_PASSWORD: &str = "admin-password";

struct Harness {
    app: App,
    router: Router,
}

async fn harness(backend: Backend) -> Harness {
    let db = fresh_db(backend).await.expect("database");
    let config = Config::for_tests(fresh_sqlite_dir().expect("dir"));
    let app = App::with_db(db, config).await.expect("app");
    let router = app.router();
    Harness { app, router }
}

/// A response: status, headers and JSON body (`null` when empty).
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// One credential for a request.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
    /// Session cookie value and the CSRF header to send (if any).
    Cookie(&'a str, Option<&'a str>),
}

impl Harness {
    fn db(&self) -> &Db {
        &self.app.state().db
    }

    async fn call(&self, method: Method, uri: &str, cred: Cred<'_>, body: Option<Value>) -> Resp {
        self.call_with(method, uri, cred, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        uri: &str,
        cred: Cred<'_>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        match cred {
            Cred::None => {}
            Cred::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Cred::ApiKey(k) => req = req.header("x-api-key", k),
            Cred::Cookie(c, csrf) => {
                req = req.header("cookie", format!("other=1; fp_session={c}"));
                if let Some(csrf) = csrf {
                    req = req.header("x-csrf-token", csrf);
                }
            }
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let res = self.router.clone().oneshot(req).await.expect("response");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn login_from(&self, email: &str, password: &str, ip: &str) -> Resp {
        self.call_with(
            Method::POST,
            "/api/v1/auth/login",
            Cred::None,
            Some(json!({"email": email, "password": password})),
            &[("x-forwarded-for", ip)],
        )
        .await
    }

    /// Signs in; returns (cookie value, csrf token).
    async fn login(&self, email: &str, password: &str) -> (String, String) {
        let r = self.login_from(email, password, "192.0.2.1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
        let value = set
            .strip_prefix("fp_session=")
            .and_then(|s| s.split(';').next())
            .expect("session cookie")
            .to_owned();
        (value, r.body["csrf_token"].as_str().unwrap().to_owned())
    }

    async fn create_user(&self, email: &str, role: &str, project: Option<&str>) -> i64 {
        let r = self
            .call(
                Method::POST,
                "/api/v1/users",
                Cred::Bearer(ADMIN_TOKEN),
                Some(json!({"email": email, "password": "long-enough-pw", "role": role, "project": project})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    /// Creates a token; returns (id, token).
    async fn create_token(&self, role: &str, project: Option<&str>) -> (i64, String) {
        let r = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                Cred::Bearer(ADMIN_TOKEN),
                Some(json!({"name": format!("{role}-token"), "role": role, "project": project})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (
            r.body["id"].as_i64().unwrap(),
            r.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Inserts a project with one environment `production` directly (projects are another
    /// area's endpoints); returns (project id, environment id).
    async fn seed_project(&self, key: &str) -> (i64, i64) {
        let now = now_ms();
        let pid: i64 = sqlx::query_scalar(
            "insert into project (key, name, created_at, updated_at) values ($1, $1, $2, $2) returning id",
        )
        .bind(key)
        .bind(now)
        .fetch_one(&self.db().pool)
        .await
        .unwrap();
        let eid: i64 = sqlx::query_scalar(
            "insert into environment (project_id, key, name, created_at, updated_at) \
             values ($1, 'production', 'Production', $2, $2) returning id",
        )
        .bind(pid)
        .bind(now)
        .fetch_one(&self.db().pool)
        .await
        .unwrap();
        (pid, eid)
    }

    async fn sdk_client(&self, cred: Cred<'_>) -> Result<SdkClient, StatusCode> {
        let mut req = Request::builder().uri("/ofrep/v1/evaluate/flags");
        match cred {
            Cred::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Cred::ApiKey(k) => req = req.header("x-api-key", k),
            _ => {}
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        SdkClient::from_request_parts(&mut parts, self.app.state())
            .await
            .map_err(|e| axum::response::IntoResponse::into_response(e).status())
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

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

async fn tokens_revocation_scope_and_last_used(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    h.seed_project("beta").await;
    let (id, token) = h.create_token("admin", None).await;
    assert!(token.starts_with("fp_api_"));
    let r = h
        .call(Method::GET, "/api/v1/tokens", Cred::Bearer(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.body.to_string().contains(&token),
        "lists never show tokens"
    );
    let listed = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(listed["prefix"], &token[..11]);
    assert!(
        listed["last_used_at"].is_i64(),
        "first use recorded: {listed}"
    );

    // last_used_at is written at most once a minute.
    sqlx::query("update api_token set last_used_at = 1 where id = $1")
        .bind(id)
        .execute(&h.db().pool)
        .await
        .unwrap();
    h.call(Method::GET, "/api/v1/tokens", Cred::Bearer(&token), None)
        .await;
    let last: Option<i64> = sqlx::query_scalar("select last_used_at from api_token where id = $1")
        .bind(id)
        .fetch_one(&h.db().pool)
        .await
        .unwrap();
    assert_eq!(last, Some(1));

    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(Method::GET, "/api/v1/tokens", Cred::Bearer(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let audit = count(h.db(), "select count(*) from audit_event where resource_type = 'api_token' and action in ('api_token.create', 'api_token.revoke')").await;
    assert!(audit >= 3, "bootstrap + create + revoke audited");

    // Scoped to alpha: beta's resources and global ones are forbidden.
    let (_, alpha_admin) = h.create_token("admin", Some("alpha")).await;
    let r = h
        .call(
            Method::GET,
            "/api/v1/projects/beta/environments/production/sdk-keys",
            Cred::Bearer(&alpha_admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::GET,
            "/api/v1/projects/alpha/environments/production/sdk-keys",
            Cred::Bearer(&alpha_admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Bearer(&alpha_admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "x", "role": "owner"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "role");
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "x", "role": "reader", "project": "nope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "project");
    let r = h
        .call(
            Method::GET,
            "/api/v1/tokens",
            Cred::Bearer("fp_api_doesnotexist0000000000000000000000000"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn sdk_keys_only_for_sdk_endpoints(backend: Backend) {
    let h = harness(backend).await;
    let (pid, eid) = h.seed_project("alpha").await;
    let url = "/api/v1/projects/alpha/environments/production/sdk-keys";
    let r = h
        .call(
            Method::POST,
            url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_i64().unwrap();
    assert!(key.starts_with("fp_sdk_"));
    assert_eq!(r.body["environment"], "production");
    let listed = h
        .call(Method::GET, url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(listed.body["items"][0]["id"], id);
    assert!(!listed.body.to_string().contains(&key));

    // Rejected by the management API, with a message saying why.
    for cred in [Cred::Bearer(&key), Cred::ApiKey(&key)] {
        let r = h.call(Method::GET, "/api/v1/users", cred, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SDK keys"),
            "{}",
            r.body
        );
        let r = h.call(Method::GET, url, cred, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Accepted by the SdkClient extractor, either header.
    let expected = SdkClient {
        environment_id: eid,
        project_id: pid,
    };
    assert_eq!(h.sdk_client(Cred::Bearer(&key)).await, Ok(expected));
    assert_eq!(h.sdk_client(Cred::ApiKey(&key)).await, Ok(expected));
    assert_eq!(
        h.sdk_client(Cred::Bearer(ADMIN_TOKEN)).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        h.sdk_client(Cred::None).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        h.sdk_client(Cred::Bearer(
            "fp_sdk_unknown00000000000000000000000000000000"
        ))
        .await,
        Err(StatusCode::UNAUTHORIZED)
    );

    // Cached: a change behind the API's back is not seen until the entry expires...
    sqlx::query("update sdk_key set revoked_at = 1 where id = $1")
        .bind(id)
        .execute(&h.db().pool)
        .await
        .unwrap();
    assert_eq!(h.sdk_client(Cred::Bearer(&key)).await, Ok(expected));
    sqlx::query("update sdk_key set revoked_at = null where id = $1")
        .bind(id)
        .execute(&h.db().pool)
        .await
        .unwrap();
    // ...but revoking through the API invalidates this replica's cache at once.
    let r = h
        .call(
            Method::DELETE,
            &format!("{url}/{id}"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.sdk_client(Cred::Bearer(&key)).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("{url}/{id}"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "revoking twice is a no-op"
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("{url}/999999"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            "/api/v1/projects/alpha/environments/nope/sdk-keys",
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audit = count(
        h.db(),
        "select count(*) from audit_event where resource_type = 'sdk_key'",
    )
    .await;
    assert_eq!(audit, 2);
}

async fn users_crud(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    let post = |body: Value| {
        h.call(
            Method::POST,
            "/api/v1/users",
            Cred::Bearer(ADMIN_TOKEN),
            Some(body),
        )
    };
    for (body, field) in [
        (
            json!({"email": "no-at-sign", "password": "long-enough-pw", "role": "reader"}),
            "email",
        ),
        (
            json!({"email": "e@example.com", "password": "short", "role": "reader"}),
            "password",
        ),
        (
            json!({"email": "e@example.com", "password": "long-enough-pw", "role": "root"}),
            "role",
        ),
        (
            json!({"email": "e@example.com", "password": "long-enough-pw", "role": "reader", "project": "nope"}),
            "project",
        ),
    ] {
        let r = post(body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["error"]["field"], field);
    }
    let r = post(json!({"email": "Erin@Example.com", "name": "Erin", "password": "long-enough-pw", "role": "writer", "project": "alpha"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "erin@example.com");
    assert_eq!(r.body["project"], "alpha");
    assert_eq!(r.body["version"], 1);
    let id = r.body["id"].as_i64().unwrap();
    let dup =
        post(json!({"email": "erin@example.com", "password": "long-enough-pw", "role": "reader"}))
            .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let url = format!("/api/v1/users/{id}");
    let r = h
        .call(Method::GET, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.body["name"], "Erin");
    let (erin, _) = h.login("erin@example.com", "long-enough-pw").await;
    // Erin (writer, scoped) cannot manage users.
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let stale = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 7, "name": "E"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.body["current"]["version"], 1);
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 1, "role": "admin", "project": null, "password": "another-long-pw"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["project"], Value::Null);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["name"], "Erin", "absent fields are kept");
    // A password reset ends the user's sessions; the new password works.
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (erin, erin_csrf) = h.login("erin@example.com", "another-long-pw").await;
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.body.to_string().contains("argon2"),
        "hashes never leave the server"
    );
    // Nobody deletes or disables their own account.
    let r = h
        .call(
            Method::DELETE,
            &url,
            Cred::Cookie(&erin, Some(&erin_csrf)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Cookie(&erin, Some(&erin_csrf)),
            Some(json!({"version": 2, "disabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 2, "password_hash": "x"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are rejected"
    );

    let r = h
        .call(Method::DELETE, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(Method::GET, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(count(h.db(), "select count(*) from session").await, 0);
    let actions: Vec<String> = sqlx::query_scalar(
        "select action from audit_event where resource_type = 'user' and resource_key = $1 order by id",
    )
    .bind(id.to_string())
    .fetch_all(&h.db().pool)
    .await
    .unwrap();
    assert_eq!(actions, ["user.create", "user.update", "user.delete"]);
}

async fn secrets_are_stored_hashed(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    let (_, token) = h.create_token("writer", None).await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/projects/alpha/environments/production/sdk-keys",
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "k"})),
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    let (cookie, _) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let dump: Vec<String> = sqlx::query_scalar(
        "select token_hash || prefix from api_token union all select key_hash || prefix from sdk_key \
         union all select token_hash from session union all select password_hash from app_user",
    )
    .fetch_all(&h.db().pool)
    .await
    .unwrap();
    let all = dump.join("\n");
    for secret in [
        token.as_str(),
        key.as_str(),
        cookie.as_str(),
        ADMIN_PASSWORD,
        ADMIN_TOKEN,
    ] {
        assert!(!all.contains(secret), "{secret} stored in plaintext");
    }
    let hash: String = sqlx::query_scalar("select password_hash from app_user")
        .fetch_one(&h.db().pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

async fn bootstrap_creates_one_admin(backend: Backend) {
    let db = fresh_db(backend).await.unwrap();
    let mut config = Config::for_tests(fresh_sqlite_dir().unwrap());
    config.admin_password = None;
    config.admin_token = None;
    // Two "replicas" at once, then a restart.
    let (a, b) = tokio::join!(bootstrap(&db, &config), bootstrap(&db, &config));
    let results = [a.unwrap(), b.unwrap()];
    let created: Vec<_> = results
        .iter()
        .filter(|r| matches!(r, Bootstrapped::Created { .. }))
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert_eq!(
        bootstrap(&db, &config).await.unwrap(),
        Bootstrapped::AlreadyDone
    );
    let app = App::with_db(db.clone(), config.clone()).await.unwrap();
    assert_eq!(count(&db, "select count(*) from app_user").await, 1);
    assert_eq!(count(&db, "select count(*) from api_token").await, 1);

    let Bootstrapped::Created {
        email,
        generated_password: Some(password),
        generated_token: Some(token),
    } = created[0].clone()
    else {
        panic!("secrets were generated: {created:?}");
    };
    assert_eq!(email, ADMIN_EMAIL);
    assert!(token.starts_with("fp_api_"));
    let h = Harness {
        router: app.router(),
        app,
    };
    h.login(&email, &password).await;
    let r = h
        .call(Method::GET, "/api/v1/users", Cred::Bearer(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["role"], "admin");

    // Supplied secrets are used as given.
    let h = harness(backend).await;
    let r = h
        .call(
            Method::GET,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["name"], "bootstrap-admin");
    assert_eq!(r.body["items"][0]["created_by"], "system:bootstrap");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
    };
}

on_both_backends!(
    login_logout_me,
    wrong_password_unknown_email_and_expiry,
    login_rate_limit,
    csrf_for_cookie_writes_not_for_bearer,
    tokens_revocation_scope_and_last_used,
    sdk_keys_only_for_sdk_endpoints,
    users_crud,
    secrets_are_stored_hashed,
    bootstrap_creates_one_admin,
);
