//! Evaluation and compilation benchmarks, Flagpole against Unleash's yggdrasil engine on
//! equivalent flags, measured in the same run so the ratio is meaningful on a noisy machine.
//!
//! Groups are `eval/<case>` with functions `flagpole`, `flagpole_counted` (the same
//! snapshot counting evaluations, `Snapshot::with_counting`) and `yggdrasil`;
//! `cargo xtask bench-eval` runs a short version and reads the medians back.
//!
//! Both engines hold the same 1,004 flags (the four case flags plus 1,000 fillers), so
//! each evaluation's lookup is among a realistic number of keys. Each caller builds its
//! context once and reuses it, as an application does per request.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use flagpole_core::Snapshot;
use unleash_yggdrasil::{EngineState, UpdateMessage};

mod common;
use common::yggdrasil::{
    FLAGS, ygg_context, ygg_engine, ygg_eval_features, ygg_features, ygg_fillers,
};
use common::{A_NO_RULES, B_IN_CLAUSE, CASES};

// --- Benchmarks -------------------------------------------------------------------------

fn evaluation(c: &mut Criterion) {
    let ours = Snapshot::compile_strict(&common::eval_env(FLAGS)).unwrap();
    // The same flags, counting every evaluation: what SDKs reporting telemetry run.
    let counted = Snapshot::compile_strict(&common::eval_env(FLAGS))
        .unwrap()
        .with_counting();
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
        group.bench_function("flagpole_counted", |b| {
            b.iter(|| counted.bool_value(black_box(key), black_box(&ctx), false))
        });
        group.bench_function("yggdrasil", |b| {
            b.iter(|| theirs.is_enabled(black_box(key), black_box(&uctx), &None))
        });
        group.finish();
        // The counted function must really have counted.
        let mut counts = Vec::new();
        counted.drain_counts(0, 1, &mut counts);
        assert!(
            counts.iter().any(|c| c.flag == key),
            "{key}: nothing counted"
        );
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
