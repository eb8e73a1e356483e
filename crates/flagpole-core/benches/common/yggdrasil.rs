//! The benchmark's flags for Unleash's yggdrasil engine, equivalent to ours in
//! `common/mod.rs`: shared by the timing benchmark (`benches/eval.rs`) and the
//! instruction counts (`benches/instructions.rs`).

use std::collections::HashMap;

use serde_json::{Value, json};
use unleash_yggdrasil::{ClientFeatures, Context as UnleashContext, EngineState, UpdateMessage};

use super::{A_NO_RULES, B_IN_CLAUSE, C_ROLLOUT, COUNTRIES, COUNTRY, D_ROLLOUT_CLAUSE};

/// Filler flags in the evaluation snapshots, and flags in the compile benchmark.
pub(crate) const FLAGS: usize = 1000;

pub(crate) fn ygg_in_constraint() -> Value {
    json!({"contextName": COUNTRY, "operator": "IN", "values": COUNTRIES})
}

/// 50% of users, sticky on the user id: our rollout buckets by the targeting key, which
/// is what the yggdrasil context carries as `userId`. `groupId` plays the role of our salt.
pub(crate) fn ygg_rollout(name: &str, constraints: Value) -> Value {
    json!({"name": "flexibleRollout", "constraints": constraints,
        "parameters": {"rollout": "50", "stickiness": "userId", "groupId": name}})
}

pub(crate) fn ygg_toggle(name: &str, strategy: Value) -> Value {
    json!({"name": name, "enabled": true, "strategies": [strategy]})
}

/// The (d) shape: a 50% rollout behind an IN constraint.
pub(crate) fn ygg_rule_rollout(name: &str) -> Value {
    ygg_toggle(name, ygg_rollout(name, json!([ygg_in_constraint()])))
}

pub(crate) fn ygg_features(toggles: Vec<Value>) -> ClientFeatures {
    serde_json::from_value(json!({"version": 2, "features": toggles, "query": null})).unwrap()
}

pub(crate) fn ygg_fillers() -> Vec<Value> {
    (0..FLAGS)
        .map(|i| ygg_rule_rollout(&super::filler_key(i)))
        .collect()
}

pub(crate) fn ygg_eval_features() -> ClientFeatures {
    let mut toggles = vec![
        // "default" is Unleash's on-for-everyone strategy: our flag with no rules.
        ygg_toggle(A_NO_RULES, json!({"name": "default"})),
        ygg_toggle(
            B_IN_CLAUSE,
            json!({"name": "default", "constraints": [ygg_in_constraint()]}),
        ),
        ygg_toggle(C_ROLLOUT, ygg_rollout(C_ROLLOUT, json!([]))),
        ygg_rule_rollout(D_ROLLOUT_CLAUSE),
    ];
    toggles.extend(ygg_fillers());
    ygg_features(toggles)
}

pub(crate) fn ygg_context() -> UnleashContext {
    let ours = super::context();
    UnleashContext {
        user_id: Some(ours.key.clone()),
        properties: Some(HashMap::from([(
            COUNTRY.to_string(),
            ours.get(COUNTRY).unwrap().as_str().unwrap().to_string(),
        )])),
        ..UnleashContext::default()
    }
}

pub(crate) fn ygg_engine(features: ClientFeatures) -> EngineState {
    let engine = EngineState::default();
    let warnings = engine.take_state(UpdateMessage::FullResponse(features));
    assert!(warnings.is_none(), "yggdrasil rejected the flags");
    engine
}
