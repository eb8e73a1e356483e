//! An experiment's results from per-arm sums: units per arm and the SRM check, then per
//! metric and arm n, mean, variance and the comparison with control, computed by
//! flagpole-stats (gbstats' formulas). Nothing statistical is computed here: this module
//! only turns sums into `flagpole_stats::Aggregate`s and the tests' answers into the API's
//! shape.

use flagpole_stats::{Aggregate, Component, Difference, StatsError, Summary};
use serde::Serialize;

use super::{Analysis, Arm, Metric, MetricKind, Mode};

/// Below this many units in an arm, a metric is "collecting data".
pub(crate) const MIN_UNITS: u64 = 50;
/// Below this many conversions in an arm, a binomial metric is "collecting data".
pub(crate) const MIN_CONVERSIONS: f64 = 5.0;
/// The SRM check is shown once every arm has this many units.
pub(crate) const SRM_MIN_UNITS: u64 = 8;
/// An SRM p-value below this is a warning.
pub(crate) const SRM_THRESHOLD: f64 = 0.001;

/// One arm's sums for one metric over its (included) units. A unit without events adds
/// a unit and zeros. For a binomial metric `a` is 0 or 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sums {
    /// Units.
    pub(crate) n: u64,
    /// Σa.
    pub(crate) a: f64,
    /// Σa².
    pub(crate) a2: f64,
    /// Σb (ratio denominators).
    pub(crate) b: f64,
    /// Σb².
    pub(crate) b2: f64,
    /// Σab.
    pub(crate) ab: f64,
}

impl Sums {
    /// The aggregate flagpole-stats takes for a metric of `kind`.
    pub(crate) fn aggregate(&self, kind: MetricKind) -> Aggregate {
        match kind {
            MetricKind::Binomial => Aggregate::Proportion {
                n: self.n,
                sum: self.a,
            },
            MetricKind::Count | MetricKind::Sum => Aggregate::Mean {
                n: self.n,
                sum: self.a,
                sum_squares: self.a2,
            },
            MetricKind::Mean | MetricKind::Ratio => Aggregate::Ratio {
                n: self.n,
                numerator: Component::Mean {
                    sum: self.a,
                    sum_squares: self.a2,
                },
                denominator: Component::Mean {
                    sum: self.b,
                    sum_squares: self.b2,
                },
                sum_of_products: self.ab,
            },
        }
    }
}

/// The results document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ExperimentResults)]
pub(crate) struct Results {
    /// When the aggregates were read (epoch ms): everything stored before is included.
    pub(crate) as_of: i64,
    /// The test used.
    pub(crate) mode: Mode,
    /// Intervals cover 1 − alpha.
    pub(crate) alpha: f64,
    /// Units per arm (exposed to exactly one arm), in arm order, control first.
    pub(crate) arms: Vec<ArmUnits>,
    /// Units excluded because they were exposed to more than one variant.
    pub(crate) excluded_multiple_exposures: u64,
    /// Sample ratio mismatch against the configured split.
    pub(crate) srm: Srm,
    /// True until every arm has 50 units (and 5 conversions on binomial metrics):
    /// numbers are shown but too early to read.
    pub(crate) collecting_data: bool,
    /// Per metric, primary first.
    pub(crate) metrics: Vec<MetricResult>,
}

/// Units in one arm.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ArmUnits {
    /// The arm's variant.
    pub(crate) variant: String,
    /// Its configured share in percent.
    pub(crate) weight: f64,
    /// Units exposed to it (and to no other arm).
    pub(crate) units: u64,
}

/// The SRM check: χ² of units per arm against the split.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Srm {
    /// The p-value of "units were assigned in the configured proportions".
    pub(crate) p_value: f64,
    /// False until every arm has 8 units: before that the check says nothing.
    pub(crate) checked: bool,
    /// Checked and p < 0.001: assignment or exposure logging is broken, whatever the
    /// metrics say.
    pub(crate) warning: bool,
    /// The warning in words, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

/// One metric's results.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct MetricResult {
    /// The metric's key.
    pub(crate) key: String,
    /// `primary`, `secondary` or `guardrail`.
    pub(crate) role: &'static str,
    /// What it measures.
    pub(crate) kind: MetricKind,
    /// Too few units (or conversions) in some arm to read yet.
    pub(crate) collecting_data: bool,
    /// Per arm, control first.
    pub(crate) arms: Vec<ArmResult>,
}

