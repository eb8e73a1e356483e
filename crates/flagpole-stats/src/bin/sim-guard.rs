//! `sim-guard` (run by `cargo xtask sim-guard`): the guardian's decision simulated over
//! whole release plans, with a seeded RNG, checked every 60 s of simulated time.
//!
//! - A/A: 1,000 plans on the default template whose new variant is exactly as good as
//!   control (1% errors). The share rolled back is the false rollback rate (≤ 5%).
//! - Regression: 1,000 plans whose new variant fails 50% more often (1.5% against 1%). The
//!   share rolled back before the 25% step (≥ 95%) and the median time to that roll back.
//! - A/A under drift: 1,000 plans whose error rate rises from 1% to 1.5% over the plan in
//!   both arms alike. The share rolled back (≤ 5%).
//!
//! Traffic is 1,000 requests per minute, split between the arms by the step's percentage
//! (10 requests a minute reach the new variant at 1%); every request is a unit and an event
//! of the error guardrail. Steps last one hour with the template's minimum units. The
//! aggregates are the plan's, per step, as the guardian expects.
//!
//! Prints one JSON line and exits with 1 when a threshold is missed.

use flagpole_core::release::{ReleasePlan, Template};
use flagpole_stats::Aggregate;
use flagpole_stats::guardian::{self, Arms, Check, Decision, GuardrailData, decide};
use flagpole_stats::guardrail::Worse;

const REQUESTS_PER_MINUTE: u64 = 1_000;
const CHECK_EVERY_MS: u64 = 60_000;
const BASE_ERROR_RATE: f64 = 0.01;
const REGRESSED_ERROR_RATE: f64 = 0.015;
const MAX_FALSE_ROLLBACK: f64 = 0.05;
const MIN_CAUGHT_BEFORE_25: f64 = 0.95;
/// A/A with both arms' error rate rising by half over the plan's five hours (1% to 1.5%),
/// as traffic does with the time of day: the arms are split differently at each step, so
/// only a comparison made step by step keeps this from looking like a regression.
const DRIFT: f64 = 0.5;
/// Runs longer than this (a day of simulated time) are cut off as stuck.
const MAX_MINUTES: u64 = 24 * 60;

/// SplitMix64: a few lines, no dependency, good enough for Bernoulli draws (the same
/// generator as `tests/guardrail.rs`).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Binomial(n, p) by inversion: one uniform and about n·p steps, instead of n
    /// Bernoulli draws (what makes 2,000 plans of 180,000 requests take seconds). Exact
    /// for the small p simulated here; q^n must not underflow (n·p ≲ 700).
    fn binomial(&mut self, n: u64, p: f64) -> f64 {
        debug_assert!(p < 0.5 && (n as f64) * p < 500.0);
        let q = 1.0 - p;
        let ratio = p / q;
        let mut f = q.powf(n as f64);
        let mut u = self.next_f64();
        let mut k = 0u64;
        while u > f && k < n {
            u -= f;
            k += 1;
            f *= ratio * (n - k + 1) as f64 / k as f64;
        }
        k as f64
    }
}

/// How one plan ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// Reached 100% (or its last step's checks passed).
    Completed,
    /// Rolled back at `minute`, during step `step`.
    RolledBack { minute: u64, step: usize },
    /// Held for a person, at step `step`.
    Held { step: usize },
    /// Still running after [`MAX_MINUTES`].
    Stuck,
}

