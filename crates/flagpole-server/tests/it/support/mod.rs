//! Shared by every module of the integration tests: the both-backends test macros, the
//! credentials `Config::for_tests` bootstraps, apps over fresh databases, requests through
//! the router and their replies (`http`), rows counted or inserted with plain SQL (`sql`),
//! and `TestApp`, the domain tests' app with an admin token. The auth tests' harness is in
//! `auth`, the stream tests' servers and WebSocket clients in `stream`.

pub(crate) mod auth;
mod http;
mod sql;
pub(crate) mod stream;

pub(crate) use http::{Cred, http1, request, send};
pub(crate) use sql::{bool_flag, count, exec, insert_flag};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagpole_server::db::{Backend, Db, now_ms};
use flagpole_server::testing::{fresh_db, fresh_sqlite_dir};
use flagpole_server::{App, AppState, Config};
use serde_json::{Value, json};

/// Generates one test per backend, named by the caller, from an `async fn(Backend)`:
/// `backends! { body => body_postgres, body_sqlite; }`. A leading `#[test attribute]`
/// replaces `#[tokio::test]` (the stream tests want a multi-threaded runtime).
#[macro_export]
macro_rules! backends {
    (#[$test:meta] $($body:ident => $pg:ident, $lite:ident;)*) => {$(
        #[$test]
        async fn $pg() {
            $body(flagpole_server::db::Backend::Postgres).await
        }
        #[$test]
        async fn $lite() {
            $body(flagpole_server::db::Backend::Sqlite).await
        }
    )*};
    ($($body:ident => $pg:ident, $lite:ident;)*) => {
        $crate::backends! { #[tokio::test] $($body => $pg, $lite;)* }
    };
}

/// Generates `postgres::<name>` and `sqlite::<name>` tests from `async fn <name>(Backend)`
/// functions of the calling module.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(flagpole_server::db::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(flagpole_server::db::Backend::Sqlite).await })*
        }
    };
}

/// The unscoped admin token `Config::for_tests` bootstraps.
pub(crate) const ADMIN_TOKEN: &str = "fp_api_test_admin_token_0000000000000000";
/// The admin user `Config::for_tests` bootstraps, and its password.
pub(crate) const ADMIN_EMAIL: &str = "admin@flagpole.local";
pub(crate) const ADMIN_PASSWORD: &str = "admin-password";

/// The test configuration (`Config::for_tests`) over a fresh data directory.
pub(crate) fn config() -> Config {
    Config::for_tests(fresh_sqlite_dir().expect("temp dir"))
}

/// An app over `db` with [`config`].
pub(crate) async fn app_over(db: Db) -> App {
    App::with_db(db, config()).await.expect("app")
}

/// An app over a fresh database of `backend`.
pub(crate) async fn fresh_app(backend: Backend) -> App {
    app_over(fresh_db(backend).await.expect("fresh database")).await
}

/// An app over a fresh database, with an unscoped admin token.
pub(crate) struct TestApp {
    pub(crate) app: App,
    pub(crate) admin: String,
}

impl TestApp {
    pub(crate) async fn new(backend: Backend) -> TestApp {
        let app = fresh_app(backend).await;
        let admin = token(&app.state().db, "admin", None).await;
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
        self.send(request(
            method,
            uri,
            Cred::Bearer(token),
            body.as_ref(),
            &[],
        ))
        .await
    }

    /// Any request; the response body parsed as JSON (`Null` if empty).
    pub(crate) async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let reply = send(&self.app.router(), req).await;
        (reply.status, reply.json())
    }

    /// Creates a project and returns its key.
    pub(crate) async fn project(&self, key: &str) -> String {
        let (status, body) = self
            .call(Method::POST, "/api/v1/projects", Some(json!({"key": key})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        key.to_owned()
    }

    /// One scalar from SQL (for checking what a write left behind).
    pub(crate) async fn scalar(&self, sql: &'static str, bind: &str) -> i64 {
        exec(self.db(), sql, &[json!(bind)]).await
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
        count(self.db(), "select count(*) from audit_event").await
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
