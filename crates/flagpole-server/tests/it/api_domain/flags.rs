//! Flags, per-environment configs, validation paths, atomicity, archive, search.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error};

backends! {
    flag_lifecycle => flag_lifecycle_postgres, flag_lifecycle_sqlite;
    validation_paths_and_atomicity => validation_paths_and_atomicity_postgres, validation_paths_and_atomicity_sqlite;
}

const FLAGS: &str = "/api/v1/projects/p/flags";

fn rule_config(serve: Value, clause: Value) -> Value {
    rule_config_with(serve, clause, "off")
}

fn rule_config_with(serve: Value, clause: Value, fallback: &str) -> Value {
    json!({"enabled": true, "off_variant": fallback,
           "rules": [{"id": "r1", "clauses": [clause], "serve": serve}],
           "default_serve": {"variant": fallback}})
}

async fn flag_lifecycle(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let mut feed = t.state().changes.subscribe();
    let (s, f) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({"key": "checkout", "tags": ["web"], "comment": "new"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(f["kind"], "boolean");
    assert_eq!(
        f["variants"],
        json!([{"key": "on", "value": true}, {"key": "off", "value": false}])
    );
    assert_eq!(f["version"], 1);
    for env in ["development", "staging", "production"] {
        assert_eq!(f["environments"][env]["enabled"], false);
        assert_eq!(f["environments"][env]["off_variant"], "off");
        assert_eq!(
            f["environments"][env]["default_serve"],
            json!({"variant": "on"})
        );
    }
    // A definition write bumps every environment of the project and announces it.
    assert_eq!(t.data_version("p", "production").await, 1);
    let mut seen = Vec::new();
    while let Ok(change) = feed.try_recv() {
        seen.push(change.data_version);
    }
    assert_eq!(seen, [1, 1, 1]);

    // Full config write, with the version.
    let config = rule_config(
        json!({"variant": "on"}),
        json!({"attribute": "country", "op": "in", "values": ["no"]}),
    );
    let url = format!("{FLAGS}/checkout/environments/production");
    let (s, b) = t
        .call(
            Method::PUT,
            &url,
            Some(json!({"config": config, "version": 1, "comment": "launch"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 2);
    assert_eq!(b["environments"]["production"]["rules"][0]["id"], "r1");
    assert_eq!(t.data_version("p", "production").await, 2);
    assert_eq!(
        t.data_version("p", "staging").await,
        1,
        "a config write bumps one environment"
    );
    let (s, b) = t
        .call(Method::PUT, &url, Some(json!({"config": config})))
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("version"));
    let (s, b) = t
        .call(
            Method::PUT,
            &url,
            Some(json!({"config": config, "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert_eq!(b["current"]["version"], 2);
    assert_eq!(b["current"]["environments"]["production"]["enabled"], true);

    // The kill switch works without a version, and checks one when given.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{url}/toggle"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["version"].as_i64(),
            &b["environments"]["production"]["enabled"]
        ),
        (Some(3), &json!(false))
    );
    assert_eq!(
        b["environments"]["production"]["rules"][0]["id"], "r1",
        "toggle keeps the rules"
    );
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{url}/toggle"),
            Some(json!({"enabled": true, "version": 2})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);

    // Definition update.
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{FLAGS}/checkout"),
            Some(json!({"name": "Checkout", "description": "New checkout", "version": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["name"].as_str(), b["version"].as_i64()),
        (Some("Checkout"), Some(4))
    );

    // What the writes left behind: history, change log, audit.
    assert_eq!(
        t.scalar(
            "select count(*) from flag_version v join flag f on f.id = v.flag_id where f.key = $1",
            "checkout"
        )
        .await,
        4
    );
    assert_eq!(t.scalar("select max(c.data_version) from env_change c join environment e on e.id = c.environment_id where e.key = $1", "production").await, 4);
    assert_eq!(
        t.scalar("select count(*) from env_change where key = $1", "checkout")
            .await,
        3 + 1 + 1 + 3
    );
    let (_, audit) = t
        .call(Method::GET, "/api/v1/audit?project=p&flag=checkout", None)
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "flag.update",
            "flag.toggle",
            "flag_config.update",
            "flag.create"
        ]
    );
    assert_eq!(audit["items"][2]["comment"], "launch");
    assert_eq!(audit["items"][2]["environment"], "production");
    assert_eq!(audit["items"][1]["before"]["config"]["enabled"], true);
    assert_eq!(audit["items"][1]["after"]["config"]["enabled"], false);
    let (_, audit) = t
        .call(
            Method::GET,
            "/api/v1/audit?project=p&environment=staging",
            None,
        )
        .await;
    assert!(audit["items"].as_array().unwrap().is_empty(), "{audit}");

    let (s, b) = t.call(Method::GET, &format!("{FLAGS}/nope"), None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/nope/environments/production/toggle"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/checkout/environments/nope/toggle"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
}

async fn validation_paths_and_atomicity(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({"key": "color", "kind": "string", "variants": [
            {"key": "red", "value": "r"}, {"key": "blue", "value": "b"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let url = format!("{FLAGS}/color/environments/staging");
    let audit_before = t.audit_count().await;
    let dv_before = t.data_version("p", "staging").await;
    let in_no = json!({"attribute": "country", "op": "in", "values": ["no"]});

    let cases = [
        (
            rule_config_with(json!({"variant": "green"}), in_no.clone(), "red"),
            "config.rules[0].serve.variant",
        ),
        (
            rule_config_with(
                json!({"rollout": {"weights": [{"variant": "red", "weight": 60000}, {"variant": "blue", "weight": 30000}]}}),
                in_no.clone(),
                "red",
            ),
            "config.rules[0].serve.rollout.weights",
        ),
        (
            rule_config_with(
                json!({"variant": "red"}),
                json!({"attribute": "email", "op": "matches", "values": ["(unclosed"]}),
                "red",
            ),
            "config.rules[0].clauses[0].values[0]",
        ),
        (
            json!({"enabled": true, "off_variant": "nope", "default_serve": {"variant": "red"}}),
            "config.off_variant",
        ),
    ];
    for (config, field) in cases {
        let (s, b) = t
            .call(
                Method::PUT,
                &url,
                Some(json!({"config": config, "version": 1})),
            )
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // Wrong JSON shape inside the config: the deserialiser's path.
    let (s, b) = t
        .call(Method::PUT, &url, Some(json!({"config": {"off_variant": 3, "default_serve": {"variant": "red"}}, "version": 1})))
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("config.off_variant"),
    );

    // Definition errors map to the body of create and patch.
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({"key": "n", "kind": "number", "variants": [
            {"key": "a", "value": 1}, {"key": "b", "value": "two"}]})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("variants[1].value"),
    );
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({"key": "n", "environments": {"production":
            {"off_variant": "off", "default_serve": {"variant": "maybe"}}}})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("environments.production.default_serve.variant"),
    );
    let (s, b) = t
        .call(Method::POST, FLAGS, Some(json!({"key": "n", "environments": {"moon": {"off_variant": "off", "default_serve": {"variant": "on"}}}})))
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("environments.moon"),
    );
    // Removing a variant a config serves is caught in every environment's config.
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{FLAGS}/color"),
            Some(json!({"variants": [{"key": "red", "value": "r"}], "version": 1})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("environments.development.off_variant"),
    );

    // Nothing of the rejected writes was kept.
    assert_eq!(t.audit_count().await, audit_before);
    assert_eq!(t.data_version("p", "staging").await, dv_before);
    let (_, flag) = t.call(Method::GET, &format!("{FLAGS}/color"), None).await;
    assert_eq!(flag["version"], 1);
    assert_eq!(flag["variants"].as_array().unwrap().len(), 2);
    assert_eq!(
        t.scalar("select count(*) from flag where key = $1", "n")
            .await,
        0
    );
    assert_eq!(
        t.scalar("select count(*) from flag_version where actor <> $1", "")
            .await,
        1
    );
}
