//! Alert mappings: create, read, update, delete; each change audited; what is wrong named
//! by its field; nothing written when anything is.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use super::{MAPPINGS, World};
use crate::backends;
use crate::support::assert_error;

backends! {
    mappings_round_trip => mappings_round_trip_postgres, mappings_round_trip_sqlite;
    invalid_mappings_name_the_field => invalid_mappings_postgres, invalid_mappings_sqlite;
}

fn body(alert: &str, matchers: Value, flag: &str, env: &str) -> Value {
    json!({
        "alert": alert,
        "matchers": matchers,
        "action": {"kind": "flag_off", "flag": flag, "environment": env}
    })
}

async fn mappings_round_trip(backend: Backend) {
    let w = World::new(backend).await;
    let (s, list) = w.t.call(Method::GET, MAPPINGS, None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let first = &list[0];
    assert_eq!(first["id"], w.mapping);
    assert_eq!(first["alert"], "CheckoutErrors");
    assert_eq!(
        first["matchers"],
        json!([{"label": "service", "op": "=", "value": "checkout"}])
    );
    assert_eq!(
        first["action"],
        json!({"kind": "flag_off", "flag": "checkout", "environment": "production"})
    );
    assert_eq!(first["version"], 1);
    assert_eq!(first["last_fired"], Value::Null);
    assert!(first["created_by"].as_str().unwrap().starts_with("token:"));

    // Update: needs the version; replaces alert, matchers and action.
    let url = format!("{MAPPINGS}/{}", w.mapping);
    let mut change = body(
        "CheckoutLatency",
        json!([{"label": "severity", "op": "=~", "value": "page|critical"}]),
        "checkout",
        "staging",
    );
    let (s, b) = w.t.call(Method::PUT, &url, Some(change.clone())).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("version"));
    change["version"] = json!(1);
    let (s, updated) = w.t.call(Method::PUT, &url, Some(change.clone())).await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["alert"], "CheckoutLatency");
    assert_eq!(updated["action"]["environment"], "staging");
    let (s, b) = w.t.call(Method::PUT, &url, Some(change)).await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert_eq!(b["current"]["version"], 2, "{b}");

    let entries = w.audit("alert_mapping").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["alert_mapping.update", "alert_mapping.create"]);
    assert_eq!(entries[0]["before"]["alert"], "CheckoutErrors");
    assert_eq!(entries[0]["after"]["alert"], "CheckoutLatency");
    assert_eq!(entries[0]["environment"], "staging");

    // Delete: gone, audited, and a second delete is 404.
    let (s, _) = w.t.call(Method::DELETE, &url, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = w.t.call(Method::GET, &url, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) = w.t.call(Method::DELETE, &url, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    assert_eq!(w.audit("alert_mapping.delete").await.len(), 1);

    // Deleting the environment takes its mappings with it.
    let (s, created) =
        w.t.call(
            Method::POST,
            MAPPINGS,
            Some(body("A", json!([]), "checkout", "staging")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let (s, b) =
        w.t.call(
            Method::DELETE,
            "/api/v1/projects/p/environments/staging",
            Some(json!({"comment": "gone"})),
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    let (_, list) = w.t.call(Method::GET, MAPPINGS, None).await;
    assert_eq!(list, json!([]));
}

async fn invalid_mappings_name_the_field(backend: Backend) {
    let w = World::new(backend).await;
    let audit_before = w.t.audit_count().await;
    let ok = json!([{"label": "service", "op": "=", "value": "checkout"}]);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            body("A", ok.clone(), "nope", "production"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "action.flag",
        ),
        (
            body("A", ok.clone(), "checkout", "nope"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "action.environment",
        ),
        (
            body("", ok.clone(), "checkout", "production"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "alert",
        ),
        (
            body(
                "A",
                json!([{"label": "1st", "op": "=", "value": "x"}]),
                "checkout",
                "production",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "matchers[0].label",
        ),
        (
            body(
                "A",
                json!([{"label": "svc", "op": "=~", "value": "(open"}]),
                "checkout",
                "production",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "matchers[0].value",
        ),
        // Shapes serde refuses, with the path it refused at.
        (
            body(
                "A",
                json!([{"label": "svc", "op": "~=", "value": "x"}]),
                "checkout",
                "production",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "matchers[0].op",
        ),
        (
            json!({"alert": "A", "action": {"kind": "roll_back", "plan": "p"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "action.kind",
        ),
        (
            json!({"alert": "A", "action": {"kind": "flag_off", "flag": "checkout"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "action.environment",
        ),
        (
            json!({"alert": "A", "extra": 1, "action": {"kind": "flag_off", "flag": "checkout", "environment": "production"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "extra",
        ),
    ];
    for (request, status, field) in cases {
        let (s, b) =
            w.t.call(Method::POST, MAPPINGS, Some(request.clone()))
                .await;
        assert_error(s, &b, status, Some(field));
    }
    // Every problem at once.
    let (s, b) =
        w.t.call(
            Method::POST,
            MAPPINGS,
            Some(body("", json!([]), "nope", "nope")),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("alert"));
    let fields: Vec<&str> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["alert", "action.flag", "action.environment"]);
    // An archived flag cannot be a mapping's target.
    let (s, b) =
        w.t.call(
            Method::POST,
            "/api/v1/projects/p/flags/checkout/archive",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) =
        w.t.call(
            Method::POST,
            MAPPINGS,
            Some(body("A", json!([]), "checkout", "production")),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("action.flag"));
    // Unknown project and mapping: 404.
    let (s, b) =
        w.t.call(Method::GET, "/api/v1/projects/nope/alert-mappings", None)
            .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) =
        w.t.call(Method::GET, &format!("{MAPPINGS}/999999"), None)
            .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) =
        w.t.call(Method::GET, &format!("{MAPPINGS}/abc"), None)
            .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, None);

    let (_, list) = w.t.call(Method::GET, MAPPINGS, None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the world's mapping"
    );
    // Archiving is the one audited change since.
    assert_eq!(w.t.audit_count().await, audit_before + 1);
}