/// One arm of one metric.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ArmResult {
    /// The arm's variant.
    pub(crate) variant: String,
    /// Units.
    pub(crate) n: u64,
    /// Mean per unit (a ratio of sums for mean and ratio metrics).
    pub(crate) mean: f64,
    /// Variance of one unit's value.
    pub(crate) variance: f64,
    /// Units that converted (binomial metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conversions: Option<f64>,
    /// Against control; absent for control itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) comparison: Option<Comparison>,
}

/// A treatment against control.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct Comparison {
    /// (treatment − control) / control, with its interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relative: Option<Lift>,
    /// treatment − control in the metric's unit, with its interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) absolute: Option<Lift>,
    /// Two-sided p-value of "no effect" (frequentist and sequential), from the relative
    /// test as gbstats reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p_value: Option<f64>,
    /// p < alpha.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) significant: Option<bool>,
    /// Posterior probability that treatment beats control (Bayesian).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) chance_to_win: Option<f64>,
    /// Expected relative loss of keeping control and of shipping treatment (Bayesian).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) risk: Option<Risk>,
    /// Why there are no numbers (gbstats' message code and words), e.g. a zero control
    /// mean or zero variance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<StatsProblem>,
}

/// A lift and its interval.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub(crate) struct Lift {
    /// Point estimate.
    pub(crate) estimate: f64,
    /// Lower bound of the (1 − alpha) interval.
    pub(crate) low: f64,
    /// Upper bound.
    pub(crate) high: f64,
}

/// Expected loss of each decision.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[schema(as = ExperimentRisk)]
pub(crate) struct Risk {
    /// Of keeping control.
    pub(crate) control: f64,
    /// Of shipping treatment.
    pub(crate) treatment: f64,
}

/// A comparison flagpole-stats refused.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct StatsProblem {
    /// gbstats' message code (`ZERO_NEGATIVE_VARIANCE`, ...).
    pub(crate) code: &'static str,
    /// In words.
    pub(crate) message: String,
}

