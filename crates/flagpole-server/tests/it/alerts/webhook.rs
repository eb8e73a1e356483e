//! The Alertmanager webhook: a firing alert turns the flag off once, with everything
//! audited; repeats, resolved alerts and alerts no mapping matches do nothing; bad input
//! and the wrong credentials change nothing.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::{P, WEBHOOK, World, alert, alerts_token, checkout_alert, notification, set_flag};
use crate::backends;
use crate::support::{Cred, assert_error, request, token};

backends! {
    a_firing_alert_turns_the_flag_off => firing_turns_off_postgres, firing_turns_off_sqlite;
    a_flood_of_repeats_acts_once => flood_acts_once_postgres, flood_acts_once_sqlite;
    resolved_and_unmatched_alerts_do_nothing => resolved_does_nothing_postgres, resolved_does_nothing_sqlite;
    outcomes_other_than_turning_off => other_outcomes_postgres, other_outcomes_sqlite;
    critical_environments_need_no_confirmation => critical_postgres, critical_sqlite;
    bad_payloads_are_400_and_change_nothing => bad_payloads_postgres, bad_payloads_sqlite;
    only_an_alerts_token_for_the_project => only_alerts_tokens_postgres, only_alerts_tokens_sqlite;
}

/// Outcomes of a webhook answer, in order.
fn outcomes(receipt: &Value) -> Vec<String> {
    receipt["handled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_firing_alert_turns_the_flag_off(backend: Backend) {
    let w = World::new(backend).await;
    let version = w.t.data_version("p", "production").await;
    let (s, receipt) = w
        .notify(&notification(vec![checkout_alert("firing")]))
        .await;
    assert_eq!(s, StatusCode::OK, "{receipt}");
    assert_eq!(
        (receipt["firing"].as_u64(), receipt["resolved"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(outcomes(&receipt), ["turned_off"]);
    assert_eq!(receipt["handled"][0]["mapping"], w.mapping);
    assert!(!w.enabled("production").await);
    assert_eq!(
        w.t.data_version("p", "production").await,
        version + 1,
        "one write, one new version for SDKs"
    );

    // The flag's own audit entry and history, as for a person's toggle, by the receiver
    // and the token, with the alert as the comment.
    let actor = "alertmanager:flagpole via token:am";
    let toggles = w.audit("flag.toggle").await;
    assert_eq!(toggles[0]["actor"], actor, "{toggles:?}");
    assert_eq!(toggles[0]["environment"], "production");
    assert_eq!(toggles[0]["after"]["config"]["enabled"], false);
    let comment = toggles[0]["comment"].as_str().unwrap();
    for part in [
        "CheckoutErrors",
        "2026-12-07T21:14:03.123456789Z",
        "5b1d3d0a1f9c2e77",
        "service=\"checkout\"",
    ] {
        assert!(comment.contains(part), "{part} not in {comment}");
    }
    let (s, history) =
        w.t.call(Method::GET, &format!("{P}/flags/checkout/versions"), None)
            .await;
    assert_eq!(s, StatusCode::OK, "{history}");
    let newest = &history[0];
    assert_eq!(newest["actor"], actor, "{history}");

    // The mapping's own entry: the alert's labels and when it fired, what came of it.
    let fired = w.audit("alert_mapping.fire").await;
    assert_eq!(fired.len(), 1);
    let record = &fired[0]["after"];
    assert_eq!(fired[0]["actor"], actor);
    assert_eq!(fired[0]["resource_key"], w.mapping.to_string());
    assert_eq!(record["labels"]["severity"], "page");
    assert_eq!(record["starts_at"], 1_796_678_043_123_i64);
    assert_eq!(record["outcome"], "turned_off");
    assert_eq!(record["receiver"], "flagpole");

    // And the mapping shows it.
    let mapping = w.mapping().await;
    assert_eq!(mapping["last_fired"], *record, "{mapping}");
    assert_eq!(
        mapping["last_fired"]["message"],
        "turned `checkout` off in `production` (critical)"
    );
}

async fn a_flood_of_repeats_acts_once(backend: Backend) {
    let w = World::new(backend).await;
    let version = w.t.data_version("p", "production").await;
    let audit_before = w.t.audit_count().await;
    let body = notification(vec![checkout_alert("firing")]);
    // Twenty copies at once, as an Alertmanager HA pair and its retries could send them.
    let answers = join_all((0..20).map(|_| w.notify(&body))).await;
    let mut turned_off = 0;
    for (s, receipt) in &answers {
        assert_eq!(*s, StatusCode::OK, "{receipt}");
        match outcomes(receipt).as_slice() {
            [o] if o == "turned_off" => turned_off += 1,
            [o] if o == "duplicate" => {}
            other => panic!("unexpected outcomes {other:?}"),
        }
    }
    assert_eq!(turned_off, 1);
    assert_eq!(w.t.data_version("p", "production").await, version + 1);
    assert_eq!(
        w.t.audit_count().await,
        audit_before + 2,
        "one flag.toggle and one alert_mapping.fire"
    );

    // A person turns the flag back on while the alert still fires: its repeats leave it on.
    set_flag(&w.t, "production", true).await;
    let (_, receipt) = w.notify(&body).await;
    assert_eq!(outcomes(&receipt), ["duplicate"]);
    assert!(w.enabled("production").await);

    // The same alert firing again after it resolved has a new startsAt, and acts again.
    let again = alert(
        "firing",
        json!({"alertname": "CheckoutErrors", "service": "checkout"}),
        "2026-12-07T22:00:00Z",
        "5b1d3d0a1f9c2e77",
    );
    let (_, receipt) = w.notify(&notification(vec![again])).await;
    assert_eq!(outcomes(&receipt), ["turned_off"]);
    assert!(!w.enabled("production").await);
}

async fn resolved_and_unmatched_alerts_do_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let version = w.t.data_version("p", "production").await;
    let audit_before = w.t.audit_count().await;
    let others = [
        // Resolved: does nothing by itself.
        checkout_alert("resolved"),
        // Firing, but no mapping matches: another service, another alert, no alertname.
        alert(
            "firing",
            json!({"alertname": "CheckoutErrors", "service": "cart"}),
            "2026-12-07T21:14:03Z",
            "0000000000000002",
        ),
        alert(
            "firing",
            json!({"alertname": "CheckoutLatency", "service": "checkout"}),
            "2026-12-07T21:14:03Z",
            "0000000000000003",
        ),
        alert(
            "firing",
            json!({"service": "checkout"}),
            "2026-12-07T21:14:03Z",
            "0000000000000004",
        ),
    ];
    let (s, receipt) = w.notify(&notification(others.to_vec())).await;
    assert_eq!(s, StatusCode::OK, "{receipt}");
    assert_eq!(
        (receipt["firing"].as_u64(), receipt["resolved"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(outcomes(&receipt), Vec::<String>::new());
    assert!(w.enabled("production").await);
    assert_eq!(w.t.data_version("p", "production").await, version);
    assert_eq!(w.t.audit_count().await, audit_before);
    assert_eq!(w.mapping().await["last_fired"], Value::Null);

    // After it fired, its resolution does not turn the flag back on.
    w.notify(&notification(vec![checkout_alert("firing")]))
        .await;
    set_flag(&w.t, "staging", true).await;
    let (_, receipt) = w
        .notify(&notification(vec![checkout_alert("resolved")]))
        .await;
    assert_eq!(outcomes(&receipt), Vec::<String>::new());
    assert!(!w.enabled("production").await);
}

async fn outcomes_other_than_turning_off(backend: Backend) {
    let w = World::new(backend).await;
    // Already off: recorded, nothing written to the flag, no new version.
    set_flag(&w.t, "production", false).await;
    let version = w.t.data_version("p", "production").await;
    let (_, receipt) = w
        .notify(&notification(vec![checkout_alert("firing")]))
        .await;
    assert_eq!(outcomes(&receipt), ["already_off"]);
    assert_eq!(w.t.data_version("p", "production").await, version);
    let newest = &w.audit("flag.toggle").await[0];
    assert!(
        newest["actor"].as_str().unwrap().starts_with("token:"),
        "{newest}"
    );
    assert_eq!(w.mapping().await["last_fired"]["outcome"], "already_off");

    // Archived: the write refuses it, the firing records why and is not retried.
    set_flag(&w.t, "production", true).await;
    let (s, b) =
        w.t.call(
            Method::POST,
            &format!("{P}/flags/checkout/archive"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let later = alert(
        "firing",
        json!({"alertname": "CheckoutErrors", "service": "checkout"}),
        "2026-12-07T23:00:00Z",
        "5b1d3d0a1f9c2e77",
    );
    let (s, receipt) = w.notify(&notification(vec![later.clone()])).await;
    assert_eq!(s, StatusCode::OK, "{receipt}");
    assert_eq!(outcomes(&receipt), ["failed"]);
    let message = receipt["handled"][0]["message"].as_str().unwrap();
    assert!(message.contains("archived"), "{message}");
    let last = w.mapping().await["last_fired"].clone();
    assert_eq!(last["outcome"], "failed", "{last}");
    let (_, receipt) = w.notify(&notification(vec![later])).await;
    assert_eq!(outcomes(&receipt), ["duplicate"]);
}

async fn critical_environments_need_no_confirmation(backend: Backend) {
    let w = World::new(backend).await;
    // Production is critical, and the project requires a comment on critical writes: a
    // person's toggle without one is refused, the alert's goes through (its comment is
    // the alert).
    let (s, b) =
        w.t.call(
            Method::PATCH,
            P,
            Some(json!({"require_critical_comment": true, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) =
        w.t.call(
            Method::POST,
            &format!("{P}/flags/checkout/environments/production/toggle"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("comment"));
    let (_, receipt) = w
        .notify(&notification(vec![checkout_alert("firing")]))
        .await;
    assert_eq!(outcomes(&receipt), ["turned_off"]);
    assert!(!w.enabled("production").await);
    let toggle = &w.audit("flag.toggle").await[0];
    assert!(
        toggle["comment"]
            .as_str()
            .unwrap()
            .contains("CheckoutErrors")
    );
}

async fn bad_payloads_are_400_and_change_nothing(backend: Backend) {
    let w = World::new(backend).await;
    let version = w.t.data_version("p", "production").await;
    let audit_before = w.t.audit_count().await;
    let good = notification(vec![checkout_alert("firing")]);
    let with = |pointer: &str, value: Value| {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (with("/version", json!("3")), "version"),
        (without("alerts"), "alerts"),
        (without("receiver"), "receiver"),
        (with("/alerts", json!({"status": "firing"})), "alerts"),
        (
            with("/alerts/0/status", json!("pending")),
            "alerts[0].status",
        ),
        (
            with("/alerts/0/labels", json!(["alertname"])),
            "alerts[0].labels",
        ),
        (
            with("/alerts/0/startsAt", json!("yesterday")),
            "alerts[0].startsAt",
        ),
        (
            with("/alerts/0/fingerprint", json!("")),
            "alerts[0].fingerprint",
        ),
    ];
    for (body, field) in cases {
        let (s, b) = w.notify(&body).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, Some(field));
    }
    // Not JSON at all, and JSON of another content type.
    let raw = |content_type: &str, body: &str| {
        axum::http::Request::post(WEBHOOK)
            .header("authorization", format!("Bearer {}", w.alerts_token))
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let (s, b) =
        w.t.send(raw("application/json", "{\"version\": \"4\", "))
            .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, None);
    let (s, b) = w.t.send(raw("text/plain", &good.to_string())).await;
    assert_error(s, &b, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);

    assert!(w.enabled("production").await);
    assert_eq!(w.t.data_version("p", "production").await, version);
    assert_eq!(w.t.audit_count().await, audit_before);
}

async fn only_an_alerts_token_for_the_project(backend: Backend) {
    let w = World::new(backend).await;
    let version = w.t.data_version("p", "production").await;
    let body = notification(vec![checkout_alert("firing")]);
    let webhook = |cred: Cred<'_>| request(Method::POST, WEBHOOK, cred, Some(&body), &[]);

    // Unauthenticated: 401 before the body is read (even a malformed one).
    let (s, b) = w.t.send(webhook(Cred::None)).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, None);
    let unknown = "fp_alert_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (s, b) = w.t.send(webhook(Cred::Bearer(unknown))).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, None);
    let (s, b) =
        w.t.send(request(Method::POST, WEBHOOK, Cred::None, None, &[]))
            .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, None);

    // Tokens of another scope (none: the whole API), however mighty: 403.
    let writer = token(w.t.db(), "writer", None).await;
    for t in [&w.t.admin, &writer] {
        let (s, b) = w.t.send(webhook(Cred::Bearer(t))).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, None);
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("alerts:trigger"),
            "{b}"
        );
    }
    // An alerts token for another project, or with the reader role: 403.
    w.t.project("other").await;
    let other = alerts_token(&w.t, "other", "writer", Some("other")).await;
    let reader = alerts_token(&w.t, "reader", "reader", Some("p")).await;
    for t in [&other, &reader] {
        let (s, b) = w.t.send(webhook(Cred::Bearer(t))).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, None);
    }
    // The alerts token anywhere else: 403, reads included.
    let toggle = format!("{P}/flags/checkout/environments/production/toggle");
    let elsewhere = [
        (Method::GET, format!("{P}/flags"), None),
        (Method::POST, toggle, Some(json!({"enabled": false}))),
        (Method::GET, super::MAPPINGS.to_owned(), None),
        (Method::GET, "/api/v1/tokens".to_owned(), None),
    ];
    for (method, uri, body) in elsewhere {
        let (s, b) = w.t.call_as(&w.alerts_token, method, &uri, body).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, None);
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("limited to"),
            "{b}"
        );
    }
    // A token row whose stored scope disagrees with its prefix authenticates nothing.
    let plain = token(w.t.db(), "writer", None).await;
    crate::support::exec(
        w.t.db(),
        "update api_token set scope = 'alerts:trigger' where token_hash = $1 returning id",
        &[json!(flagpole_server::auth::hash_secret(&plain))],
    )
    .await;
    let (s, b) = w.t.send(webhook(Cred::Bearer(&plain))).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, None);

    assert!(w.enabled("production").await);
    assert_eq!(w.t.data_version("p", "production").await, version);

    // A revoked alerts token stops working.
    let (_, tokens) = w.t.call(Method::GET, "/api/v1/tokens", None).await;
    let id = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "am")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, _) =
        w.t.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
            .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = w.notify(&body).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, None);
}
