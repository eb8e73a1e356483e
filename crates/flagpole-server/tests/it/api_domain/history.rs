//! Flag history: versions, diff, revert.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::json;

use crate::backends;
use crate::support::{TestApp, assert_error};

backends! {
    history_diff_revert => history_diff_revert_postgres, history_diff_revert_sqlite;
}

async fn history_diff_revert(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let base = "/api/v1/projects/p/flags/f";
    t.call(
        Method::POST,
        "/api/v1/projects/p/flags",
        Some(json!({"key": "f", "name": "First"})),
    )
    .await;
    t.call(
        Method::POST,
        &format!("{base}/environments/production/toggle"),
        Some(json!({"enabled": true, "comment": "go"})),
    )
    .await;
    let (s, b) = t
        .call(
            Method::PATCH,
            base,
            Some(json!({"name": "Second", "tags": ["x"], "version": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, versions) = t.call(Method::GET, &format!("{base}/versions"), None).await;
    assert_eq!(s, StatusCode::OK);
    let list: Vec<(i64, &str)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["comment"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(list, [(3, ""), (2, "go"), (1, "")]);
    assert!(versions[0]["actor"].as_str().unwrap().starts_with("token:"));

    let (s, v1) = t
        .call(Method::GET, &format!("{base}/versions/1"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v1}");
    assert_eq!(v1["state"]["flag"]["name"], "First");
    assert_eq!(v1["state"]["archived"], false);
    assert_eq!(v1["state"]["environments"]["production"]["enabled"], false);
    let (s, b) = t
        .call(Method::GET, &format!("{base}/versions/99"), None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) = t
        .call(Method::GET, &format!("{base}/versions/abc"), None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, None);

    // The kill switch records its version without loading the project: that version
    // still holds the whole flag, every environment, with only `enabled` changed.
    let (s, d) = t
        .call(Method::GET, &format!("{base}/diff?from=1&to=2"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(
        d["changes"],
        json!([{"path": "environments.production.enabled", "before": false, "after": true}])
    );
    let (_, v2) = t
        .call(Method::GET, &format!("{base}/versions/2"), None)
        .await;
    let environments = v2["state"]["environments"].as_object().unwrap();
    assert_eq!(
        environments.keys().collect::<Vec<_>>(),
        v1["state"]["environments"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );

    let (s, d) = t
        .call(Method::GET, &format!("{base}/diff?from=1&to=3"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(
        d["changes"],
        json!([
            {"path": "environments.production.enabled", "before": false, "after": true},
            {"path": "flag.name", "before": "First", "after": "Second"},
            {"path": "flag.tags[0]", "before": null, "after": "x"}
        ])
    );

    // Revert needs the current version; a stale one is refused.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{base}/revert"),
            Some(json!({"to_version": 1, "version": 2})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    let dv = t.data_version("p", "staging").await;
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{base}/revert"),
            Some(json!({"to_version": 1, "version": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 4);
    assert_eq!(b["name"], "First");
    assert_eq!(b["environments"]["production"]["enabled"], false);
    assert_eq!(t.data_version("p", "staging").await, dv + 1);
    let (_, v4) = t
        .call(Method::GET, &format!("{base}/versions/4"), None)
        .await;
    assert_eq!(v4["state"], v1["state"]);
    assert_eq!(v4["comment"], "revert to version 1");
    let (_, d) = t
        .call(Method::GET, &format!("{base}/diff?from=1&to=4"), None)
        .await;
    assert_eq!(d["changes"], json!([]));
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit?project=p&flag=f&limit=1", None)
        .await;
    assert_eq!(audit["items"][0]["action"], "flag.revert");
    assert_eq!(audit["items"][0]["before"]["name"], "Second");

    let (s, b) = t
        .call(
            Method::POST,
            &format!("{base}/revert"),
            Some(json!({"to_version": 42, "version": 4})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
}
