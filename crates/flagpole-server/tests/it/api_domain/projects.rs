//! Projects and environments.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::json;

use crate::backends;
use crate::support::{TestApp, assert_error, token};

backends! {
    project_crud => project_crud_postgres, project_crud_sqlite;
    project_keys_are_url_segments => project_keys_are_url_segments_postgres, project_keys_are_url_segments_sqlite;
    environment_keys_are_url_segments => environment_keys_are_url_segments_postgres, environment_keys_are_url_segments_sqlite;
    environment_crud => environment_crud_postgres, environment_crud_sqlite;
    roles_and_scopes => roles_and_scopes_postgres, roles_and_scopes_sqlite;
}

async fn project_crud(backend: Backend) {
    let t = TestApp::new(backend).await;
    let (s, created) = t
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"key": "shop", "name": "Shop"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let envs: Vec<(&str, i64)> = created["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap(),
                e["sort_order"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        envs,
        [("development", 0), ("staging", 1), ("production", 2)]
    );
    assert_eq!(created["version"], 1);

    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"key": "no spaces"})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("key"));
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"key": "shop"})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);

    let (s, list) = t.call(Method::GET, "/api/v1/projects", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Updates need the version; a stale one gets 409 with the stored project.
    let (s, b) = t
        .call(
            Method::PATCH,
            "/api/v1/projects/shop",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("version"));
    let (s, b) = t
        .call(
            Method::PATCH,
            "/api/v1/projects/shop",
            Some(json!({"name": "Shop 2", "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["name"].as_str(), b["version"].as_i64()),
        (Some("Shop 2"), Some(2))
    );
    let (s, b) = t
        .call(
            Method::PATCH,
            "/api/v1/projects/shop",
            Some(json!({"name": "late", "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert_eq!(b["current"]["version"], 2);
    assert_eq!(b["current"]["name"], "Shop 2");

    // If-Match works, quoted or not.
    let req = axum::http::Request::builder()
        .method(Method::PATCH)
        .uri("/api/v1/projects/shop")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("content-type", "application/json")
        .header("if-match", "\"2\"")
        .body(axum::body::Body::from(r#"{"description": "d"}"#))
        .unwrap();
    let (s, b) = t.send(req).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 3);

    let (s, b) = t.call(Method::GET, "/api/v1/projects/nope", None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);

    // Delete cascades: the flag goes with it, the audit entry stays.
    t.call(
        Method::POST,
        "/api/v1/projects/shop/flags",
        Some(json!({"key": "f"})),
    )
    .await;
    let (s, _) = t.call(Method::DELETE, "/api/v1/projects/shop", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(Method::GET, "/api/v1/projects/shop/flags/f", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        t.scalar("select count(*) from flag where key = $1", "f")
            .await,
        0
    );
    let (_, audit) = t.call(Method::GET, "/api/v1/audit?actor=", None).await;
    assert!(
        audit["items"].as_array().unwrap().is_empty(),
        "exact actor filter"
    );
    let (_, audit) = t.call(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(audit["items"][0]["action"], "project.delete");
}

async fn environment_crud(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/flags",
            Some(json!({"key": "f"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let (s, env) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/environments",
            Some(json!({"key": "qa", "name": "QA"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{env}");
    assert_eq!(env["sort_order"], 3);
    assert_eq!(env["data_version"], 0);
    // The existing flag has a default config there.
    let (_, flag) = t
        .call(Method::GET, "/api/v1/projects/p/flags/f", None)
        .await;
    assert_eq!(
        flag["environments"]["qa"],
        json!({"enabled": false, "off_variant": "off", "targets": [], "prerequisites": [],
               "rules": [], "default_serve": {"variant": "on"}})
    );

    let (s, b) = t
        .call(
            Method::PATCH,
            "/api/v1/projects/p/environments/qa",
            Some(json!({"sort_order": -1, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, list) = t
        .call(Method::GET, "/api/v1/projects/p/environments", None)
        .await;
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["qa", "development", "staging", "production"]);

    let (s, b) = t
        .call(
            Method::PATCH,
            "/api/v1/projects/p/environments/qa",
            Some(json!({"version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert_eq!(b["current"]["version"], 2);

    let (s, _) = t
        .call(Method::DELETE, "/api/v1/projects/p/environments/qa", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = t
        .call(Method::GET, "/api/v1/projects/p/environments/qa", None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (_, flag) = t
        .call(Method::GET, "/api/v1/projects/p/flags/f", None)
        .await;
    assert!(flag["environments"].get("qa").is_none());
}

async fn roles_and_scopes(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("a").await;
    t.project("b").await;
    let a_id = t.scalar("select id from project where key = $1", "a").await;
    let reader = token(t.db(), "reader", None).await;
    let writer_a = token(t.db(), "writer", Some(a_id)).await;

    let (s, _) = t
        .call_as(&reader, Method::GET, "/api/v1/projects/a", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = t
        .call_as(
            &reader,
            Method::POST,
            "/api/v1/projects/a/flags",
            Some(json!({"key": "f"})),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, None);
    let (s, b) = t
        .call_as(
            &writer_a,
            Method::POST,
            "/api/v1/projects/a/flags",
            Some(json!({"key": "f"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = t
        .call_as(
            &writer_a,
            Method::POST,
            "/api/v1/projects/b/flags",
            Some(json!({"key": "f"})),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, None);
    let (s, b) = t
        .call_as(
            &writer_a,
            Method::POST,
            "/api/v1/projects/a/environments",
            Some(json!({"key": "qa"})),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, None);
    let (s, list) = t
        .call_as(&writer_a, Method::GET, "/api/v1/projects", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, _) = t
        .call_as("fp_api_wrong", Method::GET, "/api/v1/projects", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A scoped actor sees only its project's audit entries, and not another project's.
    let (s, audit) = t
        .call_as(&writer_a, Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["project"] == "a"), "{audit}");
    let (s, b) = t
        .call_as(&writer_a, Method::GET, "/api/v1/audit?project=b", None)
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, None);
}

/// A project key is a URL segment: `.`, `..` and any key with a character other than a
/// letter, digit, `-` or `_` is refused with a 422 naming `key`, and nothing is written.
async fn project_keys_are_url_segments(backend: Backend) {
    let t = TestApp::new(backend).await;
    for bad in [".", "..", "a.b", "shop.", "a/b", "a b", "é", "%2e", ""] {
        let (s, b) = t
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(json!({"key": bad, "name": "Bad"})),
            )
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("key"));
    }
    let (s, list) = t.call(Method::GET, "/api/v1/projects", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list, json!([]), "a refused key wrote nothing");
    for good in ["shop", "Shop_2", "a-b", "0"] {
        let (s, b) = t
            .call(Method::POST, "/api/v1/projects", Some(json!({"key": good})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{good}: {b}");
        let (s, b) = t
            .call(Method::GET, &format!("/api/v1/projects/{good}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{good}: {b}");
    }
}

/// An environment key is a URL segment by the same rule as a project key: refused with a
/// 422 naming `key` and nothing written; good keys are reachable under their project.
async fn environment_keys_are_url_segments(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let path = "/api/v1/projects/p/environments";
    let (_, before) = t.call(Method::GET, path, None).await;
    for bad in [
        ".", "..", "a.b", "eu.west", "qa.", "a/b", "a b", "é", "%2e", "",
    ] {
        let (s, b) = t
            .call(Method::POST, path, Some(json!({"key": bad, "name": "Bad"})))
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("key"));
    }
    let (s, after) = t.call(Method::GET, path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(after, before, "a refused key wrote nothing");
    for good in ["qa", "EU_west-2", "0"] {
        let (s, b) = t.call(Method::POST, path, Some(json!({"key": good}))).await;
        assert_eq!(s, StatusCode::CREATED, "{good}: {b}");
        let (s, b) = t.call(Method::GET, &format!("{path}/{good}"), None).await;
        assert_eq!(s, StatusCode::OK, "{good}: {b}");
    }
}
