//! The harness of the auth tests: an app over a fresh database with the bootstrapped
//! admin, requests with each kind of credential, and seeding helpers.

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use flagpole_server::auth::SdkClient;
use flagpole_server::db::{Backend, now_ms};
use flagpole_server::{App, Db};
use serde_json::{Value, json};

use super::{ADMIN_TOKEN, Cred, fresh_app, request, send};

pub(crate) struct Harness {
    pub(crate) app: App,
    pub(crate) router: Router,
}

pub(crate) async fn harness(backend: Backend) -> Harness {
    let app = fresh_app(backend).await;
    let router = app.router();
    Harness { app, router }
}

/// A response: status, headers and JSON body (`null` when empty).
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Harness {
    pub(crate) fn db(&self) -> &Db {
        &self.app.state().db
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        cred: Cred<'_>,
        body: Option<Value>,
    ) -> Resp {
        self.call_with(method, uri, cred, body, &[]).await
    }

    pub(crate) async fn call_with(
        &self,
        method: Method,
        uri: &str,
        cred: Cred<'_>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let reply = send(
            &self.router,
            request(method, uri, cred, body.as_ref(), extra),
        )
        .await;
        Resp {
            body: reply.body(),
            status: reply.status,
            headers: reply.headers,
        }
    }

    pub(crate) async fn login_from(&self, email: &str, password: &str, ip: &str) -> Resp {
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
    pub(crate) async fn login(&self, email: &str, password: &str) -> (String, String) {
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

    pub(crate) async fn create_user(&self, email: &str, role: &str, project: Option<&str>) -> i64 {
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
    pub(crate) async fn create_token(&self, role: &str, project: Option<&str>) -> (i64, String) {
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
    pub(crate) async fn seed_project(&self, key: &str) -> (i64, i64) {
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

    pub(crate) async fn sdk_client(&self, cred: Cred<'_>) -> Result<SdkClient, StatusCode> {
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
