//! Flags shared by the evaluation benchmark (`benches/eval.rs`) and the allocation test
//! (`tests/alloc.rs`), so the test proves zero allocations for exactly what is benchmarked.
//! Lives in a subdirectory so Cargo does not mistake it for a benchmark target.

// Each includer uses a different subset.
#![allow(dead_code)]

pub(crate) mod yggdrasil;

use flagpole_core::Context;
use flagpole_core::model::EnvironmentSnapshot;
use serde_json::{Value, json};

/// (a) a boolean flag with no rules.
pub(crate) const A_NO_RULES: &str = "bench.a-no-rules";
/// (b) one `in` clause over 3 strings, which the context matches.
pub(crate) const B_IN_CLAUSE: &str = "bench.b-in-clause";
/// (c) a 50% rollout on the targeting key.
pub(crate) const C_ROLLOUT: &str = "bench.c-rollout-50";
/// (d) a rule with the `in` clause of (b) serving the rollout of (c).
pub(crate) const D_ROLLOUT_CLAUSE: &str = "bench.d-rollout-clause";

/// The evaluation cases: (benchmark case name, flag key).
pub(crate) const CASES: [(&str, &str); 4] = [
    ("a_no_rules", A_NO_RULES),
    ("b_in_clause", B_IN_CLAUSE),
    ("c_rollout", C_ROLLOUT),
    ("d_rollout_clause", D_ROLLOUT_CLAUSE),
];

/// The attribute the clauses test, and the values they accept.
pub(crate) const COUNTRY: &str = "country";
pub(crate) const COUNTRIES: [&str; 3] = ["no", "se", "dk"];

/// The caller's context, built once and reused: it matches the clauses (country `se`, the
/// second of three values, so the match is not the trivial first comparison).
pub(crate) fn context() -> Context {
    Context::new("user-4f1c2a9e").with(COUNTRY, "se")
}

/// Key of the `i`th filler flag (and of the `i`th flag of the compile benchmark).
pub(crate) fn filler_key(i: usize) -> String {
    format!("perf.filler-flag-{i:04}")
}

fn variants() -> Value {
    json!([{"key": "on", "value": true}, {"key": "off", "value": false}])
}

fn in_clause() -> Value {
    json!({"attribute": COUNTRY, "op": "in", "values": COUNTRIES})
}

fn rollout_50() -> Value {
    json!({"rollout": {"weights": [
        {"variant": "on", "weight": 50_000}, {"variant": "off", "weight": 50_000}]}})
}

fn flag(key: &str, rules: Value, default_serve: Value) -> Value {
    json!({
        "flag": {"key": key, "kind": "boolean", "variants": variants()},
        "config": {"enabled": true, "off_variant": "off", "rules": rules,
            "default_serve": default_serve}
    })
}

/// A flag with one rule (the `in` clause) serving a 50% rollout, defaulting to `off`: the
/// shape of case (d) and of every flag in the compile benchmark.
fn rule_rollout_flag(key: &str) -> Value {
    flag(
        key,
        json!([{"id": "nordics", "clauses": [in_clause()], "serve": rollout_50()}]),
        json!({"variant": "off"}),
    )
}

/// `n` flags of the (d) shape.
pub(crate) fn filler_flags(n: usize) -> Vec<Value> {
    (0..n).map(|i| rule_rollout_flag(&filler_key(i))).collect()
}

/// An environment of `n` flags of the (d) shape: the compile benchmark's input.
pub(crate) fn compile_env(n: usize) -> EnvironmentSnapshot {
    serde_json::from_value(json!({"version": 1, "flags": filler_flags(n)})).unwrap()
}

/// The four case flags plus `fillers` flags of the (d) shape, so lookups happen in a
/// realistically sized index.
pub(crate) fn eval_env(fillers: usize) -> EnvironmentSnapshot {
    let mut flags = vec![
        flag(A_NO_RULES, json!([]), json!({"variant": "on"})),
        flag(
            B_IN_CLAUSE,
            json!([{"id": "nordics", "clauses": [in_clause()], "serve": {"variant": "on"}}]),
            json!({"variant": "off"}),
        ),
        flag(C_ROLLOUT, json!([]), rollout_50()),
        rule_rollout_flag(D_ROLLOUT_CLAUSE),
    ];
    flags.extend(filler_flags(fillers));
    serde_json::from_value(json!({"version": 1, "flags": flags})).unwrap()
}
