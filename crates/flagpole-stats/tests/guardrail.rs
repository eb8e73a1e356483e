//! The guardrail test under continuous monitoring, simulated: looking after every batch
//! must keep false rollbacks at most α over a whole rollout (the fixed-horizon test does
//! not), while a real regression is still caught. Seeded, so every run sees the same
//! draws.

use flagpole_stats::guardrail::{self, Guardrail, Worse};
use flagpole_stats::{Aggregate, StatsError, Summary, frequentist};

/// SplitMix64: a few lines, no dependency, and good enough for Bernoulli draws.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn binomial(&mut self, n: u64, p: f64) -> f64 {
        (0..n).filter(|_| self.next_f64() < p).count() as f64
    }
}

/// One arm's running counts of a binomial guardrail (errors per request).
#[derive(Clone, Copy, Default)]
struct Arm {
    n: u64,
    errors: f64,
}

impl Arm {
    fn add(&mut self, rng: &mut Rng, n: u64, rate: f64) {
        self.n += n;
        self.errors += rng.binomial(n, rate);
    }

    fn summary(&self) -> Summary {
        Aggregate::Proportion {
            n: self.n,
            sum: self.errors,
        }
        .summary()
    }
}

struct Outcome {
    /// Runs in which the sequential guardrail flagged a regression at some look.
    sequential: usize,
    /// Runs in which a fixed-horizon one-sided t-test at α flagged one at some look.
    naive: usize,
    /// Looks until the first sequential flag, per flagged run.
    looks_to_flag: Vec<usize>,
}

/// `runs` rollouts of `looks` batches of `batch` requests per arm, the new variant's
/// error rate `new_rate` against control's `base_rate`, checked after every batch.
fn simulate(
    seed: u64,
    runs: usize,
    looks: usize,
    batch: u64,
    base_rate: f64,
    new_rate: f64,
) -> Outcome {
    let mut rng = Rng(seed);
    let settings = Guardrail::default();
    let t_test = frequentist::TTest {
        difference: settings.difference,
        alpha: 2.0 * settings.alpha, // one-sided α as half of a two-sided 2α test
    };
    let mut outcome = Outcome {
        sequential: 0,
        naive: 0,
        looks_to_flag: Vec::new(),
    };
    for _ in 0..runs {
        let (mut control, mut new) = (Arm::default(), Arm::default());
        let (mut flagged, mut naive_flagged) = (false, false);
        for look in 1..=looks {
            control.add(&mut rng, batch, base_rate);
            new.add(&mut rng, batch, new_rate);
            let (c, n) = (control.summary(), new.summary());
            match guardrail::check(&c, &n, &settings) {
                Ok(v) if v.regression && !flagged => {
                    flagged = true;
                    outcome.looks_to_flag.push(look);
                }
                Ok(_) | Err(StatsError::ZeroVariance(_)) | Err(StatsError::ZeroBaseline) => {}
                Err(e) => panic!("unexpected refusal: {e}"),
            }
            if let Ok(t) = frequentist::two_sided(&c, &n, &t_test) {
                naive_flagged |= t.lift > 0.0 && t.p_value <= t_test.alpha;
            }
        }
        outcome.sequential += usize::from(flagged);
        outcome.naive += usize::from(naive_flagged);
    }
    outcome
}

/// A/A at a 5% error rate, 60 looks of 200 requests per arm: the sequential guardrail
/// flags at most α of the runs; peeking at a fixed-horizon test flags several times more.
#[test]
fn aa_false_rollbacks_stay_below_alpha_under_peeking() {
    let runs = 400;
    let o = simulate(17, runs, 60, 200, 0.05, 0.05);
    let rate = o.sequential as f64 / runs as f64;
    let naive = o.naive as f64 / runs as f64;
    println!(
        "A/A over {runs} runs of 60 looks: sequential {rate:.4}, fixed-horizon t-test {naive:.4}"
    );
    assert!(rate <= 0.05, "false rollback rate {rate}");
    assert!(
        naive > 0.10,
        "peeking at a fixed-horizon test should inflate errors, got {naive}"
    );
}

/// Issue 17's scenario: errors up by half on a 1% baseline (1% → 1.5%), 1,000 requests
/// per arm between looks: caught in nearly every run within the hour of looks.
#[test]
fn a_real_regression_is_caught() {
    let runs = 200;
    let o = simulate(18, runs, 60, 1000, 0.01, 0.015);
    let power = o.sequential as f64 / runs as f64;
    let mut looks = o.looks_to_flag.clone();
    looks.sort_unstable();
    let median = looks.get(looks.len() / 2).copied().unwrap_or(usize::MAX);
    println!(
        "1% -> 1.5% errors over {runs} runs: caught in {power:.3}, median look {median} of 60"
    );
    assert!(power >= 0.95, "caught in only {power} of runs");
}

/// The direction matters: an improvement is never a regression, and a drop in a metric
/// where lower is worse is one.
#[test]
fn direction() {
    let control = Summary {
        n: 20_000,
        mean: 0.10,
        variance: 0.09,
    };
    let lower = Summary {
        n: 20_000,
        mean: 0.08,
        variance: 0.08 * 0.92,
    };
    let higher_is_worse = Guardrail::default();
    let lower_is_worse = Guardrail {
        worse: Worse::Lower,
        ..Guardrail::default()
    };
    assert!(
        !guardrail::check(&control, &lower, &higher_is_worse)
            .unwrap()
            .regression
    );
    let v = guardrail::check(&control, &lower, &lower_is_worse).unwrap();
    assert!(
        v.regression && v.test.bound < 0.0 && v.test.p_value < 0.05,
        "{v:?}"
    );
    assert!(
        guardrail::check(&lower, &control, &higher_is_worse)
            .unwrap()
            .regression
    );
}

/// One stratum is the plain check; strata with no information are left out.
#[test]
fn one_stratum_is_the_plain_check() {
    let control = Summary {
        n: 20_000,
        mean: 0.10,
        variance: 0.09,
    };
    let new = Summary {
        n: 5_000,
        mean: 0.115,
        variance: 0.115 * 0.885,
    };
    let settings = Guardrail::default();
    let plain = guardrail::check(&control, &new, &settings).unwrap();
    assert_eq!(
        guardrail::check_strata(&[(control, new)], &settings).unwrap(),
        plain
    );
    let empty = Summary {
        n: 0,
        mean: 0.0,
        variance: 0.0,
    };
    let with_empty = guardrail::check_strata(&[(control, empty), (control, new)], &settings);
    assert_eq!(with_empty.unwrap().test.lift, plain.test.lift);
}
