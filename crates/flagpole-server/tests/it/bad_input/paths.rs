//! Malformed path parameters (an id that is not a number, a key that is not UTF-8) get a
//! JSON 400 naming the parameter, not axum's plain text, and change nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagpole_server::db::Backend;
use serde_json::json;

use super::fingerprint;
use crate::backends;
use crate::support::TestApp;

backends! {
    malformed_path_parameters_name_the_field => bad_paths_postgres, bad_paths_sqlite;
}

async fn malformed_path_parameters_name_the_field(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let keys = "/api/v1/projects/p/environments/production/sdk-keys";
    let (s, key) = t
        .call(Method::POST, keys, Some(json!({"name": "paths"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let sdk_key = key["key"].as_str().expect("the new key").to_owned();
    let before = fingerprint(&t).await;

    let patch = Some(json!({"name": "N", "version": 1}));
    let one_key = format!("{keys}/abc");
    for (method, path, body, field) in [
        (Method::GET, "/api/v1/users/abc", None, "id"),
        (Method::PATCH, "/api/v1/users/1.5", patch, "id"),
        (Method::DELETE, "/api/v1/users/-", None, "id"),
        (Method::DELETE, "/api/v1/tokens/abc", None, "id"),
        (Method::DELETE, one_key.as_str(), None, "id"),
        (
            Method::GET,
            "/api/v1/projects/%FF/environments/production/sdk-keys",
            None,
            "project",
        ),
    ] {
        let (s, b) = t.call(method.clone(), path, body).await;
        let what = format!("{method} {path}");
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {b}");
        assert_eq!(b["error"]["code"], "bad_request", "{what}: {b}");
        assert_eq!(b["error"]["field"], field, "{what}: {b}");
        assert!(b["error"]["message"].is_string(), "{what}: {b}");
    }

    // OFREP: a flag key that is not UTF-8.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/ofrep/v1/evaluate/flags/%FF%FE")
        .header("authorization", format!("Bearer {sdk_key}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"context": {"targetingKey": "u"}}"#))
        .unwrap();
    let (s, b) = t.send(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["field"], "key", "{b}");

    assert_eq!(fingerprint(&t).await, before, "bad input changed something");
}
