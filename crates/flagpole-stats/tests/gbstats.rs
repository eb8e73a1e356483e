//! Conformance with GrowthBook's engine, gbstats 0.8.0: every case of
//! `gbstats/fixtures.json` (hand-written edge cases and seeded random aggregates, with
//! gbstats' answers computed by `gbstats/answers.py`) through flagpole-stats.
//!
//! Within 1e-6 for lifts, standard errors, interval bounds, p-values, chance to win and
//! risk; within 1e-9 for the SRM p-value. Where gbstats gives an error result, Flagpole
//! gives the error of the same code, with a message; where gbstats 0.8.0 raises
//! ZeroDivisionError (a prior rescaled by a zero control mean), Flagpole refuses with
//! a zero-baseline error.
//!
//! With `FLAGPOLE_GBSTATS_FIXTURES` set (as `cargo xtask gbstats` does, after recomputing
//! the answers with the real package), that file is the reference, and the committed one
//! must match it to 1e-12: the committed answers are gbstats' and stay so.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flagpole_stats::bayesian::{self, EffectBayesian, GaussianPrior};
use flagpole_stats::sequential::{self, Sequential, Side};
use flagpole_stats::{Aggregate, Difference, StatsError, Summary, frequentist, srm};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-6;
const SRM_TOLERANCE: f64 = 1e-9;
/// The one-sided answers come from quadrature, good to ~1e-12.
const ONE_SIDED_P_TOLERANCE: f64 = 1e-9;
const DRIFT_TOLERANCE: f64 = 1e-12;

#[derive(Deserialize)]
struct Fixtures {
    generated_by: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    arms: Vec<Aggregate>,
    weights: Vec<f64>,
    #[serde(default)]
    settings: Settings,
    expected: Expected,
}

/// answers.py's DEFAULT_SETTINGS, overridden per case.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    alpha: f64,
    tuning: f64,
    prior: GaussianPrior,
    prior_scale: Difference,
    inverse: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            alpha: 0.05,
            tuning: sequential::DEFAULT_TUNING,
            prior: GaussianPrior::default(),
            prior_scale: Difference::Relative,
            inverse: false,
        }
    }
}

#[derive(Deserialize)]
struct Expected {
    srm_p: f64,
    comparisons: Vec<Comparison>,
}

#[derive(Deserialize)]
struct Comparison {
    arm: usize,
    relative: Answers,
    absolute: Answers,
}

#[derive(Deserialize)]
struct Answers {
    frequentist: Answer,
    sequential: Answer,
    bayesian: Answer,
    one_sided: Option<OneSided>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Error { error: String },
    Exception { exception: String },
    Value(Values),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    lift: f64,
    stddev: f64,
    interval: [f64; 2],
    p_value: Option<f64>,
    chance_to_win: Option<f64>,
    risk: Option<[f64; 2]>,
}

#[derive(Deserialize)]
struct OneSided {
    greater: OneSidedAnswer,
    less: OneSidedAnswer,
}

#[derive(Deserialize)]
struct OneSidedAnswer {
    p_value: f64,
    bound: f64,
}

/// Largest deviation per quantity, counts, and every failure in words.
#[derive(Default)]
struct Tally {
    worst: BTreeMap<&'static str, f64>,
    compared: BTreeMap<&'static str, usize>,
    errors: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn close(&mut self, what: &'static str, got: f64, want: f64, tolerance: f64, context: &str) {
        // Equal infinities (or both exactly equal) deviate by 0; NaN always fails.
        let deviation = if got == want { 0.0 } else { (got - want).abs() };
        *self.compared.entry(what).or_default() += 1;
        let worst = self.worst.entry(what).or_default();
        *worst = if deviation.is_nan() {
            f64::NAN
        } else {
            worst.max(deviation)
        };
        if deviation.is_nan() || deviation > tolerance {
            self.failures.push(format!(
                "{context}: {what} {got:e}, gbstats {want:e}, off by {deviation:.1e}"
            ));
        }
    }

    fn fail(&mut self, context: &str, message: String) {
        self.failures.push(format!("{context}: {message}"));
    }
}

fn fixtures_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gbstats/fixtures.json")
}

