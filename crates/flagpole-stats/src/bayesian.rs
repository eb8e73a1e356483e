//! The Bayesian effect test, as gbstats' `EffectBayesianABTest`: a Gaussian prior on the
//! effect, the effect's sampling distribution as the (normal) likelihood, and the
//! posterior's chance to beat control and risk.

use crate::distribution::normal;
use crate::effect::{check_alpha, check_finite, check_variances, effect};
use crate::{Arm, Difference, Interval, StatsError, Summary};

/// A normal prior on the effect.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianPrior {
    /// Prior mean of the effect.
    pub mean: f64,
    /// Prior variance of the effect.
    pub variance: f64,
    /// Whether the prior is used at all; an improper (flat) prior leaves the data alone.
    pub proper: bool,
}

impl Default for GaussianPrior {
    /// gbstats' default: flat.
    fn default() -> Self {
        GaussianPrior {
            mean: 0.0,
            variance: 1.0,
            proper: false,
        }
    }
}

/// Settings of an [`effect_test`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EffectBayesian {
    /// How the lift is expressed.
    pub difference: Difference,
    /// The credible interval covers 1 − α.
    pub alpha: f64,
    /// Prior on the effect.
    pub prior: GaussianPrior,
    /// Whether the prior is stated as a relative effect (GrowthBook's metric priors are)
    /// or in the metric's unit; it is rescaled by the control mean when that differs from
    /// `difference`.
    pub prior_scale: Difference,
    /// Lower is better for this metric: chance to win and risk are turned around.
    pub inverse: bool,
}

impl Default for EffectBayesian {
    fn default() -> Self {
        EffectBayesian {
            difference: Difference::Relative,
            alpha: 0.05,
            prior: GaussianPrior::default(),
            prior_scale: Difference::Relative,
            inverse: false,
        }
    }
}

/// Expected loss of each decision: E[max(0, effect)] for keeping control, and
/// E[max(0, −effect)] for shipping treatment (swapped when lower is better).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Risk {
    /// Expected loss if control is kept.
    pub control: f64,
    /// Expected loss if treatment is shipped.
    pub treatment: f64,
}

/// The posterior of the effect and what it implies.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BayesianResult {
    /// Posterior mean of the lift.
    pub lift: f64,
    /// Posterior standard deviation of the lift.
    pub stddev: f64,
    /// (1 − α) credible interval of the lift.
    pub interval: Interval,
    /// Posterior probability that treatment is better than control.
    pub chance_to_win: f64,
    /// Expected loss of each decision, in the lift's unit.
    pub risk: Risk,
}

/// The Bayesian test of `treatment` against `control`.
///
/// Likelihood Δ̂ ~ N(Δ, v) with Δ̂ and v the effect estimate and its delta-method variance;
/// with a proper prior N(m, w) the posterior is normal with precision 1/v + 1/w and mean
/// (Δ̂/v + m/w)/(1/v + 1/w); with a flat prior it is N(Δ̂, v). Refusals in gbstats' order:
/// a zero control mean (relative lifts), an empty arm, a non-positive variance; then a
/// zero control mean again if the prior must be rescaled by it.
pub fn effect_test(
    control: &Summary,
    treatment: &Summary,
    settings: &EffectBayesian,
) -> Result<BayesianResult, StatsError> {
    check_alpha(settings.alpha)?;
    check_finite(control, treatment)?;
    let prior = settings.prior;
    if prior.proper
        && !(prior.variance > 0.0 && prior.variance.is_finite() && prior.mean.is_finite())
    {
        return Err(StatsError::invalid(
            "prior.variance",
            format!(
                "a proper prior needs a positive, finite variance, got {}",
                prior.variance
            ),
        ));
    }
    if control.mean == 0.0 && settings.difference == Difference::Relative {
        return Err(StatsError::ZeroBaseline);
    }
    if control.n == 0 {
        return Err(StatsError::NoUnits(Arm::Control));
    }
    if treatment.n == 0 {
        return Err(StatsError::NoUnits(Arm::Treatment));
    }
    check_variances(control, treatment)?;
    let prior = rescale(
        prior,
        settings.prior_scale,
        settings.difference,
        control.mean,
    )?;

    let data = effect(control, treatment, settings.difference);
    let (mean, precision) = if prior.proper {
        let precision = 1.0 / data.variance + 1.0 / prior.variance;
        (
            (data.estimate / data.variance + prior.mean / prior.variance) / precision,
            precision,
        )
    } else {
        (data.estimate, 1.0 / data.variance)
    };
    let stddev = (1.0 / precision).sqrt();
    let z = normal::quantile(settings.alpha / 2.0);
    // P(effect > 0) = Φ(μ/σ); for an inverse metric P(effect < 0).
    let chance_to_win = if settings.inverse {
        normal::cdf(-mean / stddev)
    } else {
        normal::sf(-mean / stddev)
    };
    let (keep_control, ship_treatment) = expected_losses(mean, stddev);
    let risk = if settings.inverse {
        Risk {
            control: ship_treatment,
            treatment: keep_control,
        }
    } else {
        Risk {
            control: keep_control,
            treatment: ship_treatment,
        }
    };
    Ok(BayesianResult {
        lift: mean,
        stddev,
        interval: Interval {
            low: mean + z * stddev,
            high: mean - z * stddev,
        },
        chance_to_win,
        risk,
    })
}

