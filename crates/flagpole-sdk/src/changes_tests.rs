//! Which flags a change affects.

use flagpole_core::model::EnvironmentSnapshot;
use serde_json::json;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Changes, changed_flags};
use crate::shared::{ConnectionState, Shared, Source};

fn env(version: u64, flags: serde_json::Value, segments: serde_json::Value) -> EnvironmentSnapshot {
    serde_json::from_value(json!({"version": version, "flags": flags, "segments": segments}))
        .unwrap()
}

fn flag(key: &str, enabled: bool, extra: serde_json::Value) -> serde_json::Value {
    let mut config =
        json!({"enabled": enabled, "off_variant": "off", "default_serve": {"variant": "on"}});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({
        "flag": {"key": key, "kind": "boolean", "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}]},
        "config": config,
    })
}

#[test]
fn first_environment_changes_every_flag() {
    let new = env(
        1,
        json!([flag("a", true, json!({})), flag("b", true, json!({}))]),
        json!([]),
    );
    assert_eq!(changed_flags(None, &new), ["a", "b"]);
}

#[test]
fn direct_changes_additions_and_removals() {
    let old = env(
        1,
        json!([
            flag("a", true, json!({})),
            flag("b", true, json!({})),
            flag("c", true, json!({}))
        ]),
        json!([]),
    );
    let new = env(
        2,
        json!([
            flag("a", false, json!({})),
            flag("c", true, json!({})),
            flag("d", true, json!({}))
        ]),
        json!([]),
    );
    assert_eq!(changed_flags(Some(&old), &new), ["a", "d", "b"]);
    assert!(changed_flags(Some(&new), &new).is_empty());
}

#[test]
fn dependents_through_segments_and_prerequisites() {
    let rule = json!({"rules": [{"id": "r", "clauses": [{"op": "in_segment", "values": ["beta"]}], "serve": {"variant": "on"}}]});
    let prereq = json!({"prerequisites": [{"flag": "uses-beta", "variants": ["on"]}]});
    let flags = json!([
        flag("uses-beta", true, rule),
        flag("child", true, prereq),
        flag("other", true, json!({}))
    ]);
    let seg = |included: &str| {
        json!([
            {"key": "beta", "included": [included]},
            {"key": "nested", "rules": [{"clauses": [{"op": "in_segment", "values": ["beta"]}]}]},
        ])
    };
    let old = env(1, flags.clone(), seg("u1"));
    let new = env(2, flags, seg("u2"));
    assert_eq!(changed_flags(Some(&old), &new), ["uses-beta", "child"]);
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_everything_may_have_changed() {
    let shared = Arc::new(Shared::new(ConnectionState::Connected));
    let shutdown = CancellationToken::new();
    let mut changes = Changes::new(shared.clone(), shutdown.clone());
    for version in 1..=300 {
        let flags = json!([
            flag("a", version % 2 == 0, json!({})),
            flag("b", true, json!({}))
        ]);
        shared.publish(env(version, flags, json!([])), Source::Server);
    }
    let event = changes.recv().await.unwrap();
    assert!(event.lagged);
    assert_eq!(event.version, 300);
    assert_eq!(&*event.keys, ["a", "b"]);
    // Then the buffered, most recent events follow; after close they drain, then `None`.
    let next = changes.recv().await.unwrap();
    assert!(!next.lagged && next.contains("a"));
    shutdown.cancel();
    let mut drained = 0;
    while let Some(event) = changes.recv().await {
        assert!(!event.lagged);
        drained += 1;
    }
    assert!(drained < 256, "{drained}");
}