/// One plan from start to end, the new variant's error rate `new_rate`, both arms' rates
/// rising by the fraction `drift` every 300 minutes (the default template's five hours).
fn run_plan(rng: &mut Rng, plan: &ReleasePlan, new_rate: f64, drift: f64) -> End {
    // Each step's requests and errors per arm, the current step last.
    let mut by_step = vec![Arms {
        control: (0u64, 0.0),
        new: (0u64, 0.0),
    }];
    let (mut step, mut step_start, mut extended) = (0usize, 0u64, false);
    let mut units = Arms { control: 0, new: 0 };
    for minute in 1..=MAX_MINUTES {
        // A minute of traffic, split by the step's buckets.
        let to_new = REQUESTS_PER_MINUTE * u64::from(plan.new_weight(step)) / 100_000;
        let to_control = REQUESTS_PER_MINUTE - to_new;
        let current = by_step.last_mut().expect("one entry per step");
        current.control.0 += to_control;
        let rise = 1.0 + drift * minute as f64 / 300.0;
        current.control.1 += rng.binomial(to_control, BASE_ERROR_RATE * rise);
        current.new.0 += to_new;
        current.new.1 += rng.binomial(to_new, new_rate * rise);
        units.control += to_control;
        units.new += to_new;

        let now_ms = minute * 60_000;
        if now_ms % CHECK_EVERY_MS != 0 {
            continue;
        }
        let proportion = |(n, sum): (u64, f64)| Aggregate::Proportion { n, sum };
        let guardrails = [GuardrailData {
            name: "errors".into(),
            settings: guardian::plan_guardrail(Worse::Higher),
            by_step: by_step
                .iter()
                .map(|s| Arms {
                    control: proportion(s.control),
                    new: proportion(s.new),
                })
                .collect(),
        }];
        let decision = decide(&Check {
            plan,
            step,
            elapsed_ms: now_ms - step_start,
            extended,
            units,
            guardrails: &guardrails,
        });
        match decision {
            Decision::Advance if plan.is_last(step) => return End::Completed,
            Decision::Advance => {
                step += 1;
                step_start = now_ms;
                extended = false;
                units = Arms { control: 0, new: 0 };
                by_step.push(Arms {
                    control: (0, 0.0),
                    new: (0, 0.0),
                });
            }
            Decision::Extend { .. } => extended = true,
            Decision::Hold { .. } => return End::Held { step },
            Decision::RollBack { .. } => return End::RolledBack { minute, step },
            Decision::Wait { .. } => {}
        }
    }
    End::Stuck
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let seed = arg("--seed", 17);
    let runs = arg("--runs", 1_000) as usize;
    let started = std::time::Instant::now();
    let plan = ReleasePlan::from_template(Template::Gradual, "control", "new");
    plan.validate().expect("the default template is valid");
    // The first step at 25% or more: a roll back must come before it.
    let step_25 = plan
        .steps
        .iter()
        .position(|s| s.percent >= 25.0)
        .expect("the template reaches 25%");

    let mut rng = Rng(seed);
    let aa: Vec<End> = (0..runs)
        .map(|_| run_plan(&mut rng, &plan, BASE_ERROR_RATE, 0.0))
        .collect();
    let bad: Vec<End> = (0..runs)
        .map(|_| run_plan(&mut rng, &plan, REGRESSED_ERROR_RATE, 0.0))
        .collect();
    let drifting: Vec<End> = (0..runs)
        .map(|_| run_plan(&mut rng, &plan, BASE_ERROR_RATE, DRIFT))
        .collect();

    let share = |ends: &[End], f: &dyn Fn(&End) -> bool| {
        ends.iter().filter(|e| f(e)).count() as f64 / ends.len() as f64
    };
    let rolled_back = |e: &End| matches!(e, End::RolledBack { .. });
    let false_rollback = share(&aa, &rolled_back);
    let drift_false_rollback = share(&drifting, &rolled_back);
    let aa_completed = share(&aa, &|e| *e == End::Completed);
    let aa_held = share(&aa, &|e| matches!(e, End::Held { .. }));
    let mut minutes: Vec<u64> = bad
        .iter()
        .filter_map(|e| match *e {
            End::RolledBack { minute, step } if step < step_25 => Some(minute),
            _ => None,
        })
        .collect();
    minutes.sort_unstable();
    let caught_before_25 = minutes.len() as f64 / runs as f64;
    let caught_at_all = share(&bad, &rolled_back);
    let median = if minutes.is_empty() {
        None
    } else {
        let m = minutes.len();
        Some(if m % 2 == 1 {
            minutes[m / 2] as f64
        } else {
            (minutes[m / 2 - 1] + minutes[m / 2]) as f64 / 2.0
        })
    };
    let pass = false_rollback <= MAX_FALSE_ROLLBACK
        && drift_false_rollback <= MAX_FALSE_ROLLBACK
        && caught_before_25 >= MIN_CAUGHT_BEFORE_25;
    let line = serde_json::json!({
        "seed": seed,
        "runs": runs,
        "template": plan.steps.iter().map(|s| s.percent).collect::<Vec<_>>(),
        "step_minutes": plan.steps[0].min_duration_ms / 60_000,
        "requests_per_minute": REQUESTS_PER_MINUTE,
        "check_every_s": CHECK_EVERY_MS / 1000,
        "aa_false_rollback_rate": false_rollback,
        "aa_completed_rate": aa_completed,
        "aa_held_rate": aa_held,
        "aa_drift": DRIFT,
        "aa_drift_false_rollback_rate": drift_false_rollback,
        "regression": {"control_error_rate": BASE_ERROR_RATE, "new_error_rate": REGRESSED_ERROR_RATE},
        "rolled_back_before_25pct_rate": caught_before_25,
        "rolled_back_at_all_rate": caught_at_all,
        "median_minutes_to_rollback": median,
        "max_false_rollback_rate": MAX_FALSE_ROLLBACK,
        "min_rolled_back_before_25pct_rate": MIN_CAUGHT_BEFORE_25,
        "pass": pass,
        "elapsed_s": started.elapsed().as_secs_f64(),
    });
    println!("{line}");
    if !pass {
        std::process::exit(1);
    }
}
