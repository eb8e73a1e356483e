//! Renaming a variant key: every reference in every environment and in other flags'
//! prerequisites, in one write (one version, one history entry, one audit entry).

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{Cred, TestApp, assert_error, count, request};

backends! {
    renames_every_reference => renames_every_reference_postgres, renames_every_reference_sqlite;
    refuses_taken_keys_and_stale_versions => refuses_taken_keys_and_stale_versions_postgres, refuses_taken_keys_and_stale_versions_sqlite;
}

const FLAGS: &str = "/api/v1/projects/p/flags";

/// A string flag `button` (`a`, `b`) whose production config names `a` in every place a
/// config can, and a flag `banner` that requires `button` to serve `a` in production.
async fn setup(t: &TestApp) {
    t.project("p").await;
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({
                "key": "button", "kind": "string",
                "variants": [{"key": "a", "value": "Buy"}, {"key": "b", "value": "Order"}],
                "environments": {"production": {
                    "enabled": true, "off_variant": "a",
                    "targets": [{"variant": "a", "keys": ["u1"]}],
                    "rules": [
                        {"id": "r1", "clauses": [], "serve": {"variant": "a"}},
                        {"id": "r2", "clauses": [], "serve": {"rollout": {"weights": [
                            {"variant": "a", "weight": 30000}, {"variant": "b", "weight": 70000}]}}}
                    ],
                    "default_serve": {"rollout": {"weights": [
                        {"variant": "b", "weight": 50000}, {"variant": "a", "weight": 50000}]}}
                }}
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({
                "key": "banner",
                "environments": {"production": {
                    "enabled": true, "off_variant": "off",
                    "prerequisites": [{"flag": "button", "variants": ["a", "b"]}],
                    "default_serve": {"variant": "on"}
                }}
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

fn rename_url(variant: &str) -> String {
    format!("{FLAGS}/button/variants/{variant}/rename")
}

async fn renames_every_reference(backend: Backend) {
    let t = TestApp::new(backend).await;
    setup(&t).await;
    let audits = t.audit_count().await;
    let versions = count(t.db(), "select count(*) from flag_version").await;
    let prod = t.data_version("p", "production").await;

    let (s, f) = t
        .call(
            Method::POST,
            &rename_url("a"),
            Some(json!({"to": "buy", "version": 1, "comment": "clearer key"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["version"], 2, "one version bump");
    assert_eq!(
        f["variants"],
        json!([{"key": "buy", "value": "Buy"}, {"key": "b", "value": "Order"}])
    );
    let c = &f["environments"]["production"];
    assert_eq!(c["off_variant"], "buy");
    assert_eq!(c["targets"][0]["variant"], "buy");
    assert_eq!(c["rules"][0]["serve"]["variant"], "buy");
    assert_eq!(
        c["rules"][1]["serve"]["rollout"]["weights"],
        json!([{"variant": "buy", "weight": 30000}, {"variant": "b", "weight": 70000}])
    );
    assert_eq!(
        c["default_serve"]["rollout"]["weights"],
        json!([{"variant": "b", "weight": 50000}, {"variant": "buy", "weight": 50000}])
    );
    // Environments created with the default config served `a` (the first variant) when on.
    for env in ["development", "staging"] {
        assert_eq!(f["environments"][env]["default_serve"]["variant"], "buy");
        assert_eq!(f["environments"][env]["off_variant"], "b");
    }

    // The other flag's prerequisite follows, and it got a version of its own.
    let (s, banner) = t.call(Method::GET, &format!("{FLAGS}/banner"), None).await;
    assert_eq!(s, StatusCode::OK, "{banner}");
    assert_eq!(
        banner["environments"]["production"]["prerequisites"],
        json!([{"flag": "button", "variants": ["buy", "b"]}])
    );
    assert_eq!(banner["version"], 2);

    // One write: one data-version bump, one audit entry, one history entry for `button`
    // (and one for `banner`, whose stored state changed).
    assert_eq!(t.data_version("p", "production").await, prod + 1);
    assert_eq!(t.audit_count().await, audits + 1);
    assert_eq!(
        count(t.db(), "select count(*) from flag_version").await,
        versions + 2
    );
    let (_, audit) = t
        .call(
            Method::GET,
            "/api/v1/audit?project=p&flag=button&limit=1",
            None,
        )
        .await;
    assert_eq!(audit["items"][0]["action"], "flag.variant_rename");
    assert_eq!(audit["items"][0]["comment"], "clearer key");
    assert_eq!(audit["items"][0]["before"]["variants"][0]["key"], "a");
    let (_, history) = t
        .call(
            Method::GET,
            &format!("{FLAGS}/button/versions?limit=1"),
            None,
        )
        .await;
    assert_eq!(history[0]["version"], 2, "{history}");
    assert_eq!(
        history[0]["environments"],
        json!(["development", "production", "staging"])
    );

    // The environment serves the renamed variant.
    let (s, e) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/environments/production/evaluate",
            Some(json!({"key": "u1", "flag": "button"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["results"][0]["variant"], "buy", "{e}");
    assert_eq!(e["results"][0]["value"], "Buy", "{e}");

    // Renaming it back with If-Match instead of a body version works the same way.
    let req = request(
        Method::POST,
        &rename_url("buy"),
        Cred::Bearer(&t.admin),
        Some(&json!({"to": "a"})),
        &[("if-match", "\"2\"")],
    );
    let (s, f) = t.send(req).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["version"], 3);
    assert_eq!(f["environments"]["production"]["off_variant"], "a");
}

async fn refuses_taken_keys_and_stale_versions(backend: Backend) {
    let t = TestApp::new(backend).await;
    setup(&t).await;
    let audits = t.audit_count().await;
    let prod = t.data_version("p", "production").await;
    let unchanged = |f: &Value| {
        assert_eq!(f["version"], 1, "{f}");
        assert_eq!(f["variants"][0]["key"], "a", "{f}");
        assert_eq!(f["environments"]["production"]["off_variant"], "a", "{f}");
    };

    // To a key another variant has: 422 naming `to`.
    let (s, b) = t
        .call(
            Method::POST,
            &rename_url("a"),
            Some(json!({"to": "b", "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("to"));
    // Not a key at all.
    let (s, b) = t
        .call(
            Method::POST,
            &rename_url("a"),
            Some(json!({"to": "has space", "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("to"));
    // A stale version: 409 with the flag as stored.
    let (s, b) = t
        .call(
            Method::POST,
            &rename_url("a"),
            Some(json!({"to": "c", "version": 7})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    unchanged(&b["current"]);
    let req = request(
        Method::POST,
        &rename_url("a"),
        Cred::Bearer(&t.admin),
        Some(&json!({"to": "c"})),
        &[("if-match", "\"5\"")],
    );
    let (s, b) = t.send(req).await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    // No version at all: the rename could silently undo someone's edit.
    let (s, b) = t
        .call(Method::POST, &rename_url("a"), Some(json!({"to": "c"})))
        .await;
    assert!(s.is_client_error(), "{s} {b}");
    // A variant the flag does not have.
    let (s, b) = t
        .call(
            Method::POST,
            &rename_url("zzz"),
            Some(json!({"to": "c", "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);

    // Nothing was written by any of them.
    let (_, f) = t.call(Method::GET, &format!("{FLAGS}/button"), None).await;
    unchanged(&f);
    assert_eq!(t.audit_count().await, audits);
    assert_eq!(t.data_version("p", "production").await, prod);
}
