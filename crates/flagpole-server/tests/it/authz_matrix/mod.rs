//! Every endpoint × every kind of credential.
//!
//! The operations come from the OpenAPI document, so an endpoint cannot be added without
//! saying here who may call it: the test fails if the document has an operation the table
//! lacks, or the table names one the document does not have.
//!
//! Expectations per credential kind:
//! - none, a random `fp_api_` token, an SDK key: 401 everywhere except public endpoints
//!   (and the SDK key is accepted by the SDK-only OFREP endpoints);
//! - a role below the one required: 403;
//! - credentials scoped to ANOTHER project on a project's endpoint: 403, not 404. Project
//!   keys are not secrets, and "404 before 403" is the API's rule: a missing project is
//!   404 for everyone, an existing one the caller may not touch is 403;
//! - scoped credentials on global endpoints (users, tokens, creating projects): 403;
//! - an `alerts:trigger` token: its project's Alertmanager webhook and nothing else (403
//!   everywhere, public endpoints aside; 401 where only a session or an SDK key counts);
//!   the webhook takes no other credential (403);
//! - enough rights: reads and evaluations succeed (2xx); writes get anything but 401/403
//!   (and no 5xx). Bodies are well-formed, so a
//!   role check is never masked by a 422 from the body extractor; the "enough rights" calls
//!   may still fail validation or conflict, which is fine here.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagpole_server::auth::{API_TOKEN_PREFIX, Role, generate_secret};
use flagpole_server::db::Backend;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod table;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN, fresh_app};
use Role::{Admin, Reader, Writer};
use table::Access::*;
use table::{Access, table};

/// A kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    None,
    /// A well-formed API token that does not exist.
    Wrong,
    /// The SDK key of main/production.
    SdkKey,
    Reader,
    Writer,
    Admin,
    /// Writer scoped to `main`, the project in the URLs.
    MainWriter,
    /// Writer scoped to `other`.
    OtherWriter,
    /// Admin scoped to `other`.
    OtherAdmin,
    /// The bootstrap admin signed in on the dashboard (cookie + CSRF header).
    AdminSession,
    /// An `alerts:trigger` token (writer role) scoped to `main`.
    Alerts,
}

const CREDS: [Cred; 11] = [
    Cred::None,
    Cred::Wrong,
    Cred::SdkKey,
    Cred::Reader,
    Cred::Writer,
    Cred::Admin,
    Cred::MainWriter,
    Cred::OtherWriter,
    Cred::OtherAdmin,
    Cred::AdminSession,
    Cred::Alerts,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    Unauthenticated,
    Forbidden,
    Allowed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Main,
    Other,
}

/// Role, scope and whether it is a session, for management credentials.
fn identity(cred: Cred) -> Option<(Role, Scope, bool)> {
    Some(match cred {
        Cred::None | Cred::Wrong | Cred::SdkKey | Cred::Alerts => return None,
        Cred::Reader => (Reader, Scope::All, false),
        Cred::Writer => (Writer, Scope::All, false),
        Cred::Admin => (Admin, Scope::All, false),
        Cred::MainWriter => (Writer, Scope::Main, false),
        Cred::OtherWriter => (Writer, Scope::Other, false),
        Cred::OtherAdmin => (Admin, Scope::Other, false),
        Cred::AdminSession => (Admin, Scope::All, true),
    })
}

fn expect(access: Access, cred: Cred) -> Expect {
    let allowed_if = |ok: bool| {
        if ok {
            Expect::Allowed
        } else {
            Expect::Forbidden
        }
    };
    if cred == Cred::Alerts {
        return match access {
            Public | AlertsTrigger => Expect::Allowed,
            Session | Sdk => Expect::Unauthenticated,
            _ => Expect::Forbidden,
        };
    }
    let Some((role, scope, session)) = identity(cred) else {
        return match access {
            Public => Expect::Allowed,
            Sdk if cred == Cred::SdkKey => Expect::Allowed,
            _ => Expect::Unauthenticated,
        };
    };
    match access {
        Public => Expect::Allowed,
        AlertsTrigger => Expect::Forbidden,
        Session | OwnAccount if session => Expect::Allowed,
        Session | Sdk => Expect::Unauthenticated,
        OwnAccount => Expect::Forbidden,
        Global(needed) => allowed_if(scope == Scope::All && role >= needed),
        Filtered(needed) => allowed_if(role >= needed),
        Project(needed) => allowed_if(scope != Scope::Other && role >= needed),
    }
}

