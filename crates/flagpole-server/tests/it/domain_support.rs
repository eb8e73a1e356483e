//! Shared by the domain API tests: an app over a fresh database, API tokens inserted
//! directly, one-line requests through the router, and the both-backends test macro.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagpole_server::db::{Backend, Db, now_ms};
use flagpole_server::{App, AppState, Config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Generates one `#[tokio::test]` per backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! backends {
    ($($body:ident => $pg:ident, $lite:ident;)*) => {$(
        #[tokio::test]
        async fn $pg() {
            $body(flagpole_server::db::Backend::Postgres).await
        }
        #[tokio::test]
        async fn $lite() {
            $body(flagpole_server::db::Backend::Sqlite).await
        }
    )*};
}

/// An app over a fresh database, with an unscoped admin token.
pub(crate) struct TestApp {
    pub(crate) app: App,
    pub(crate) admin: String,
}

impl TestApp {
    pub(crate) async fn new(backend: Backend) -> TestApp {
        let db = flagpole_server::testing::fresh_db(backend)
            .await
            .expect("fresh database");
        let dir = flagpole_server::testing::fresh_sqlite_dir().expect("temp dir");
        let app = App::with_db(db.clone(), Config::for_tests(dir))
            .await
            .expect("app");
        let admin = token(&db, "admin", None).await;
        TestApp { app, admin }
    }

    pub(crate) fn state(&self) -> &AppState {
        self.app.state()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.app.state().db
    }

    /// A JSON request with the admin token.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(&self.admin.clone(), method, uri, body).await
    }

    /// A JSON request with `token`.
    pub(crate) async fn call_as(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// Any request; the response body parsed as JSON (`Null` if empty).
    pub(crate) async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.app.router().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, value)
    }

    /// Creates a project and returns its key.
    pub(crate) async fn project(&self, key: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(serde_json::json!({"key": key})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        key.to_owned()
    }

    /// One scalar from SQL (for checking what a write left behind).
    pub(crate) async fn scalar(&self, sql: &'static str, bind: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(bind.to_owned())
            .fetch_one(&self.db().pool)
            .await
            .expect(sql)
    }

    pub(crate) async fn data_version(&self, project: &str, env: &str) -> i64 {
        let (s, b) = self
            .call(
                Method::GET,
                &format!("/api/v1/projects/{project}/environments/{env}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["data_version"].as_i64().unwrap()
    }

    pub(crate) async fn audit_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from audit_event")
            .fetch_one(&self.db().pool)
            .await
            .unwrap()
    }
}

/// Inserts an API token row and returns the secret.
pub(crate) async fn token(db: &Db, role: &str, project_id: Option<i64>) -> String {
    let secret = flagpole_server::auth::generate_secret(flagpole_server::auth::API_TOKEN_PREFIX);
    sqlx::query(
        "insert into api_token (name, token_hash, prefix, role, project_id, created_by, created_at) \
         values ($1, $2, $3, $4, $5, 'test', $6)",
    )
    .bind(format!("{role}-{}", &secret[7..15]))
    .bind(flagpole_server::auth::hash_secret(&secret))
    .bind(secret[..12].to_owned())
    .bind(role)
    .bind(project_id)
    .bind(now_ms())
    .execute(&db.pool)
    .await
    .expect("insert token");
    secret
}

/// Asserts a JSON error with the given status and first field.
#[track_caller]
pub(crate) fn assert_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    field: Option<&str>,
) {
    assert_eq!(status, expected, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    if let Some(field) = field {
        assert_eq!(body["error"]["field"], field, "{body}");
    }
}
