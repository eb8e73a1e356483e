//! Segments: CRUD, validation across environments, references.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error};

backends! {
    segment_crud_and_references => segment_crud_and_references_postgres, segment_crud_and_references_sqlite;
    segments_say_how_many_flags_use_them => segments_say_how_many_flags_use_them_postgres, segments_say_how_many_flags_use_them_sqlite;
}

const SEGMENTS: &str = "/api/v1/projects/p/segments";

async fn segment_crud_and_references(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let (s, seg) = t
        .call(Method::POST, SEGMENTS, Some(json!({"key": "beta", "name": "Beta", "included": ["u1"],
            "rules": [{"id": "r", "clauses": [{"attribute": "email", "op": "ends_with", "values": ["@corp.com"]}]}]})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{seg}");
    assert_eq!(seg["version"], 1);
    assert_eq!(t.data_version("p", "development").await, 1);
    assert_eq!(t.data_version("p", "production").await, 1);
    assert_eq!(
        t.scalar(
            "select count(*) from env_change where kind = 'segment' and key = $1",
            "beta"
        )
        .await,
        3
    );

    let (s, b) = t
        .call(
            Method::POST,
            SEGMENTS,
            Some(json!({"key": "bad", "rules": [{"clauses": [
            {"attribute": "email", "op": "matches", "values": ["ok", "[z-a]"]}]}]})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("rules[0].clauses[0].values[1]"),
    );
    let (s, b) = t
        .call(Method::POST, SEGMENTS, Some(json!({"key": "beta"})))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    let (s, b) = t
        .call(Method::POST, SEGMENTS, Some(json!({"name": "no key"})))
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("key"));

    let url = format!("{SEGMENTS}/beta");
    let (s, b) = t
        .call(
            Method::PUT,
            &url,
            Some(json!({"included": ["u1", "u2"], "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["version"].as_i64(),
            b["included"].as_array().unwrap().len()
        ),
        (Some(2), 2)
    );
    let (s, b) = t.call(Method::PUT, &url, Some(json!({"version": 1}))).await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert_eq!(b["current"]["version"], 2);
    let (s, b) = t
        .call(
            Method::PUT,
            &url,
            Some(json!({"key": "other", "version": 2})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("key"));
    // A segment may not contain itself.
    let (s, b) = t
        .call(Method::PUT, &url, Some(json!({"version": 2, "rules": [{"clauses": [{"op": "in_segment", "values": ["beta"]}]}]})))
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, None);

    // A live flag that uses the segment blocks its deletion.
    t.call(
        Method::POST,
        "/api/v1/projects/p/flags",
        Some(json!({"key": "f"})),
    )
    .await;
    let config = json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "off"},
        "rules": [{"clauses": [{"op": "in_segment", "values": ["beta"]}], "serve": {"variant": "on"}}]});
    let (s, b) = t
        .call(
            Method::PUT,
            "/api/v1/projects/p/flags/f/environments/staging",
            Some(json!({"config": config, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.call(Method::DELETE, &url, None).await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("flag `f`"),
        "{b}"
    );
    // Unknown segment in a flag rule is a validation error at its path.
    let bad = json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "off"},
        "rules": [{"clauses": [{"op": "in_segment", "values": ["ghost"]}], "serve": {"variant": "on"}}]});
    let (s, b) = t
        .call(
            Method::PUT,
            "/api/v1/projects/p/flags/f/environments/staging",
            Some(json!({"config": bad, "version": 2})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("config.rules[0].clauses[0].values[0]"),
    );

    t.call(Method::POST, "/api/v1/projects/p/flags/f/archive", None)
        .await;
    let (s, b) = t
        .call(Method::DELETE, &url, Some(json!({"comment": "gone"})))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = t.call(Method::GET, &url, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (_, list) = t.call(Method::GET, SEGMENTS, None).await;
    assert_eq!(list, json!([]));
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit?project=p&segment=beta", None)
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["segment.delete", "segment.update", "segment.create"]
    );
    assert_eq!(audit["items"][0]["comment"], "gone");
}

async fn segments_say_how_many_flags_use_them(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for key in ["beta", "unused"] {
        let (s, b) = t
            .call(
                Method::POST,
                "/api/v1/projects/p/segments",
                Some(json!({"key": key})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let rule = |env_count: usize| {
        let config = json!({"enabled": true, "off_variant": "off",
            "rules": [{"id": "r1", "clauses": [{"attribute": "", "op": "in_segment", "values": ["beta"]}],
                       "serve": {"variant": "on"}}],
            "default_serve": {"variant": "off"}});
        ["development", "staging", "production"][..env_count]
            .iter()
            .map(|e| (e.to_string(), config.clone()))
            .collect::<serde_json::Map<String, Value>>()
    };
    // `a` names it in three environments, `b` in one: two flags. `c`, archived, does not count.
    for (key, envs) in [("a", 3), ("b", 1), ("c", 2)] {
        let (s, b) = t
            .call(
                Method::POST,
                "/api/v1/projects/p/flags",
                Some(json!({"key": key, "environments": rule(envs)})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = t
        .call(Method::POST, "/api/v1/projects/p/flags/c/archive", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, list) = t
        .call(Method::GET, "/api/v1/projects/p/segments", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let used: Vec<(&str, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap(),
                s["used_by_flags"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(used, [("beta", 2), ("unused", 0)]);
}
