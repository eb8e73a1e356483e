//! Critical environments: an explicit setting (not a name match), and the comment a
//! project can require on every write that touches one.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error};

backends! {
    critical_is_a_setting => critical_is_a_setting_postgres, critical_is_a_setting_sqlite;
    comment_required_in_critical => comment_required_in_critical_postgres, comment_required_in_critical_sqlite;
}

const P: &str = "/api/v1/projects/p";

fn critical_of(envs: &Value) -> Vec<(String, bool)> {
    envs.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["critical"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn critical_is_a_setting(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    // The environment a project is created with as production is critical; the others
    // are not.
    let (s, envs) = t
        .call(Method::GET, &format!("{P}/environments"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{envs}");
    let expected = [
        ("development", false),
        ("staging", false),
        ("production", true),
    ];
    let expected: Vec<(String, bool)> = expected.map(|(k, c)| (k.to_owned(), c)).to_vec();
    assert_eq!(critical_of(&envs), expected);
    let (_, project) = t.call(Method::GET, P, None).await;
    assert_eq!(project["require_critical_comment"], false);

    // Not a name match: `preprod` is not critical unless asked, `live` is when asked.
    let (s, preprod) = t
        .call(
            Method::POST,
            &format!("{P}/environments"),
            Some(json!({"key": "preprod", "name": "Pre-production"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{preprod}");
    assert_eq!(preprod["critical"], false);
    let (s, live) = t
        .call(
            Method::POST,
            &format!("{P}/environments"),
            Some(json!({"key": "live", "critical": true, "comment": "the real one"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{live}");
    assert_eq!(live["critical"], true);

    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{P}/environments/live"),
            Some(json!({"critical": false, "version": 1, "comment": "demoted"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["critical"].as_bool(), b["version"].as_i64()),
        (Some(false), Some(2))
    );
    let (_, got) = t
        .call(Method::GET, &format!("{P}/environments/live"), None)
        .await;
    assert_eq!(got["critical"], false);
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit?project=p&limit=1", None)
        .await;
    let entry = &audit["items"][0];
    assert_eq!(entry["action"], "environment.update");
    assert_eq!(entry["comment"], "demoted");
    assert_eq!(entry["before"]["critical"], true);
    assert_eq!(entry["after"]["critical"], false);

    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{P}/environments/live"),
            Some(json!({"critical": "yes", "version": 2})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("critical"));
}

/// The flag's version and the number of audit entries: what a refused write must leave.
async fn written(t: &TestApp) -> (i64, i64) {
    let (_, f) = t.call(Method::GET, &format!("{P}/flags/f"), None).await;
    (f["version"].as_i64().unwrap(), t.audit_count().await)
}

async fn comment_required_in_critical(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let (s, f) = t
        .call(
            Method::POST,
            &format!("{P}/flags"),
            Some(json!({"key": "f", "kind": "string", "variants": [
                {"key": "a", "value": "A"}, {"key": "b", "value": "B"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    let toggle = |env: &str| format!("{P}/flags/f/environments/{env}/toggle");

    // Without the project setting, a write to production needs no comment (API clients
    // written before it keep working).
    let (s, b) = t
        .call(
            Method::POST,
            &toggle("production"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, b) = t
        .call(
            Method::PATCH,
            P,
            Some(json!({"require_critical_comment": true, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["require_critical_comment"], true);

    // Staging is not critical: no comment needed.
    let (s, b) = t
        .call(
            Method::POST,
            &toggle("staging"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Production is: refused, naming `comment`, and nothing is written.
    let before = written(&t).await;
    for comment in [None, Some("   ")] {
        let (s, b) = t
            .call(
                Method::POST,
                &toggle("production"),
                Some(json!({"enabled": false, "comment": comment})),
            )
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`production`"),
            "{b}"
        );
    }
    let config = json!({"enabled": true, "off_variant": "b", "default_serve": {"variant": "b"}});
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{P}/flags/f/environments/production"),
            Some(json!({"config": config, "version": before.0})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    assert_eq!(written(&t).await, before);

    // With a comment it goes through, and the comment is in the audit log and history.
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{P}/flags/f/environments/production"),
            Some(json!({"config": config, "version": before.0, "comment": "serve B: incident 42"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit?project=p&flag=f&limit=1", None)
        .await;
    assert_eq!(audit["items"][0]["action"], "flag_config.update");
    assert_eq!(audit["items"][0]["comment"], "serve B: incident 42");
    let (_, versions) = t
        .call(Method::GET, &format!("{P}/flags/f/versions?limit=1"), None)
        .await;
    assert_eq!(versions[0]["comment"], "serve B: incident 42");
    assert_eq!(versions[0]["environments"], json!(["production"]));

    // Definition writes: a rename changes no served value, new variants change every
    // environment's, archiving removes the flag from production.
    let version = b["version"].as_i64().unwrap();
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{P}/flags/f"),
            Some(json!({"name": "Checkout label", "version": version})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let version = b["version"].as_i64().unwrap();
    let variants = json!([{"key": "a", "value": "A"}, {"key": "b", "value": "Bee"}]);
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{P}/flags/f"),
            Some(json!({"variants": variants, "version": version})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{P}/flags/f/archive"),
            Some(json!({"version": version})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));

    // A segment: only when a flag's rules in a critical environment use it.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{P}/segments"),
            Some(json!({"key": "beta", "included": ["u1"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{P}/segments/beta"),
            Some(json!({"included": ["u1", "u2"], "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rule = json!({"enabled": true, "off_variant": "b", "default_serve": {"variant": "b"},
        "rules": [{"id": "r", "clauses": [{"op": "in_segment", "values": ["beta"]}],
                   "serve": {"variant": "a"}}]});
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{P}/flags/f/environments/production"),
            Some(json!({"config": rule, "version": version, "comment": "beta gets A"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{P}/segments/beta"),
            Some(json!({"included": ["u1"], "version": 2})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));

    // A new flag touches production only when its config there is given.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{P}/flags"),
            Some(
                json!({"key": "g", "environments": {"production": {"enabled": true,
                "off_variant": "off", "default_serve": {"variant": "on"}}}}),
            ),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{P}/flags"),
            Some(json!({"key": "g"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Changing a critical environment itself, and turning the requirement off, need one.
    let (s, b) = t
        .call(
            Method::DELETE,
            &format!("{P}/environments/production"),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{P}/environments/production"),
            Some(json!({"critical": false, "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (s, b) = t
        .call(
            Method::PATCH,
            P,
            Some(json!({"require_critical_comment": false, "version": 2})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (s, b) = t
        .call(
            Method::PATCH,
            P,
            Some(json!({"require_critical_comment": false, "version": 2, "comment": "done"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call(
            Method::POST,
            &toggle("production"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
