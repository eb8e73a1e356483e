//! Kill switches from alerts: alert mappings (CRUD and their checks) and the Alertmanager
//! webhook (acting once per firing, resolved alerts doing nothing, bad input changing
//! nothing), on Postgres and SQLite.

mod mappings;
mod webhook;

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::support::TestApp;

const P: &str = "/api/v1/projects/p";
const MAPPINGS: &str = "/api/v1/projects/p/alert-mappings";
const WEBHOOK: &str = "/api/v1/projects/p/alerts/alertmanager";

/// Project `p` with flag `checkout` on in production (and off elsewhere), an
/// `alerts:trigger` token for `p` with the writer role, and a mapping: alert
/// `CheckoutErrors` with `service="checkout"` turns `checkout` off in production.
struct World {
    t: TestApp,
    alerts_token: String,
    mapping: i64,
}

impl World {
    async fn new(backend: Backend) -> World {
        let t = TestApp::new(backend).await;
        t.project("p").await;
        let (s, b) = t
            .call(
                Method::POST,
                &format!("{P}/flags"),
                Some(json!({"key": "checkout"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        set_flag(&t, "production", true).await;
        let alerts_token = alerts_token(&t, "am", "writer", Some("p")).await;
        let (s, m) = t
            .call(
                Method::POST,
                MAPPINGS,
                Some(json!({
                    "alert": "CheckoutErrors",
                    "matchers": [{"label": "service", "op": "=", "value": "checkout"}],
                    "action": {"kind": "flag_off", "flag": "checkout", "environment": "production"}
                })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        World {
            mapping: m["id"].as_i64().unwrap(),
            t,
            alerts_token,
        }
    }

    /// Posts `notification` to the webhook with the alerts token.
    async fn notify(&self, notification: &Value) -> (StatusCode, Value) {
        self.t
            .call_as(
                &self.alerts_token,
                Method::POST,
                WEBHOOK,
                Some(notification.clone()),
            )
            .await
    }

    /// Whether `checkout` is on in `env`.
    async fn enabled(&self, env: &str) -> bool {
        let (s, f) = self
            .t
            .call(Method::GET, &format!("{P}/flags/checkout"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{f}");
        f["environments"][env]["enabled"].as_bool().unwrap()
    }

    /// Audit entries of project `p` with `action`, newest first.
    async fn audit(&self, action: &str) -> Vec<Value> {
        let (s, page) = self
            .t
            .call(
                Method::GET,
                &format!("/api/v1/audit?project=p&action={action}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    async fn mapping(&self) -> Value {
        let (s, m) = self
            .t
            .call(Method::GET, &format!("{MAPPINGS}/{}", self.mapping), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{m}");
        m
    }
}

/// Turns `checkout` on or off in `env` as the admin.
async fn set_flag(t: &TestApp, env: &str, enabled: bool) {
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{P}/flags/checkout/environments/{env}/toggle"),
            Some(json!({"enabled": enabled})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// Creates an `alerts:trigger` token through the API; returns it.
async fn alerts_token(t: &TestApp, name: &str, role: &str, project: Option<&str>) -> String {
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(
                json!({"name": name, "role": role, "project": project, "scope": "alerts:trigger"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["scope"], "alerts:trigger");
    let token = b["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("fp_alert_"), "{token}");
    assert_eq!(b["prefix"].as_str().unwrap().len(), "fp_alert_".len() + 4);
    token
}

/// One alert of a notification.
fn alert(status: &str, labels: Value, starts_at: &str, fingerprint: &str) -> Value {
    json!({
        "status": status,
        "labels": labels,
        "annotations": {"summary": "checkout errors above 1/s"},
        "startsAt": starts_at,
        "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-12-07T21:20:00Z" },
        "generatorURL": "http://prometheus.local/graph?g0.expr=x",
        "fingerprint": fingerprint
    })
}

/// The firing alert the world's mapping matches.
fn checkout_alert(status: &str) -> Value {
    alert(
        status,
        json!({"alertname": "CheckoutErrors", "service": "checkout", "severity": "page"}),
        "2026-12-07T21:14:03.123456789Z",
        "5b1d3d0a1f9c2e77",
    )
}

/// A notification as Alertmanager 0.25 posts it, with `alerts`.
fn notification(alerts: Vec<Value>) -> Value {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    json!({
        "receiver": "flagpole",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutErrors\"}",
        "truncatedAlerts": 0
    })
}