impl From<StatsError> for StatsProblem {
    fn from(e: StatsError) -> Self {
        StatsProblem {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// What [`compute`] reads: per arm (in arm order) its units, and per metric per arm its
/// sums.
pub(crate) struct Input<'a> {
    /// Arms, control first.
    pub(crate) arms: &'a [Arm],
    /// Units per arm, same order.
    pub(crate) units: &'a [u64],
    /// Units exposed to more than one variant.
    pub(crate) excluded: u64,
    /// (role, metric, sums per arm in arm order).
    pub(crate) metrics: Vec<(&'static str, &'a Metric, Vec<Sums>)>,
    /// Settings.
    pub(crate) analysis: Analysis,
    /// When the sums were read.
    pub(crate) as_of: i64,
}

/// The results of an experiment from its sums.
pub(crate) fn compute(input: Input<'_>) -> Results {
    let weights: Vec<f64> = input.arms.iter().map(|a| a.weight).collect();
    let srm_p = flagpole_stats::srm::p_value(input.units, &weights).unwrap_or(1.0);
    let checked = input.units.iter().all(|&u| u >= SRM_MIN_UNITS);
    let warning = checked && srm_p < SRM_THRESHOLD;
    let srm = Srm {
        p_value: srm_p,
        checked,
        warning,
        message: warning.then(|| {
            format!(
                "Sample ratio mismatch: the units per arm ({}) do not fit the configured split \
                 ({}); p = {srm_p:.2e}. Something assigns or logs exposures unevenly (a \
                 client that drops exposures, a redirect, a bot filter); do not trust these \
                 results until it is found.",
                join(input.units.iter().map(u64::to_string)),
                join(weights.iter().map(|w| format!("{w}%"))),
            )
        }),
    };
    let metrics: Vec<MetricResult> = input
        .metrics
        .iter()
        .map(|(role, metric, sums)| metric_result(role, metric, sums, input.arms, input.analysis))
        .collect();
    Results {
        as_of: input.as_of,
        mode: input.analysis.mode,
        alpha: input.analysis.alpha,
        arms: input
            .arms
            .iter()
            .zip(input.units)
            .map(|(arm, &units)| ArmUnits {
                variant: arm.variant.clone(),
                weight: arm.weight,
                units,
            })
            .collect(),
        excluded_multiple_exposures: input.excluded,
        srm,
        collecting_data: input.units.iter().any(|&u| u < MIN_UNITS)
            || metrics.iter().any(|m| m.collecting_data),
        metrics,
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(" / ")
}

fn metric_result(
    role: &'static str,
    metric: &Metric,
    sums: &[Sums],
    arms: &[Arm],
    analysis: Analysis,
) -> MetricResult {
    let summaries: Vec<Summary> = sums
        .iter()
        .map(|s| s.aggregate(metric.kind).summary())
        .collect();
    let binomial = metric.kind == MetricKind::Binomial;
    let collecting_data = sums
        .iter()
        .any(|s| s.n < MIN_UNITS || (binomial && s.a < MIN_CONVERSIONS));
    let arms = arms
        .iter()
        .zip(sums.iter().zip(&summaries))
        .enumerate()
        .map(|(i, (arm, (s, summary)))| ArmResult {
            variant: arm.variant.clone(),
            n: summary.n,
            mean: summary.mean,
            variance: summary.variance,
            conversions: binomial.then_some(s.a),
            comparison: (i > 0).then(|| compare(&summaries[0], summary, metric, analysis)),
        })
        .collect();
    MetricResult {
        key: metric.key.clone(),
        role,
        kind: metric.kind,
        collecting_data,
        arms,
    }
}

/// One test's answer: the lift, its p-value (frequentist tests), chance to win and risk
/// (Bayesian).
type Tested = (Lift, Option<f64>, Option<(f64, Risk)>);

/// Treatment against control with the configured test, relative and absolute.
fn compare(
    control: &Summary,
    treatment: &Summary,
    metric: &Metric,
    analysis: Analysis,
) -> Comparison {
    let mut out = Comparison::default();
    for difference in [Difference::Relative, Difference::Absolute] {
        let tested: Result<Tested, StatsError> = match analysis.mode {
            Mode::Frequentist => {
                let settings = flagpole_stats::frequentist::TTest {
                    difference,
                    alpha: analysis.alpha,
                };
                flagpole_stats::frequentist::two_sided(control, treatment, &settings)
                    .map(|r| (lift(r.lift, r.interval), Some(r.p_value), None))
            }
            Mode::Sequential => {
                let settings = flagpole_stats::sequential::Sequential {
                    difference,
                    alpha: analysis.alpha,
                    ..Default::default()
                };
                flagpole_stats::sequential::two_sided(control, treatment, &settings)
                    .map(|r| (lift(r.lift, r.interval), Some(r.p_value), None))
            }
            Mode::Bayesian => {
                let settings = flagpole_stats::bayesian::EffectBayesian {
                    difference,
                    alpha: analysis.alpha,
                    inverse: metric.inverse,
                    ..Default::default()
                };
                flagpole_stats::bayesian::effect_test(control, treatment, &settings).map(|r| {
                    let risk = Risk {
                        control: r.risk.control,
                        treatment: r.risk.treatment,
                    };
                    (
                        lift(r.lift, r.interval),
                        None,
                        Some((r.chance_to_win, risk)),
                    )
                })
            }
        };
        match (difference, tested) {
            (Difference::Relative, Ok((l, p, bayes))) => {
                out.relative = Some(l);
                out.p_value = p;
                out.significant = p.map(|p| p < analysis.alpha);
                if let Some((chance, risk)) = bayes {
                    out.chance_to_win = Some(chance);
                    out.risk = Some(risk);
                }
            }
            (Difference::Absolute, Ok((l, ..))) => out.absolute = Some(l),
            (_, Err(e)) => {
                if out.error.is_none() {
                    out.error = Some(e.into());
                }
            }
        }
    }
    out
}

fn lift(estimate: f64, interval: flagpole_stats::Interval) -> Lift {
    Lift {
        estimate,
        low: interval.low,
        high: interval.high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms() -> Vec<Arm> {
        vec![
            Arm {
                variant: "control".into(),
                weight: 50.0,
            },
            Arm {
                variant: "treatment".into(),
                weight: 50.0,
            },
        ]
    }

    fn binomial(n: u64, conversions: f64) -> Sums {
        Sums {
            n,
            a: conversions,
            a2: conversions,
            ..Sums::default()
        }
    }

    fn metric(kind: MetricKind) -> Metric {
        Metric {
            key: "m".into(),
            kind,
            event: "e".into(),
            denominator: None,
            window_hours: None,
            inverse: false,
        }
    }

    /// The setup notes' example: 100/1000 vs 120/1000 is lift 0.2, CI [-0.100768,
    /// 0.500768], p 0.19235 in gbstats 0.8.0; SRM of 1000 vs 1100 is 0.029096.
    #[test]
    fn frequentist_results_are_gbstats_numbers_in_the_api_shape() {
        let arms = arms();
        let m = metric(MetricKind::Binomial);
        let r = compute(Input {
            arms: &arms,
            units: &[1000, 1100],
            excluded: 3,
            metrics: vec![(
                "primary",
                &m,
                vec![binomial(1000, 100.0), binomial(1000, 120.0)],
            )],
            analysis: Analysis::default(),
            as_of: 7,
        });
        assert!((r.srm.p_value - 0.029096).abs() < 1e-6);
        assert!(r.srm.checked && !r.srm.warning);
        assert!(!r.collecting_data);
        assert_eq!(r.excluded_multiple_exposures, 3);
        let c = r.metrics[0].arms[1].comparison.clone().unwrap();
        let rel = c.relative.unwrap();
        assert!((rel.estimate - 0.2).abs() < 1e-12);
        assert!((rel.low + 0.100768).abs() < 1e-6 && (rel.high - 0.500768).abs() < 1e-6);
        assert!((c.p_value.unwrap() - 0.19235).abs() < 1e-5);
        assert_eq!(c.significant, Some(false));
        assert!((c.absolute.unwrap().estimate - 0.02).abs() < 1e-12);
        assert!(r.metrics[0].arms[0].comparison.is_none());
    }

    #[test]
    fn small_arms_collect_data_and_srm_waits_for_eight_units() {
        let arms = arms();
        let m = metric(MetricKind::Binomial);
        let r = compute(Input {
            arms: &arms,
            units: &[7, 400],
            excluded: 0,
            metrics: vec![("primary", &m, vec![binomial(60, 4.0), binomial(400, 50.0)])],
            analysis: Analysis::default(),
            as_of: 0,
        });
        assert!(r.srm.p_value < SRM_THRESHOLD && !r.srm.checked && !r.srm.warning);
        assert!(r.collecting_data && r.metrics[0].collecting_data);
        let r = compute(Input {
            arms: &arms,
            units: &[100, 400],
            excluded: 0,
            metrics: vec![("primary", &m, vec![binomial(100, 4.0), binomial(400, 50.0)])],
            analysis: Analysis::default(),
            as_of: 0,
        });
        assert!(r.srm.warning && r.srm.message.is_some());
        // 4 conversions in control: still collecting.
        assert!(r.metrics[0].collecting_data);
    }

    #[test]
    fn refusals_carry_gbstats_codes_and_bayesian_gives_chance_to_win() {
        let arms = arms();
        let m = metric(MetricKind::Count);
        let zero = Sums {
            n: 100,
            ..Sums::default()
        };
        let some = Sums {
            n: 100,
            a: 30.0,
            a2: 50.0,
            ..Sums::default()
        };
        let r = compute(Input {
            arms: &arms,
            units: &[100, 100],
            excluded: 0,
            metrics: vec![("primary", &m, vec![zero, some])],
            analysis: Analysis::default(),
            as_of: 0,
        });
        let c = r.metrics[0].arms[1].comparison.clone().unwrap();
        assert_eq!(c.error.unwrap().code, "ZERO_NEGATIVE_BASELINE_VARIATION");
        let more = Sums {
            n: 100,
            a: 60.0,
            a2: 110.0,
            ..Sums::default()
        };
        let r = compute(Input {
            arms: &arms,
            units: &[100, 100],
            excluded: 0,
            metrics: vec![("primary", &m, vec![some, more])],
            analysis: Analysis {
                mode: Mode::Bayesian,
                alpha: 0.05,
            },
            as_of: 0,
        });
        let c = r.metrics[0].arms[1].comparison.clone().unwrap();
        assert!(c.chance_to_win.unwrap() > 0.95 && c.p_value.is_none());
        assert!(c.risk.is_some());
    }
}