/// The seeded world the URLs point into.
struct World {
    router: Router,
    tokens: Vec<(Cred, String)>,
    sdk_key: String,
    session: (String, String),
    victim_user: i64,
    victim_token: i64,
    victim_sdk_key: i64,
    mapping: i64,
    experiment: i64,
    /// A scheduled change of `f1` in production, far in the future.
    change: i64,
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    cred: Cred,
    world: Option<&World>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
        .uri(uri);
    let bearer = |t: &str| format!("Bearer {t}");
    match (cred, world) {
        (Cred::None, _) => {}
        (Cred::Wrong, _) => {
            req = req.header("authorization", bearer(&generate_secret(API_TOKEN_PREFIX)))
        }
        (Cred::SdkKey, Some(w)) => req = req.header("authorization", bearer(&w.sdk_key)),
        (Cred::AdminSession, Some(w)) => {
            req = req
                .header("cookie", format!("fp_session={}", w.session.0))
                .header("x-csrf-token", &w.session.1);
        }
        (Cred::Admin, None) => req = req.header("authorization", bearer(ADMIN_TOKEN)),
        (c, Some(w)) => {
            let token = &w.tokens.iter().find(|(k, _)| *k == c).expect("token").1;
            req = req.header("authorization", bearer(token));
        }
        (c, None) => panic!("{c:?} needs the world"),
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    // An event stream never ends: its status is the answer, the body is not read.
    if res
        .headers()
        .get("content-type")
        .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"))
    {
        return (status, Value::Null);
    }
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Creates something through the API as the bootstrap admin; returns the JSON answer.
async fn admin_post(router: &Router, uri: &str, body: Value) -> Value {
    let (status, value) = call(router, "post", uri, Cred::Admin, None, Some(&body)).await;
    assert!(status.is_success(), "seeding {uri}: {status} {value}");
    value
}

async fn seed(backend: Backend) -> World {
    let app = fresh_app(backend).await;
    let router = app.router();
    admin_post(&router, "/api/v1/projects", json!({"key": "main"})).await;
    admin_post(&router, "/api/v1/projects", json!({"key": "other"})).await;
    admin_post(&router, "/api/v1/projects/main/flags", json!({"key": "f1"})).await;
    admin_post(
        &router,
        "/api/v1/projects/main/segments",
        json!({"key": "s1"}),
    )
    .await;
    let mut tokens = Vec::new();
    for (cred, role, project) in [
        (Cred::Reader, "reader", None),
        (Cred::Writer, "writer", None),
        (Cred::Admin, "admin", None),
        (Cred::MainWriter, "writer", Some("main")),
        (Cred::OtherWriter, "writer", Some("other")),
        (Cred::OtherAdmin, "admin", Some("other")),
    ] {
        let body = json!({"name": format!("{cred:?}"), "role": role, "project": project});
        let created = admin_post(&router, "/api/v1/tokens", body).await;
        tokens.push((cred, created["token"].as_str().unwrap().to_owned()));
    }
    let alerts = json!({"name": "alerts", "role": "writer", "project": "main",
        "scope": "alerts:trigger"});
    let created = admin_post(&router, "/api/v1/tokens", alerts).await;
    tokens.push((Cred::Alerts, created["token"].as_str().unwrap().to_owned()));
    let mapping = admin_post(
        &router,
        "/api/v1/projects/main/alert-mappings",
        json!({"alert": "A", "action": {"kind": "flag_off", "flag": "f1",
            "environment": "production"}}),
    )
    .await;
    let experiment = admin_post(
        &router,
        "/api/v1/projects/main/experiments",
        table::experiment_body(),
    )
    .await;
    let change = admin_post(
        &router,
        "/api/v1/projects/main/flags/f1/environments/production/scheduled-changes",
        json!({"at": "2099-01-01T00:00:00Z", "enabled": true}),
    )
    .await;
    let victim_token = admin_post(
        &router,
        "/api/v1/tokens",
        json!({"name": "victim", "role": "reader"}),
    )
    .await;
    let victim_user = admin_post(
        &router,
        "/api/v1/users",
        json!({"email": "victim@example.com", "password": "long-enough-pw", "role": "reader"}),
    )
    .await;
    let keys = "/api/v1/projects/main/environments/production/sdk-keys";
    let sdk_key = admin_post(&router, keys, json!({"name": "cred"})).await;
    let victim_sdk_key = admin_post(&router, keys, json!({"name": "victim"})).await;
    let login = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let req = Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(login.to_string()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie["fp_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    World {
        router,
        tokens,
        sdk_key: sdk_key["key"].as_str().unwrap().to_owned(),
        session: (cookie, body["csrf_token"].as_str().unwrap().to_owned()),
        victim_user: victim_user["id"].as_i64().unwrap(),
        victim_token: victim_token["id"].as_i64().unwrap(),
        victim_sdk_key: victim_sdk_key["id"].as_i64().unwrap(),
        mapping: mapping["id"].as_i64().unwrap(),
        experiment: experiment["id"].as_i64().unwrap(),
        change: change["id"].as_i64().unwrap(),
    }
}

/// The path with its parameters filled from the seeded world.
fn fill(path: &str, w: &World) -> String {
    let id = if path.starts_with("/api/v1/users/") {
        w.victim_user
    } else if path.starts_with("/api/v1/tokens/") {
        w.victim_token
    } else {
        w.victim_sdk_key
    };
    path.replace("{project}", "main")
        .replace("{env}", "production")
        .replace("{flag}", "f1")
        .replace("{key}", "f1")
        .replace("{segment}", "s1")
        .replace("{variant}", "on")
        .replace("{version}", "1")
        .replace("{mapping}", &w.mapping.to_string())
        .replace("{experiment}", &w.experiment.to_string())
        .replace("{change}", &w.change.to_string())
        .replace("{id}", &id.to_string())
}

/// Every (method, path) of the OpenAPI document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(flagpole_server::http::openapi()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                ops.insert((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn table_matches_the_openapi_document() {
    let documented = documented();
    let listed: BTreeSet<(String, String)> = table()
        .iter()
        .map(|o| (o.method.to_owned(), o.path.to_owned()))
        .collect();
    assert_eq!(listed.len(), table().len(), "an operation is listed twice");
    let missing: Vec<_> = documented.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "operations documented but not in the table (add them with their access rule): \
         {missing:?}\noperations in the table but not documented: {stale:?}"
    );
}

async fn every_endpoint_every_credential(backend: Backend) {
    let world = seed(backend).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for op in table() {
        let uri = format!("{}{}", fill(op.path, &world), op.query);
        // Refusals first, so an allowed call (a deletion) cannot change what they see.
        let mut creds: Vec<(Cred, Expect)> =
            CREDS.iter().map(|&c| (c, expect(op.access, c))).collect();
        creds.sort_by_key(|&(_, e)| e);
        for (cred, expected) in creds {
            let (status, body) = call(
                &world.router,
                op.method,
                &uri,
                cred,
                Some(&world),
                op.body.as_ref(),
            )
            .await;
            checked += 1;
            if std::env::var_os("AUTHZ_TRACE").is_some() {
                eprintln!("{} {uri} {cred:?} {expected:?} -> {status}", op.method);
            }
            let ok = match expected {
                Expect::Unauthenticated => status == StatusCode::UNAUTHORIZED,
                Expect::Forbidden => status == StatusCode::FORBIDDEN,
                // Reads (and evaluations) of the seeded world must succeed outright; writes
                // may be refused for their content (a missing version, a duplicate key).
                Expect::Allowed
                    if op.completes && (op.method == "get" || matches!(op.access, Sdk)) =>
                {
                    status.is_success()
                }
                Expect::Allowed => {
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && !status.is_server_error()
                }
            };
            if !ok {
                failures.push(format!(
                    "{} {uri} as {cred:?}: expected {expected:?}, got {status} {body}",
                    op.method.to_uppercase()
                ));
            }
        }
    }
    // The documentation is served beside the document it describes, not in it; public too.
    for uri in ["/openapi.json", "/docs/"] {
        let (status, _) = call(&world.router, "get", uri, Cred::None, Some(&world), None).await;
        if status != StatusCode::OK {
            failures.push(format!("GET {uri} without credentials: {status}"));
        }
    }
    assert!(checked >= 400, "only {checked} calls");
    assert!(
        failures.is_empty(),
        "{} of {checked} calls wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_endpoint_every_credential_postgres() {
    every_endpoint_every_credential(Backend::Postgres).await;
}

#[tokio::test]
async fn every_endpoint_every_credential_sqlite() {
    every_endpoint_every_credential(Backend::Sqlite).await;
}
