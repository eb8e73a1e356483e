//! Operations: Prometheus metrics, request ids, readiness with the cache check, and the API
//! documentation (Swagger UI served from the binary, the OpenAPI document).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flagpole_server::App;
use flagpole_server::auth::hash_secret;
use flagpole_server::db::Backend;
use flagpole_server::testing::fresh_db;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{app_over, bool_flag, exec, insert_flag, send};

const SDK_KEY: &str = "fp_sdk_opstest000000000000000000000000000000000";

/// An app with one environment holding flag `ops-flag` (on, no rules) and `SDK_KEY`.
async fn app(backend: Backend) -> App {
    let db = fresh_db(backend).await.unwrap();
    let project = exec(
        &db,
        "insert into project (key, name, created_at, updated_at) values ('p', 'P', 0, 0) returning id",
        &[],
    )
    .await;
    let env = exec(
        &db,
        "insert into environment (project_id, key, name, created_at, updated_at) \
         values ($1, 'production', 'Production', 0, 0) returning id",
        &[json!(project)],
    )
    .await;
    insert_flag(
        &db,
        project,
        env,
        bool_flag("ops-flag"),
        json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "on"}}),
    )
    .await;
    exec(
        &db,
        "insert into sdk_key (environment_id, name, key_hash, prefix, created_by, created_at) \
         values ($1, 'k', $2, 'fp_sdk_', 't', 0) returning id",
        &[json!(env), json!(hash_secret(SDK_KEY))],
    )
    .await;
    app_over(db).await
}

async fn get(app: &App, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let reply = send(&app.router(), req).await;
    (reply.status, reply.headers, reply.bytes.to_vec())
}

fn plain(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

on_both_backends!(metrics_and_readiness);

async fn metrics_and_readiness(backend: Backend) {
    let app = app(backend).await;
    let (status, _, body) = get(&app, plain("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let checks = health["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "caches" && c["ok"] == true),
        "{health}"
    );
    // The warm-up at start loaded the environment.
    assert_eq!(app.state().snapshots.cached_environments().await, 1);

    let eval = Request::post("/ofrep/v1/evaluate/flags/ops-flag")
        .header(header::AUTHORIZATION, format!("Bearer {SDK_KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"context":{"targetingKey":"u"}}"#))
        .unwrap();
    assert_eq!(get(&app, eval).await.0, StatusCode::OK);
    // Under /api (other paths belong to the dashboard's SPA fallback and answer 200).
    assert_eq!(
        get(&app, plain("/api/v1/no/such/route/42")).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, headers, body) = get(&app, plain("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body).unwrap();
    // Labelled by the route template, not the raw path.
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/ofrep/v1/evaluate/flags/{key}",status="200"}"#),
        "{text}"
    );
    assert!(text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"}"#));
    assert!(!text.contains("/no/such/route/42"));
    assert!(text.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/ofrep/v1/evaluate/flags/{key}",status="200",le="0.001"}"#));
    assert!(text.contains(r#"flag_evaluations_total{reason="STATIC"}"#));
    for gauge in [
        "db_pool_connections ",
        "db_pool_idle_connections ",
        "db_pool_max_connections 8",
        "snapshot_cache_environments ",
    ] {
        assert!(text.contains(gauge), "{gauge} missing");
    }
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = app(Backend::Sqlite).await;
    let (_, headers, _) = get(&app, plain("/healthz")).await;
    let generated = headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    assert_eq!(
        &generated[14..15],
        "4",
        "UUID version 4 layout: {generated}"
    );
    let (_, again, _) = get(&app, plain("/healthz")).await;
    assert_ne!(again["x-request-id"], generated.as_str(), "ids are unique");

    let req = Request::get("/healthz")
        .header("x-request-id", "from-the-load-balancer")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = get(&app, req).await;
    assert_eq!(headers["x-request-id"], "from-the-load-balancer");
    // Errors carry it too.
    let req = Request::get("/api/nope")
        .header("x-request-id", "r-404")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = get(&app, req).await;
    assert_eq!(
        (status, &headers["x-request-id"]),
        (StatusCode::NOT_FOUND, &"r-404".parse().unwrap())
    );
}

#[tokio::test]
async fn docs_are_served_from_the_binary() {
    let app = app(Backend::Sqlite).await;
    let (status, _, body) = get(&app, plain("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        doc,
        serde_json::to_value(flagpole_server::http::openapi()).unwrap()
    );
    for path in [
        "/ofrep/v1/evaluate/flags/{key}",
        "/ofrep/v1/evaluate/flags",
        "/metrics",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the document"
        );
    }
    assert!(
        doc["components"]["securitySchemes"]
            .get("sdk_key")
            .is_some()
    );

    let (status, _, body) = get(&app, plain("/docs/")).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("swagger-ui"));
    // Every asset the page loads is relative (served here, not from a CDN) and present.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} not referenced");
        let (status, _, body) = get(&app, plain(&format!("/docs/{asset}"))).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(!body.is_empty());
    }
    let (_, _, init) = get(&app, plain("/docs/swagger-initializer.js")).await;
    assert!(
        String::from_utf8(init)
            .unwrap()
            .contains("\"/openapi.json\"")
    );
}