fn load(path: &std::path::Path) -> (Fixtures, serde_json::Value) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let raw: serde_json::Value = serde_json::from_str(&text).expect("fixtures are JSON");
    let parsed =
        serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (parsed, raw)
}

#[test]
fn agrees_with_gbstats() {
    let (committed, committed_raw) = load(&fixtures_path());
    let fresh = std::env::var_os("FLAGPOLE_GBSTATS_FIXTURES").map(PathBuf::from);
    let fixtures = match &fresh {
        Some(path) => {
            let (fresh, fresh_raw) = load(path);
            let mut drift = Vec::new();
            same_json("", &committed_raw, &fresh_raw, &mut drift);
            assert!(
                drift.is_empty(),
                "the committed fixtures are not what {} answers now (run `cargo xtask gbstats \
                 --regenerate` if that is intended):\n{}",
                fresh.generated_by,
                drift.join("\n")
            );
            println!(
                "gbstats: committed answers equal {} to {DRIFT_TOLERANCE:e}",
                path.display()
            );
            fresh
        }
        None => committed,
    };

    let mut tally = Tally::default();
    for case in &fixtures.cases {
        check_case(case, &mut tally);
    }
    let random = fixtures
        .cases
        .iter()
        .filter(|c| c.name.starts_with("random-"))
        .count();
    println!(
        "gbstats conformance ({}): {} cases ({} random, {} edge), values compared {:?}, \
         error results {:?}, largest deviations {:?}",
        fixtures.generated_by,
        fixtures.cases.len(),
        random,
        fixtures.cases.len() - random,
        tally.compared,
        tally.errors,
        tally.worst,
    );
    assert!(random >= 50, "at least 50 random fixtures, found {random}");
    assert!(
        tally.failures.is_empty(),
        "{} disagreements:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}

fn check_case(case: &Case, tally: &mut Tally) {
    let users: Vec<u64> = case.arms.iter().map(Aggregate::n).collect();
    match srm::p_value(&users, &case.weights) {
        Ok(p) => tally.close("srm_p", p, case.expected.srm_p, SRM_TOLERANCE, &case.name),
        Err(e) => tally.fail(&case.name, format!("SRM refused: {e}")),
    }
    let s = &case.settings;
    let control = case.arms[0].summary();
    for comparison in &case.expected.comparisons {
        let treatment = case.arms[comparison.arm].summary();
        for (difference, answers) in [
            (Difference::Relative, &comparison.relative),
            (Difference::Absolute, &comparison.absolute),
        ] {
            let context = format!("{} arm {} {difference:?}", case.name, comparison.arm);
            let t = frequentist::TTest {
                difference,
                alpha: s.alpha,
            };
            let got = frequentist::two_sided(&control, &treatment, &t)
                .map(|r| (r.lift, r.stddev, r.interval, Some(r.p_value), None, None));
            compare(
                tally,
                &format!("{context} t-test"),
                got,
                &answers.frequentist,
            );

            let seq = Sequential {
                difference,
                alpha: s.alpha,
                tuning: s.tuning,
            };
            let got = sequential::two_sided(&control, &treatment, &seq)
                .map(|r| (r.lift, r.stddev, r.interval, Some(r.p_value), None, None));
            compare(
                tally,
                &format!("{context} sequential"),
                got,
                &answers.sequential,
            );

            let bayes = EffectBayesian {
                difference,
                alpha: s.alpha,
                prior: s.prior,
                prior_scale: s.prior_scale,
                inverse: s.inverse,
            };
            let got = bayesian::effect_test(&control, &treatment, &bayes).map(|r| {
                (
                    r.lift,
                    r.stddev,
                    r.interval,
                    None,
                    Some(r.chance_to_win),
                    Some([r.risk.control, r.risk.treatment]),
                )
            });
            compare(
                tally,
                &format!("{context} bayesian"),
                got,
                &answers.bayesian,
            );

            check_one_sided(
                tally,
                &context,
                &control,
                &treatment,
                &seq,
                answers.one_sided.as_ref(),
            );
        }
    }
}

type Got = Result<
    (
        f64,
        f64,
        flagpole_stats::Interval,
        Option<f64>,
        Option<f64>,
        Option<[f64; 2]>,
    ),
    StatsError,
>;

fn compare(tally: &mut Tally, context: &str, got: Got, want: &Answer) {
    match (got, want) {
        (Ok((lift, stddev, interval, p, ctw, risk)), Answer::Value(v)) => {
            tally.close("lift", lift, v.lift, TOLERANCE, context);
            tally.close("stddev", stddev, v.stddev, TOLERANCE, context);
            tally.close("interval", interval.low, v.interval[0], TOLERANCE, context);
            tally.close("interval", interval.high, v.interval[1], TOLERANCE, context);
            if let (Some(p), Some(want)) = (p, v.p_value) {
                tally.close("p_value", p, want, TOLERANCE, context);
            }
            if let (Some(c), Some(want)) = (ctw, v.chance_to_win) {
                tally.close("chance_to_win", c, want, TOLERANCE, context);
            }
            if let (Some(r), Some(want)) = (risk, v.risk) {
                tally.close("risk", r[0], want[0], TOLERANCE, context);
                tally.close("risk", r[1], want[1], TOLERANCE, context);
            }
        }
        (Err(e), Answer::Error { error }) => {
            *tally.errors.entry(error.clone()).or_default() += 1;
            if e.code() != error {
                tally.fail(
                    context,
                    format!("refused with {} ({e}), gbstats with {error}", e.code()),
                );
            } else if e.to_string().len() < 20 {
                tally.fail(context, format!("message too thin: {e:?}"));
            }
        }
        (Err(e), Answer::Exception { exception }) => {
            *tally
                .errors
                .entry(format!("gbstats {exception}"))
                .or_default() += 1;
            let expected = matches!(e, StatsError::ZeroBaseline | StatsError::ZeroBaselinePrior);
            if exception != "ZeroDivisionError" || !expected {
                tally.fail(
                    context,
                    format!("gbstats raised {exception}; Flagpole said {e:?}"),
                );
            }
        }
        (Ok(_), Answer::Error { error }) => {
            tally.fail(context, format!("answered, gbstats refused with {error}"))
        }
        (Ok(_), Answer::Exception { exception }) => {
            tally.fail(context, format!("answered, gbstats raised {exception}"))
        }
        (Err(e), Answer::Value(_)) => {
            tally.fail(context, format!("refused ({e}), gbstats answered"))
        }
    }
}

fn check_one_sided(
    tally: &mut Tally,
    context: &str,
    control: &Summary,
    treatment: &Summary,
    settings: &Sequential,
    want: Option<&OneSided>,
) {
    for (side, pick) in [(Side::Greater, 0), (Side::Less, 1)] {
        let got = sequential::one_sided(control, treatment, side, settings);
        match (got, want) {
            (Ok(r), Some(w)) => {
                let w = if pick == 0 { &w.greater } else { &w.less };
                let context = format!("{context} one-sided {side:?}");
                tally.close(
                    "one_sided_p",
                    r.p_value,
                    w.p_value,
                    ONE_SIDED_P_TOLERANCE,
                    &context,
                );
                tally.close("one_sided_bound", r.bound, w.bound, TOLERANCE, &context);
                if r.rejects != (r.bound * if pick == 0 { 1.0 } else { -1.0 } > 0.0) {
                    tally.fail(
                        &context,
                        format!("rejects = {} but bound {}", r.rejects, r.bound),
                    );
                }
            }
            // Same refusals as the two-sided tests, which are checked above.
            (Err(_), None) => {}
            (Ok(_), None) => tally.fail(
                context,
                "one-sided answered where the t-test refused".into(),
            ),
            (Err(e), Some(_)) => tally.fail(context, format!("one-sided refused: {e}")),
        }
    }
}

/// Every number in `a` within DRIFT_TOLERANCE (relative above 1) of `b`, the rest equal.
fn same_json(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    if out.len() > 20 {
        return;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let deviation = (x - y).abs();
            if deviation.is_nan() || deviation > DRIFT_TOLERANCE * y.abs().max(1.0) {
                out.push(format!("{path}: committed {x:e}, now {y:e}"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same_json(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
            for (k, xv) in x {
                match y.get(k) {
                    // Which gbstats, numpy and scipy made the file may change.
                    _ if k == "generated_by" => {}
                    Some(yv) => same_json(&format!("{path}.{k}"), xv, yv, out),
                    None => out.push(format!("{path}.{k}: missing now")),
                }
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: committed {a}, now {b}")),
    }
}
