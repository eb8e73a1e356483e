//! The effect of a treatment on a metric and its sampling variance, shared by every test
//! (gbstats `frequentist_diff` and `frequentist_variance`).

use crate::{Arm, StatsError, Summary};

/// How a lift is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difference {
    /// (treatment − control) / control: "+12%" is 0.12.
    #[default]
    Relative,
    /// treatment − control, in the metric's unit.
    Absolute,
}

/// A point estimate of the effect and the variance of that estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Effect {
    pub(crate) estimate: f64,
    pub(crate) variance: f64,
}

/// The effect of treatment b over control a.
///
/// Absolute: Δ = μb − μa with Var = σ²b/nb + σ²a/na. Relative: Δ = (μb − μa)/μa, whose
/// variance by the delta method (a first-order Taylor expansion of μb/μa around the true
/// means, the arms independent) is σ²b/(μa² nb) + σ²a μb²/(μa⁴ na). Operations in
/// gbstats' order, so the last bits agree too.
pub(crate) fn effect(a: &Summary, b: &Summary, difference: Difference) -> Effect {
    let (na, nb) = (a.n as f64, b.n as f64);
    match difference {
        Difference::Relative => Effect {
            estimate: (b.mean - a.mean) / a.mean,
            variance: b.variance / (a.mean.powi(2) * nb)
                + a.variance * b.mean.powi(2) / (a.mean.powi(4) * na),
        },
        Difference::Absolute => Effect {
            estimate: b.mean - a.mean,
            variance: b.variance / nb + a.variance / na,
        },
    }
}

/// Welch–Satterthwaite degrees of freedom of the difference of two means with unequal
/// variances: (sa²/na + sb²/nb)² / ((sa²/na)²/(na − 1) + (sb²/nb)²/(nb − 1)), on the
/// per-unit variances whichever way the lift is expressed, as gbstats does.
pub(crate) fn welch_df(a: &Summary, b: &Summary) -> f64 {
    let (na, nb) = (a.n as f64, b.n as f64);
    (b.variance / nb + a.variance / na).powi(2)
        / (b.variance.powi(2) / (nb.powi(2) * (nb - 1.0))
            + a.variance.powi(2) / (na.powi(2) * (na - 1.0)))
}

/// A positive variance on both sides (control first; gbstats reports either as the same
/// error). Callers have refused NaN with [`check_finite`] already.
pub(crate) fn check_variances(a: &Summary, b: &Summary) -> Result<(), StatsError> {
    if a.variance <= 0.0 {
        return Err(StatsError::ZeroVariance(Arm::Control));
    }
    if b.variance <= 0.0 {
        return Err(StatsError::ZeroVariance(Arm::Treatment));
    }
    Ok(())
}

/// Summaries must be finite: a NaN would otherwise slip through every comparison.
pub(crate) fn check_finite(a: &Summary, b: &Summary) -> Result<(), StatsError> {
    for (field, s) in [("control", a), ("treatment", b)] {
        if !s.mean.is_finite() || !s.variance.is_finite() {
            return Err(StatsError::invalid(
                field,
                "mean and variance must be finite numbers",
            ));
        }
    }
    Ok(())
}

/// α must be a probability strictly between 0 and 1.
pub(crate) fn check_alpha(alpha: f64) -> Result<(), StatsError> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(StatsError::invalid(
            "alpha",
            format!("must be between 0 and 1 (exclusive), got {alpha}"),
        ))
    }
}

/// A two-sided interval; `low` may be −∞ or `high` +∞ for one-sided bounds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}
