//! Alertmanager's webhook notification, version 4 (the body `webhook_configs` receivers
//! post: <https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>), as
//! it arrives, and the firing alerts Flagpole takes from it.
//!
//! Read leniently: fields Alertmanager adds in later releases are ignored, and only what
//! Flagpole uses is required. A notification lists every alert of its group, resolved
//! ones too; only firing alerts are taken, because a resolved alert does nothing by
//! itself (turning a flag back on is a person's decision).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Invalid;

/// The notification format this endpoint reads.
pub(crate) const VERSION: &str = "4";
/// Longest receiver name and fingerprint accepted (Alertmanager's fingerprints are 16 hex
/// digits; receiver names are configuration).
const MAX_NAME_LEN: usize = 200;

/// A notification as Alertmanager posts it. Every field of the format is declared, so the
/// OpenAPI document describes what Alertmanager sends; Flagpole reads only some of them.
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertmanagerNotification)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Notification {
    /// `"4"`.
    pub(crate) version: String,
    /// Identifies the alert group.
    #[serde(default)]
    pub(crate) group_key: String,
    /// Alerts left out because of the receiver's `max_alerts`.
    #[serde(default)]
    pub(crate) truncated_alerts: u64,
    /// `firing` if any alert of the group fires.
    pub(crate) status: AlertStatus,
    /// The receiver's name in Alertmanager's configuration; audit entries name it.
    pub(crate) receiver: String,
    /// Labels the group is grouped by.
    #[serde(default)]
    pub(crate) group_labels: BTreeMap<String, String>,
    /// Labels every alert of the group has.
    #[serde(default)]
    pub(crate) common_labels: BTreeMap<String, String>,
    /// Annotations every alert of the group has.
    #[serde(default)]
    pub(crate) common_annotations: BTreeMap<String, String>,
    /// Alertmanager's address.
    #[serde(default, rename = "externalURL")]
    pub(crate) external_url: String,
    /// The group's alerts, firing and resolved.
    pub(crate) alerts: Vec<Alert>,
}

/// Whether an alert (or a group) fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertmanagerStatus)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AlertStatus {
    /// Firing.
    Firing,
    /// Was firing, is not any more.
    Resolved,
}

/// One alert of a notification (all fields declared, as for [`Notification`]).
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertmanagerAlert)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Alert {
    /// This alert's own status.
    pub(crate) status: AlertStatus,
    /// Its labels, `alertname` among them.
    pub(crate) labels: BTreeMap<String, String>,
    /// Its annotations (summary, description...).
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
    /// When it started firing (RFC 3339).
    pub(crate) starts_at: String,
    /// When it stopped; `0001-01-01T00:00:00Z` while it fires.
    #[serde(default)]
    pub(crate) ends_at: String,
    /// The Prometheus expression browser link for it.
    #[serde(default, rename = "generatorURL")]
    pub(crate) generator_url: String,
    /// Identifies the alert (a hash of its labels).
    pub(crate) fingerprint: String,
}

/// A firing alert, checked: what mappings match and what the audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FiringAlert {
    /// The `alertname` label (empty if it has none: then no mapping matches it).
    pub(crate) name: String,
    /// Every label.
    pub(crate) labels: BTreeMap<String, String>,
    /// Alertmanager's fingerprint.
    pub(crate) fingerprint: String,
    /// `startsAt` in epoch milliseconds: with the fingerprint, what makes a firing once.
    pub(crate) starts_at: i64,
    /// `startsAt` as sent, for people reading the audit log.
    pub(crate) starts_at_text: String,
}

