//! Safe reverts: one environment at a time, a preview of what a revert changes (with a
//! warning when it turns a critical environment on), and history entries that say which
//! environments each version changed.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error};

backends! {
    revert_one_environment => revert_one_environment_postgres, revert_one_environment_sqlite;
    revert_refusals => revert_refusals_postgres, revert_refusals_sqlite;
    revert_of_archived_version => revert_of_archived_version_postgres, revert_of_archived_version_sqlite;
}

const F: &str = "/api/v1/projects/p/flags/f";

async fn toggle(t: &TestApp, env: &str, enabled: bool) {
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{F}/environments/{env}/toggle"),
            Some(json!({"enabled": enabled})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

fn enabled(flag: &Value) -> Vec<(String, bool)> {
    flag["environments"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| (k.clone(), c["enabled"].as_bool().unwrap()))
        .collect()
}

fn on(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// The incident of issue 19: Production killed in the latest version, then a revert to an
/// older version.
async fn revert_one_environment(backend: Backend) {
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
    toggle(&t, "production", true).await; // v2
    toggle(&t, "staging", true).await; // v3
    toggle(&t, "development", true).await; // v4
    toggle(&t, "production", false).await; // v5: killed

    // Each history entry says which environments it changed.
    let (s, versions) = t.call(Method::GET, &format!("{F}/versions"), None).await;
    assert_eq!(s, StatusCode::OK, "{versions}");
    let changed: Vec<(i64, Value)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["environments"].clone()))
        .collect();
    assert_eq!(
        changed,
        [
            (5, json!(["production"])),
            (4, json!(["development"])),
            (3, json!(["staging"])),
            (2, json!(["production"])),
            (1, json!(["development", "production", "staging"])),
        ]
    );
    assert_eq!(versions[1]["definition_changed"], false);
    assert_eq!(versions[4]["definition_changed"], true);
    // A page's last entry is still compared with the version before it.
    let (_, page) = t
        .call(Method::GET, &format!("{F}/versions?limit=2&offset=2"), None)
        .await;
    assert_eq!(page[1]["version"], 2);
    assert_eq!(page[1]["environments"], json!(["production"]));

    // The whole-flag preview lists what changes and warns in plain words that Production
    // would be turned back on.
    let (s, whole) = t
        .call(
            Method::GET,
            &format!("{F}/revert/preview?to_version=2"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{whole}");
    assert_eq!(whole["version"], 5);
    assert_eq!(whole["environment"], Value::Null);
    assert_eq!(whole["definition"], json!([]));
    let listed: Vec<(&str, bool, bool, bool)> = whole["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap(),
                e["critical"].as_bool().unwrap(),
                e["on_before"].as_bool().unwrap(),
                e["on_after"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("development", false, true, false),
            ("staging", false, true, false),
            ("production", true, false, true),
        ]
    );
    assert_eq!(
        whole["environments"][2]["changes"],
        json!([{"path": "enabled", "before": false, "after": true}])
    );
    let warnings = whole["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{whole}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("ON in Production") && warning.contains("critical"),
        "{warning}"
    );
    assert_eq!(whole["problems"], json!([]));
    assert_eq!(whole["comment_required"], false);

    // One environment: staging back to v2 (off), nothing else moves.
    let (s, one) = t
        .call(
            Method::GET,
            &format!("{F}/revert/preview?to_version=2&environment=staging"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["environment"], "staging");
    assert_eq!(one["environments"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["environments"][0]["key"], "staging");
    assert_eq!(one["warnings"], json!([]));

    let dv_production = t.data_version("p", "production").await;
    let dv_staging = t.data_version("p", "staging").await;
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{F}/revert"),
            Some(json!({"to_version": 2, "environment": "staging", "version": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 6);
    assert_eq!(
        enabled(&b),
        on(&[
            ("development", true),
            ("production", false),
            ("staging", false)
        ])
    );
    // Only staging's SDKs see a new version.
    assert_eq!(t.data_version("p", "production").await, dv_production);
    assert_eq!(t.data_version("p", "staging").await, dv_staging + 1);
    let (_, versions) = t
        .call(Method::GET, &format!("{F}/versions?limit=1"), None)
        .await;
    assert_eq!(versions[0]["environments"], json!(["staging"]));
    assert_eq!(
        versions[0]["comment"],
        "revert environment staging to version 2"
    );
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit?project=p&flag=f&limit=1", None)
        .await;
    let entry = &audit["items"][0];
    assert_eq!(entry["action"], "flag.revert");
    assert_eq!(entry["before"]["environment"], "staging");
    assert_eq!(entry["before"]["config"]["enabled"], true);
    assert_eq!(entry["after"]["config"]["enabled"], false);

    // The whole-flag revert still exists, and does what its preview said.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{F}/revert"),
            Some(json!({"to_version": 2, "version": 6, "comment": "back to v2"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        enabled(&b),
        on(&[
            ("development", false),
            ("production", true),
            ("staging", false)
        ])
    );
}

async fn revert_refusals(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/flags",
            Some(json!({"key": "f", "kind": "string", "variants": [
                {"key": "a", "value": "A"}, {"key": "b", "value": "B"}, {"key": "c", "value": "C"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let put = |serve: &str, version: i64| {
        json!({"config": {"enabled": true, "off_variant": "c",
            "default_serve": {"variant": serve}}, "version": version})
    };
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{F}/environments/production"),
            Some(put("b", 1)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}"); // v2 serves b
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{F}/environments/production"),
            Some(put("a", 2)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}"); // v3 serves a
    let (s, b) = t
        .call(
            Method::PATCH,
            F,
            Some(json!({"version": 3, "variants": [
                {"key": "a", "value": "A"}, {"key": "c", "value": "C"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}"); // v4: no variant b any more

    // Restoring production's v2 config would serve a variant that no longer exists: the
    // preview says so, the revert is refused naming the field, and nothing is written.
    let field = "environments.production.default_serve.variant";
    let (s, preview) = t
        .call(
            Method::GET,
            &format!("{F}/revert/preview?to_version=2&environment=production"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert_eq!(preview["problems"][0]["field"], field, "{preview}");
    let audits = t.audit_count().await;
    let url = format!("{F}/revert");
    let revert = |body: Value| t.call(Method::POST, &url, Some(body));
    let (s, b) = revert(json!({"to_version": 2, "environment": "production", "version": 4})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    assert_eq!(t.audit_count().await, audits);

    // Stale version: 409 with the flag as stored.
    let (s, b) = revert(json!({"to_version": 3, "environment": "production", "version": 3})).await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert_eq!(b["current"]["version"], 4);
    // Unknown environment: 404; one created after the version: 422 naming `environment`.
    let (s, b) = revert(json!({"to_version": 3, "environment": "nope", "version": 4})).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/environments",
            Some(json!({"key": "qa"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = revert(json!({"to_version": 3, "environment": "qa", "version": 4})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("environment"));

    // With comments required, a revert touching production needs one; staging does not.
    let (s, b) = t
        .call(
            Method::PATCH,
            "/api/v1/projects/p",
            Some(json!({"require_critical_comment": true, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, preview) = t
        .call(
            Method::GET,
            &format!("{F}/revert/preview?to_version=1&environment=production"),
            None,
        )
        .await;
    assert_eq!(preview["comment_required"], true, "{preview}");
    let (s, b) = revert(json!({"to_version": 1, "environment": "production", "version": 4})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (s, b) = revert(json!({"to_version": 1, "environment": "staging", "version": 4})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = revert(json!({
        "to_version": 1, "environment": "production", "version": 5, "comment": "undo the rollout"
    }))
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["environments"]["production"]["enabled"], false);
    let (_, versions) = t
        .call(Method::GET, &format!("{F}/versions?limit=1"), None)
        .await;
    assert_eq!(versions[0]["comment"], "undo the rollout");
}

/// A version where the flag was archived: the whole flag cannot go back to it while a live
/// flag needs it, one environment's config can (it archives nothing).
async fn revert_of_archived_version(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let flags = "/api/v1/projects/p/flags";
    for key in ["f", "dep"] {
        let (s, b) = t.call(Method::POST, flags, Some(json!({"key": key}))).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    for (action, version) in [("archive", 1), ("unarchive", 2)] {
        let (s, b) = t
            .call(
                Method::POST,
                &format!("{F}/{action}"),
                Some(json!({"version": version})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let config = json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "on"},
        "prerequisites": [{"flag": "f", "variants": ["on"]}]});
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{flags}/dep/environments/production"),
            Some(json!({"config": config, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let url = format!("{F}/revert");
    let (s, b) = t
        .call(
            Method::POST,
            &url,
            Some(json!({"to_version": 2, "version": 3})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("`dep`"),
        "{b}"
    );
    let body = json!({"to_version": 2, "environment": "production", "version": 3});
    let (s, b) = t.call(Method::POST, &url, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["archived"].as_bool(), b["version"].as_i64()),
        (Some(false), Some(4))
    );
}
