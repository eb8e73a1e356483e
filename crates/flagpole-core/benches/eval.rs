//! Evaluation and compilation benchmarks, Flagpole against Unleash's yggdrasil engine on
//! equivalent flags, measured in the same run so the ratio is meaningful on a noisy machine.
//!
//! Groups are `eval/<case>` with functions `flagpole` and `yggdrasil`;
//! `cargo xtask bench-eval` runs a short version and reads the medians back.
//!
//! Both engines hold the same 1,004 flags (the four case flags plus 1,000 fillers), so
//! each evaluation's lookup is among a realistic number of keys. Each caller builds its
//! context once and reuses it, as an application does per request.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use flagpole_core::Snapshot;
use serde_json::{Value, json};
use unleash_yggdrasil::{ClientFeatures, Context as UnleashContext, EngineState, UpdateMessage};

mod common;
use common::{A_NO_RULES, B_IN_CLAUSE, C_ROLLOUT, CASES, COUNTRIES, COUNTRY, D_ROLLOUT_CLAUSE};

/// Filler flags in the evaluation snapshots, and flags in the compile benchmark.
const FLAGS: usize = 1000;

// --- The same flags for yggdrasil -------------------------------------------------------

fn ygg_in_constraint() -> Value {
    json!({"contextName": COUNTRY, "operator": "IN", "values": COUNTRIES})
}

/// 50% of users, sticky on the user id: our rollout buckets by the targeting key, which
/// is what the yggdrasil context carries as `userId`. `groupId` plays the role of our salt.
fn ygg_rollout(name: &str, constraints: Value) -> Value {
    json!({"name": "flexibleRollout", "constraints": constraints,
        "parameters": {"rollout": "50", "stickiness": "userId", "groupId": name}})
}

fn ygg_toggle(name: &str, strategy: Value) -> Value {
    json!({"name": name, "enabled": true, "strategies": [strategy]})
}

/// The (d) shape: a 50% rollout behind an IN constraint.
fn ygg_rule_rollout(name: &str) -> Value {
    ygg_toggle(name, ygg_rollout(name, json!([ygg_in_constraint()])))
}

fn ygg_features(toggles: Vec<Value>) -> ClientFeatures {
    serde_json::from_value(json!({"version": 2, "features": toggles, "query": null})).unwrap()
}

fn ygg_fillers() -> Vec<Value> {
    (0..FLAGS)
        .map(|i| ygg_rule_rollout(&common::filler_key(i)))
        .collect()
}

fn ygg_eval_features() -> ClientFeatures {
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

fn ygg_context() -> UnleashContext {
    let ours = common::context();
    UnleashContext {
        user_id: Some(ours.key.clone()),
        properties: Some(HashMap::from([(
            COUNTRY.to_string(),
            ours.get(COUNTRY).unwrap().as_str().unwrap().to_string(),
        )])),
        ..UnleashContext::default()
    }
}

fn ygg_engine(features: ClientFeatures) -> EngineState {
    let engine = EngineState::default();
    let warnings = engine.take_state(UpdateMessage::FullResponse(features));
    assert!(warnings.is_none(), "yggdrasil rejected the flags");
    engine
}

// --- Benchmarks -------------------------------------------------------------------------

fn evaluation(c: &mut Criterion) {
    let ours = Snapshot::compile_strict(&common::eval_env(FLAGS)).unwrap();
    let ctx = common::context();
    let theirs = ygg_engine(ygg_eval_features());
    let uctx = ygg_context();

    // Equivalence spot checks: the unconditional and clause cases must be on in both.
    for key in [A_NO_RULES, B_IN_CLAUSE] {
        assert!(ours.bool_value(key, &ctx, false), "{key}");
        assert!(theirs.is_enabled(key, &uctx, &None), "{key}");
    }

    for (case, key) in CASES {
        let mut group = c.benchmark_group(format!("eval/{case}"));
        group.bench_function("flagpole", |b| {
            b.iter(|| ours.bool_value(black_box(key), black_box(&ctx), false))
        });
        group.bench_function("yggdrasil", |b| {
            b.iter(|| theirs.is_enabled(black_box(key), black_box(&uctx), &None))
        });
        group.finish();
    }
}

/// Loading 1,000 flags, each a rule (one clause) serving a rollout. Both sides start from
/// already-deserialised input, cloned outside the timed section; outputs (and the consumed
/// input) are returned so their drop is not timed either.
fn compilation(c: &mut Criterion) {
    let env = common::compile_env(FLAGS);
    let features = ygg_features(ygg_fillers());
    assert!(Snapshot::compile_strict(&env).is_ok());

    let mut group = c.benchmark_group("eval/e_compile_1000");
    // Milliseconds per iteration: fewer, flat samples keep the run short.
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    group.bench_function("flagpole", |b| {
        b.iter_batched(
            || env.clone(),
            |env| {
                let snapshot = Snapshot::compile(black_box(&env));
                (env, snapshot)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("yggdrasil", |b| {
        b.iter_batched(
            || (EngineState::default(), features.clone()),
            |(engine, features)| {
                engine.take_state(UpdateMessage::FullResponse(black_box(features)));
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn config() -> Criterion {
    // Overridable from the command line (`-- --measurement-time 2`), as the xtask does.
    Criterion::default().warm_up_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = evaluation, compilation
}
criterion_main!(benches);