impl Notification {
    /// The firing alerts, in the notification's order. Resolved alerts are skipped without
    /// further checks; a firing one must have a fingerprint and a readable `startsAt`.
    pub(crate) fn firing(&self) -> Result<Vec<FiringAlert>, Invalid> {
        if self.version != VERSION {
            return Err(Invalid::new(
                "version",
                format!(
                    "notification version `{}` is not supported; this endpoint reads \
                     Alertmanager's version {VERSION}",
                    self.version
                ),
            ));
        }
        let receiver = self.receiver.trim();
        if receiver.is_empty() || receiver.chars().count() > MAX_NAME_LEN {
            return Err(Invalid::new(
                "receiver",
                format!("must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        let mut firing = Vec::new();
        for (i, alert) in self.alerts.iter().enumerate() {
            if alert.status != AlertStatus::Firing {
                continue;
            }
            let fingerprint = alert.fingerprint.trim();
            if fingerprint.is_empty() || fingerprint.chars().count() > MAX_NAME_LEN {
                return Err(Invalid::new(
                    format!("alerts[{i}].fingerprint"),
                    format!("must be 1 to {MAX_NAME_LEN} characters"),
                ));
            }
            let starts_at = epoch_ms(&alert.starts_at).ok_or_else(|| {
                Invalid::new(
                    format!("alerts[{i}].startsAt"),
                    format!("`{}` is not an RFC 3339 time", alert.starts_at),
                )
            })?;
            firing.push(FiringAlert {
                name: alert.labels.get("alertname").cloned().unwrap_or_default(),
                labels: alert.labels.clone(),
                fingerprint: fingerprint.to_owned(),
                starts_at,
                starts_at_text: alert.starts_at.clone(),
            });
        }
        Ok(firing)
    }
}

/// An RFC 3339 time (Alertmanager sends nanoseconds) in epoch milliseconds.
fn epoch_ms(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A notification exactly as Alertmanager 0.25 posted it in the end-to-end test
    /// (tests/cluster/alerts.rs), one alert firing and one resolved.
    fn notification() -> serde_json::Value {
        json!({
            "receiver": "flagpole",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "CheckoutErrors", "service": "checkout", "severity": "page"},
                    "annotations": {"summary": "checkout errors above 1/s"},
                    "startsAt": "2026-12-07T21:14:03.123456789Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=...",
                    "fingerprint": "5b1d3d0a1f9c2e77"
                },
                {
                    "status": "resolved",
                    "labels": {"alertname": "CheckoutErrors", "service": "cart"},
                    "annotations": {},
                    "startsAt": "2026-12-07T20:00:00Z",
                    "endsAt": "2026-12-07T20:05:00Z",
                    "generatorURL": "",
                    "fingerprint": "0000000000000001"
                }
            ],
            "groupLabels": {"alertname": "CheckoutErrors"},
            "commonLabels": {"alertname": "CheckoutErrors"},
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "version": "4",
            "groupKey": "{}:{alertname=\"CheckoutErrors\"}",
            "truncatedAlerts": 0
        })
    }

    fn parse(value: serde_json::Value) -> Notification {
        serde_json::from_value(value).expect("a notification")
    }

    #[test]
    fn takes_the_firing_alerts_only() {
        let firing = parse(notification()).firing().expect("valid");
        assert_eq!(firing.len(), 1);
        let alert = &firing[0];
        assert_eq!(alert.name, "CheckoutErrors");
        assert_eq!(alert.fingerprint, "5b1d3d0a1f9c2e77");
        // 2026-12-07T21:14:03.123Z, nanoseconds truncated.
        assert_eq!(alert.starts_at, 1_796_678_043_123);
        assert_eq!(alert.labels["service"], "checkout");
    }

    #[test]
    fn fields_alertmanager_may_add_are_ignored() {
        let mut value = notification();
        value["somethingNew"] = json!({"a": 1});
        value["alerts"][0]["silencedBy"] = json!([]);
        assert_eq!(parse(value).firing().unwrap().len(), 1);
    }

    #[test]
    fn problems_name_their_field() {
        let cases = [
            ("/version", json!("3"), "version"),
            ("/receiver", json!("  "), "receiver"),
            ("/alerts/0/fingerprint", json!(""), "alerts[0].fingerprint"),
            (
                "/alerts/0/startsAt",
                json!("yesterday"),
                "alerts[0].startsAt",
            ),
        ];
        for (pointer, value, field) in cases {
            let mut body = notification();
            *body.pointer_mut(pointer).unwrap() = value;
            let err = parse(body).firing().expect_err(field);
            assert_eq!(err.field, field, "{err:?}");
        }
    }

    #[test]
    fn a_resolved_alert_is_not_checked() {
        let mut body = notification();
        body["alerts"][1]["startsAt"] = json!("not a time");
        assert_eq!(parse(body).firing().unwrap().len(), 1);
    }
}
