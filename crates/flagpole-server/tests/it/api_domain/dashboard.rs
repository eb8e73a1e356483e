//! What the web dashboard needs beyond the REST API: the evaluation debugger, the live
//! event stream and the SPA fallback that must not swallow API 404s.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagpole_server::db::Backend;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::backends;
use crate::support::auth::harness;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Cred, TestApp, app_over, request};

backends! {
    debugger_explains => debugger_explains_postgres, debugger_explains_sqlite;
    events_follow_writes => events_follow_writes_postgres, events_follow_writes_sqlite;
    events_end_with_the_session => events_end_with_the_session_postgres, events_end_with_the_session_sqlite;
}

async fn debugger_explains(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let config = json!({"enabled": true, "off_variant": "off",
        "rules": [{"id": "pro-users", "description": "Paying customers first",
                   "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                   "serve": {"variant": "on"}}],
        "default_serve": {"variant": "off"}});
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/flags",
            Some(json!({"key": "beta", "environments": {"production": config}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    t.call(
        Method::POST,
        "/api/v1/projects/p/flags",
        Some(json!({"key": "alpha"})),
    )
    .await;
    let url = "/api/v1/projects/p/environments/production/evaluate";

    let (s, b) = t
        .call(
            Method::POST,
            url,
            Some(json!({"key": "u1", "attributes": {"plan": "pro"}, "flag": "beta"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["environment"], "production");
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["flag"], "beta");
    assert_eq!(results[0]["value"], true);
    assert_eq!(results[0]["variant"], "on");
    assert_eq!(results[0]["reason"], "RULE_MATCH");
    assert_eq!(results[0]["rule_index"], 0);
    assert_eq!(results[0]["rule_id"], "pro-users");
    // The dashboard names the rule by what it is for, not by its id.
    assert_eq!(results[0]["rule_description"], "Paying customers first");

    // All flags, by key: alpha is off in production, beta falls through for a free user.
    let (s, b) = t
        .call(
            Method::POST,
            url,
            Some(json!({"key": "u2", "attributes": {"plan": "free"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let reasons: Vec<(&str, &str)> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["flag"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, [("alpha", "OFF"), ("beta", "FALLTHROUGH")]);

    let (s, b) = t
        .call(
            Method::POST,
            url,
            Some(json!({"key": "u1", "flag": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"][0]["reason"], "ERROR");
    assert_eq!(b["results"][0]["error"], "FLAG_NOT_FOUND");

    // Unknown fields are named, like every other body.
    let (s, b) = t
        .call(
            Method::POST,
            url,
            Some(json!({"key": "u1", "atributes": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
}

/// Reads SSE frames until one with `event: <name>` arrives; returns its data.
async fn next_event(body: &mut Body, name: &str) -> Value {
    let mut buffer = String::new();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            buffer.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some((event, rest)) = buffer.split_once("\n\n") {
            let event = event.to_owned();
            buffer = rest.to_owned();
            let mut kind = "";
            let mut data = "";
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = v.trim();
                }
            }
            if kind == name {
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

async fn events_follow_writes(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    t.project("q").await;
    let req = Request::get("/api/v1/projects/p/events")
        .header("authorization", format!("Bearer {}", t.admin))
        .body(Body::empty())
        .unwrap();
    let res = t.app.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    next_event(&mut body, "ready").await;

    // A write to another project is not announced here; the next one to this project is.
    t.call(
        Method::POST,
        "/api/v1/projects/q/flags",
        Some(json!({"key": "other"})),
    )
    .await;
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/flags",
            Some(json!({"key": "f"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let first = next_event(&mut body, "change").await;
    let version = t
        .data_version("p", first["environment"].as_str().unwrap())
        .await;
    assert_eq!(first["version"], version);
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/flags/f/environments/production/toggle",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Creating the flag announced every environment; the toggle follows them.
    loop {
        let change = next_event(&mut body, "change").await;
        if change["environment"] == "production"
            && change["version"] == t.data_version("p", "production").await
        {
            break;
        }
    }

    // Shutdown ends the stream instead of holding the drain.
    t.state().shutdown.cancel();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end on shutdown");

    // Unknown API paths stay JSON 404s; other paths belong to the dashboard.
    let (s, b) = t.call(Method::GET, "/api/v1/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["error"]["code"], "not_found", "{b}");
}

/// A dashboard connected to one replica hears of writes made through another (Postgres
/// LISTEN/NOTIFY → push hub → event), not only of its own replica's writes.
#[tokio::test]
async fn events_see_other_replicas_postgres() {
    let t = TestApp::new(Backend::Postgres).await;
    t.project("p").await;
    let other = app_over(t.db().clone()).await;
    let req = Request::get("/api/v1/projects/p/events")
        .header("authorization", format!("Bearer {}", t.admin))
        .body(Body::empty())
        .unwrap();
    let res = t.app.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    next_event(&mut body, "ready").await;

    let req = Request::post("/api/v1/projects/p/flags")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("content-type", "application/json")
        .body(Body::from(json!({"key": "elsewhere"}).to_string()))
        .unwrap();
    let res = other.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let production = t.data_version("p", "production").await;
    loop {
        let change = next_event(&mut body, "change").await;
        if change["environment"] == "production" {
            assert_eq!(change["version"], production);
            break;
        }
    }
    other.state().shutdown.cancel();
    t.state().shutdown.cancel();
}

/// A live-updates stream opened with a session cookie ends when the session expires, with
/// an `expired` event first (the dashboard then asks to sign in instead of reconnecting
/// into a 401).
async fn events_end_with_the_session(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("p").await;
    let (cookie, _) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The session has 1.5 s left.
    sqlx::query("update session set expires_at = $1")
        .bind(flagpole_server::db::now_ms() + 1500)
        .execute(&h.db().pool)
        .await
        .unwrap();
    let req = request(
        Method::GET,
        "/api/v1/projects/p/events",
        Cred::Cookie(&cookie, None),
        None,
        &[],
    );
    let res = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    next_event(&mut body, "ready").await;
    next_event(&mut body, "expired").await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("the stream ends after `expired`");
    assert!(end.is_none(), "no more frames after `expired`");
    // And the session is no good for opening another one.
    let req = request(
        Method::GET,
        "/api/v1/projects/p/events",
        Cred::Cookie(&cookie, None),
        None,
        &[],
    );
    let res = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
