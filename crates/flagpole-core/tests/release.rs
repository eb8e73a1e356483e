//! Release plans through real evaluation: each step's serve compiled into a flag and
//! evaluated for 10,000 simulated keys. Whoever gets the new variant keeps it at every later
//! step, and the comparison group's buckets never overlap the new variant's.

use std::fmt::Write as _;
use std::sync::Arc;

use flagpole_core::bucket::bucket;
use flagpole_core::model::{EnvironmentSnapshot, FlagState};
use flagpole_core::release::{PlanArm, ReleasePlan, Step, Template};
use flagpole_core::{Context, Snapshot};
use serde_json::json;

const KEYS: usize = 10_000;
const SALT: &str = "checkout-v2";

/// The flag at `step` of `plan`, compiled.
fn snapshot_at(plan: &ReleasePlan, step: usize) -> Snapshot {
    let state: FlagState = serde_json::from_value(json!({
        "flag": {"key": "checkout", "kind": "string", "salt": SALT, "variants": [
            {"key": "old", "value": "old"}, {"key": "new", "value": "new"}]},
        "config": {"enabled": true, "off_variant": "old",
                   "default_serve": serde_json::to_value(plan.serve(step)).unwrap()}
    }))
    .unwrap();
    let env = EnvironmentSnapshot {
        version: 1,
        flags: vec![Arc::new(state)],
        segments: vec![],
    };
    Snapshot::compile_strict(&env).expect("the plan's serve compiles")
}

/// For each key `user-0` .. `user-9999`, the variant served at each step.
fn served(plan: &ReleasePlan) -> Vec<Vec<bool>> {
    let mut ctx = Context::new("");
    (0..plan.steps.len())
        .map(|step| {
            let snapshot = snapshot_at(plan, step);
            (0..KEYS)
                .map(|i| {
                    ctx.key.clear();
                    write!(ctx.key, "user-{i}").unwrap();
                    let eval = snapshot.evaluate("checkout", &ctx);
                    let variant = eval.variant.expect("no error");
                    let is_new = variant == "new";
                    // The plan's own arm mapping agrees with evaluation, bucket by bucket.
                    let arm = plan.arm_of(step, bucket(SALT, &ctx.key));
                    assert_eq!(arm == PlanArm::New, is_new, "user-{i} at step {step}");
                    assert!(is_new || variant == "old");
                    is_new
                })
                .collect()
        })
        .collect()
}

fn check_plan(plan: &ReleasePlan) {
    plan.validate().unwrap();
    let served = served(plan);
    // Per key: the first step that served it the new variant, and whether every later
    // step did too.
    let by_key: Vec<Vec<bool>> = (0..KEYS)
        .map(|key| served.iter().map(|step| step[key]).collect())
        .collect();
    let (mut got, mut kept) = (0usize, 0usize);
    for steps in &by_key {
        if let Some(first) = steps.iter().position(|&new| new) {
            got += 1;
            kept += usize::from(steps[first..].iter().all(|&new| new));
        }
    }
    println!(
        "{:?}: {kept} of the {got} keys (of {KEYS}) that got the new variant kept it at every later step",
        plan.steps.iter().map(|s| s.percent).collect::<Vec<_>>()
    );
    if plan.steps.last().unwrap().percent == 100.0 {
        assert_eq!(got, KEYS, "every key has the new variant at 100%");
    }
    assert_eq!(kept, got, "stickiness must be 100%");
    for (step, s) in plan.steps.iter().enumerate() {
        let arms = plan.arm_buckets(step);
        // Disjoint, and together every bucket.
        assert_eq!(arms.new.end, arms.control.start);
        assert!(arms.new.start == 0 && arms.control.end == 100_000);
        // The share served is the step's percentage, within 4 standard deviations.
        let share = served[step].iter().filter(|&&b| b).count() as f64 / KEYS as f64;
        let p = s.percent / 100.0;
        let sd = (p * (1.0 - p) / KEYS as f64).sqrt();
        assert!(
            (share - p).abs() <= 4.0 * sd + 1e-12,
            "step {step}: {share} vs {p}"
        );
    }
}

#[test]
fn templates_are_sticky_and_arms_disjoint() {
    check_plan(&ReleasePlan::from_template(Template::Gradual, "old", "new"));
    check_plan(&ReleasePlan::from_template(Template::Canary, "old", "new"));
}

#[test]
fn edited_steps_are_sticky() {
    let mut plan = ReleasePlan::from_template(Template::Gradual, "old", "new");
    plan.steps = [0.5, 2.0, 2.001, 33.333, 70.0, 99.999]
        .iter()
        .map(|&percent| Step {
            percent,
            min_duration_ms: 60_000,
            min_units: 50,
        })
        .collect();
    check_plan(&plan);
}