/// The prior in the lift's unit: a relative prior times |μa| (variance times μa²) for an
/// absolute lift, an absolute one divided by them for a relative lift.
fn rescale(
    prior: GaussianPrior,
    scale: Difference,
    difference: Difference,
    control_mean: f64,
) -> Result<GaussianPrior, StatsError> {
    match (scale, difference) {
        (Difference::Relative, Difference::Absolute) => {
            if control_mean == 0.0 {
                return Err(StatsError::ZeroBaselinePrior);
            }
            Ok(GaussianPrior {
                mean: prior.mean * control_mean.abs(),
                variance: prior.variance * control_mean.powi(2),
                proper: prior.proper,
            })
        }
        // Relative lifts have already refused a zero control mean.
        (Difference::Absolute, Difference::Relative) => Ok(GaussianPrior {
            mean: prior.mean / control_mean.abs(),
            variance: prior.variance / control_mean.powi(2),
            proper: prior.proper,
        }),
        _ => Ok(prior),
    }
}

/// E[max(0, X)] and E[max(0, −X)] for X ~ N(μ, σ²): μΦ(μ/σ) + σφ(μ/σ) and
/// σφ(μ/σ) − μΦ(−μ/σ). gbstats gets the same as P(X > 0)·E[X | X > 0] and
/// −P(X < 0)·E[X | X < 0] from scipy's truncated normal.
fn expected_losses(mu: f64, sigma: f64) -> (f64, f64) {
    let z = mu / sigma;
    let density = sigma * normal::pdf(z);
    (mu * normal::cdf(z) + density, density - mu * normal::sf(z))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gbstats 0.8.0's `EffectBayesianABTest.get_risk(mu, 1.0)` (setup check of the
    /// truncated-normal route against the closed form).
    #[test]
    fn risk_matches_truncated_normal() {
        let cases = [
            (-3.0, 0.000_382_154_317_047_730_8, 3.000_382_154_317_047_7),
            (0.5, 0.697_796_557_401_306_1, 0.197_796_557_401_306_06),
            (3.0, 3.000_382_154_317_047_7, 0.000_382_154_317_047_727_9),
        ];
        for (mu, control, treatment) in cases {
            let (c, t) = expected_losses(mu, 1.0);
            assert!(
                (c - control).abs() < 1e-15 && (t - treatment).abs() < 1e-15,
                "μ={mu}: {c} {t}"
            );
        }
    }

    #[test]
    fn refusals_in_gbstats_order() {
        let zero = Summary {
            n: 100,
            mean: 0.0,
            variance: 0.5,
        };
        let ok = Summary {
            n: 100,
            mean: 0.05,
            variance: 0.09,
        };
        let empty = Summary {
            n: 0,
            mean: 0.0,
            variance: 0.0,
        };
        let relative = EffectBayesian::default();
        let absolute = EffectBayesian {
            difference: Difference::Absolute,
            ..relative
        };
        assert_eq!(
            effect_test(&zero, &ok, &relative),
            Err(StatsError::ZeroBaseline)
        );
        assert_eq!(
            effect_test(&ok, &empty, &relative),
            Err(StatsError::NoUnits(Arm::Treatment))
        );
        assert_eq!(
            effect_test(&zero, &ok, &absolute),
            Err(StatsError::ZeroBaselinePrior)
        );
        let same_scale = EffectBayesian {
            prior_scale: Difference::Absolute,
            ..absolute
        };
        assert!(effect_test(&zero, &ok, &same_scale).is_ok());
    }
}
