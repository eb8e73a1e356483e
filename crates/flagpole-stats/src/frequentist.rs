//! The fixed-horizon frequentist test: Welch's t-test, as gbstats' `TwoSidedTTest`.

use crate::effect::{check_alpha, check_finite, check_variances, effect, welch_df};
use crate::{Difference, Interval, StatsError, Summary, distribution::student_t};

/// Settings of a [`two_sided`] test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TTest {
    /// How the lift is expressed.
    pub difference: Difference,
    /// False-positive rate: the interval covers 1 − α.
    pub alpha: f64,
}

impl Default for TTest {
    fn default() -> Self {
        TTest {
            difference: Difference::Relative,
            alpha: 0.05,
        }
    }
}

/// The outcome of a t-test of treatment against control.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TTestResult {
    /// Estimated lift (relative or absolute, as asked).
    pub lift: f64,
    /// Standard error of the lift.
    pub stddev: f64,
    /// (1 − α) confidence interval of the lift.
    pub interval: Interval,
    /// Two-sided p-value of "no effect".
    pub p_value: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
}

/// Welch's two-sided t-test of `treatment` against `control`.
///
/// t = Δ/se(Δ) with Δ and its variance from [`crate::Difference`]'s estimator (delta
/// method when relative), p = 2·P(T_ν > |t|), interval Δ ± t_{ν,1−α/2}·se; ν is Welch's.
/// No result (as gbstats) when the control mean is 0, for absolute lifts too, or when an
/// arm's variance is not positive.
pub fn two_sided(
    control: &Summary,
    treatment: &Summary,
    settings: &TTest,
) -> Result<TTestResult, StatsError> {
    check_alpha(settings.alpha)?;
    check_finite(control, treatment)?;
    if control.mean == 0.0 {
        return Err(StatsError::ZeroBaseline);
    }
    check_variances(control, treatment)?;
    let e = effect(control, treatment, settings.difference);
    let df = welch_df(control, treatment);
    let stddev = e.variance.sqrt();
    let t = e.estimate / stddev;
    let width = student_t::quantile(1.0 - settings.alpha / 2.0, df) * stddev;
    Ok(TTestResult {
        lift: e.estimate,
        stddev,
        interval: Interval {
            low: e.estimate - width,
            high: e.estimate + width,
        },
        p_value: 2.0 * student_t::sf(t.abs(), df),
        df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Aggregate;

    /// The example in the setup notes, as gbstats 0.8.0 prints it.
    #[test]
    fn setup_notes_example() {
        let a = Aggregate::Proportion {
            n: 1000,
            sum: 100.0,
        }
        .summary();
        let b = Aggregate::Proportion {
            n: 1000,
            sum: 120.0,
        }
        .summary();
        let r = two_sided(&a, &b, &TTest::default()).unwrap();
        assert!((r.lift - 0.2).abs() < 1e-15);
        assert!((r.interval.low - -0.100_767_974_848_356_26).abs() < 1e-12);
        assert!((r.interval.high - 0.500_767_974_848_356).abs() < 1e-12);
        assert!((r.p_value - 0.192_350_207_015_055_8).abs() < 1e-12);
    }

    #[test]
    fn refuses_like_gbstats() {
        let zero = Summary {
            n: 100,
            mean: 0.0,
            variance: 1.0,
        };
        let ok = Summary {
            n: 100,
            mean: 1.0,
            variance: 1.0,
        };
        let flat = Summary {
            n: 100,
            mean: 1.0,
            variance: 0.0,
        };
        let absolute = TTest {
            difference: Difference::Absolute,
            ..TTest::default()
        };
        assert_eq!(
            two_sided(&zero, &ok, &absolute),
            Err(StatsError::ZeroBaseline)
        );
        assert_eq!(
            two_sided(&ok, &flat, &TTest::default()),
            Err(StatsError::ZeroVariance(crate::Arm::Treatment))
        );
        let bad = TTest {
            alpha: 1.0,
            ..TTest::default()
        };
        assert_eq!(
            two_sided(&ok, &ok, &bad).unwrap_err().code(),
            "INVALID_INPUT"
        );
    }
}
