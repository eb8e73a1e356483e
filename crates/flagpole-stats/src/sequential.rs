//! Sequential tests: asymptotic confidence sequences (Waudby-Smith et al., "Time-uniform
//! central limit theory and asymptotic confidence sequences", arXiv 2103.06476v7), valid
//! at every look, so results may be watched every minute without inflating false
//! positives.
//!
//! Both tests are Gaussian-mixture e-values in the standardised sum S = Δ·√(N/Var Δ),
//! whose "intrinsic time" is N = na + nb (the estimate's variance shrinks as 1/N):
//!
//! - two-sided, λ ~ N(0, ρ²): e = exp(ρ²S²/(2(Nρ² + 1))) / √(Nρ² + 1) (eq. 155, gbstats
//!   `SequentialTwoSidedTTest`), whose level set is the interval of eq. 9;
//! - one-sided, λ ~ N(0, ρ²) restricted to the alternative's side (a half-normal mixture,
//!   Howard et al. 2021 §3.5): with u = S/√(N + 1/ρ²),
//!   e = 2Φ(u)·exp(u²/2) / √(Nρ² + 1), which is the integral
//!   ∫₀^∞ exp(λS − λ²N/2)·2φ(λ/ρ)/ρ dλ in closed form.
//!
//! Each is a nonnegative (asymptotic) supermartingale under "no effect", so by Ville's
//! inequality P(∃ look with e ≥ 1/α) ≤ α; the p-value is min(1, 1/e). gbstats has no
//! one-sided sequential test; the conformance fixtures check this one against a numeric
//! integration of the mixture instead, and it is never looser than the two-sided test at α
//! nor tighter than the two-sided test at 2α.

use crate::distribution::normal;
use crate::effect::{Effect, check_alpha, check_finite, check_variances, effect};
use crate::{Difference, Interval, StatsError, Summary};

/// gbstats' default tuning parameter: the sample size N at which the confidence sequence
/// is tightest.
pub const DEFAULT_TUNING: f64 = 5000.0;

/// Settings of a sequential test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sequential {
    /// How the lift is expressed.
    pub difference: Difference,
    /// False-positive rate over all looks together.
    pub alpha: f64,
    /// The total sample size the boundary is tuned for ([`DEFAULT_TUNING`]).
    pub tuning: f64,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential {
            difference: Difference::Relative,
            alpha: 0.05,
            tuning: DEFAULT_TUNING,
        }
    }
}

/// The outcome of a two-sided sequential test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SequentialResult {
    /// Estimated lift.
    pub lift: f64,
    /// Standard error of the lift.
    pub stddev: f64,
    /// The (1 − α) confidence sequence at this look.
    pub interval: Interval,
    /// Anytime-valid p-value of "no effect".
    pub p_value: f64,
}

/// Which side of zero the alternative hypothesis of a one-sided test is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The effect is above 0 (treatment's mean higher).
    Greater,
    /// The effect is below 0.
    Less,
}

/// The outcome of a one-sided sequential test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OneSidedResult {
    /// Estimated lift.
    pub lift: f64,
    /// Standard error of the lift.
    pub stddev: f64,
    /// The confidence sequence's one bound: the lift is above it (side `greater`) or
    /// below it (`less`) with probability 1 − α at every look together. It excludes 0
    /// exactly when the test rejects.
    pub bound: f64,
    /// The e-value of "no effect" against the side.
    pub e_value: f64,
    /// Anytime-valid p-value, min(1, 1/e).
    pub p_value: f64,
    /// Standardised sum S = Δ·√(N/Var Δ), signed towards the side.
    pub statistic: f64,
    /// Whether the test rejects "no effect" in favour of the side (p ≤ α).
    pub rejects: bool,
}

/// ρ of the mixing distribution, tuned so the boundary is tightest at N = `tuning`
/// (eq. 161 of the paper; gbstats `SequentialTwoSidedTTest.rho`).
pub fn rho(alpha: f64, tuning: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    ((l + (l + 1.0).ln()) / tuning).sqrt()
}

/// The two-sided sequential test of `treatment` against `control`, as gbstats'
/// `SequentialTwoSidedTTest`: its refusals are the t-test's.
pub fn two_sided(
    control: &Summary,
    treatment: &Summary,
    settings: &Sequential,
) -> Result<SequentialResult, StatsError> {
    let e = prepare(control, treatment, settings)?;
    let n = (control.n + treatment.n) as f64;
    let rho2 = rho(settings.alpha, settings.tuning).powi(2);
    let tr2p1 = n * rho2 + 1.0;
    // Eq. 9: half-width √(Var·N)·√(2(Nρ² + 1)·ln(√(Nρ² + 1)/α) / (Nρ)²).
    let width = (e.variance * n).sqrt()
        * (2.0 * tr2p1 * (tr2p1.sqrt() / settings.alpha).ln() / (n * n * rho2)).sqrt();
    // Eq. 155, as 1/e: √(Nρ² + 1)·exp(−ρ²S²/(2(Nρ² + 1))), which cannot overflow.
    let s2 = e.estimate.powi(2) * n / e.variance;
    let p_value = (tr2p1.sqrt() * (-rho2 * s2 / (2.0 * tr2p1)).exp()).min(1.0);
    Ok(SequentialResult {
        lift: e.estimate,
        stddev: e.variance.sqrt(),
        interval: Interval {
            low: e.estimate - width,
            high: e.estimate + width,
        },
        p_value,
    })
}

/// The one-sided sequential test of "no effect" against an effect on `side` of 0.
pub fn one_sided(
    control: &Summary,
    treatment: &Summary,
    side: Side,
    settings: &Sequential,
) -> Result<OneSidedResult, StatsError> {
    let e = prepare(control, treatment, settings)?;
    Ok(one_sided_of(
        e,
        (control.n + treatment.n) as f64,
        side,
        settings,
    ))
}

/// [`one_sided`] on an effect already estimated (with its variance) from `n` units in
/// all: the guardrail's stratified check combines several arms' effects into one.
/// `settings` must have passed [`prepare`]'s checks.
pub(crate) fn one_sided_of(e: Effect, n: f64, side: Side, settings: &Sequential) -> OneSidedResult {
    let rho2 = rho(settings.alpha, settings.tuning).powi(2);
    let sign = match side {
        Side::Greater => 1.0,
        Side::Less => -1.0,
    };
    let statistic = sign * e.estimate * (n / e.variance).sqrt();
    let ln_e = half_normal_mixture_ln_e(statistic, n, rho2);
    let p_value = (-ln_e).exp().min(1.0);
    // The bound: the θ at which the standardised distance from θ reaches the boundary,
    // S(θ) = S*, i.e. Δ − θ = S*·√(Var/N) towards the side.
    let boundary = half_normal_mixture_boundary(settings.alpha, n, rho2);
    let bound = e.estimate - sign * boundary * (e.variance / n).sqrt();
    OneSidedResult {
        lift: e.estimate,
        stddev: e.variance.sqrt(),
        bound,
        e_value: ln_e.exp(),
        p_value,
        statistic,
        rejects: p_value <= settings.alpha,
    }
}

/// The checks and the effect estimate every sequential test starts from.
pub(crate) fn prepare(
    control: &Summary,
    treatment: &Summary,
    settings: &Sequential,
) -> Result<Effect, StatsError> {
    check_alpha(settings.alpha)?;
    if !(settings.tuning > 0.0 && settings.tuning.is_finite()) {
        return Err(StatsError::invalid(
            "tuning",
            format!(
                "must be a positive number of units, got {}",
                settings.tuning
            ),
        ));
    }
    check_finite(control, treatment)?;
    if control.mean == 0.0 {
        return Err(StatsError::ZeroBaseline);
    }
    check_variances(control, treatment)?;
    Ok(effect(control, treatment, settings.difference))
}

/// ln e of the half-normal mixture at standardised sum `s`, intrinsic time `n`:
/// ln 2 + ln Φ(u) + u²/2 − ½ ln(Nρ² + 1) with u = S/√(N + 1/ρ²). For u ≤ 0 the first three
/// terms are at most 0 (2Φ(u)e^(u²/2) increases with u and is 1 at 0), so e < 1.
fn half_normal_mixture_ln_e(s: f64, n: f64, rho2: f64) -> f64 {
    let u = s / (n + 1.0 / rho2).sqrt();
    let ln_scale = -0.5 * (n * rho2).ln_1p();
    if u <= 0.0 {
        // 2Φ(u)·e^(u²/2), the product taken apart where Φ would underflow: there Mills'
        // ratio gives Φ(u) ≈ φ(u)/|u|·(1 − 1/u² + 3/u⁴), so the product is
        // 2φ(0)/|u|·(1 − 1/u² + 3/u⁴), to 1e-10 beyond |u| = 30.
        let m = if u > -30.0 {
            2.0 * normal::cdf(u) * (0.5 * u * u).exp()
        } else {
            let w = 1.0 / (u * u);
            2.0 * normal::pdf(0.0) / -u * (1.0 - w + 3.0 * w * w)
        };
        return m.ln() + ln_scale;
    }
    std::f64::consts::LN_2 + (-normal::sf(u)).ln_1p() + 0.5 * u * u + ln_scale
}

/// The standardised sum S* at which the half-normal mixture's e-value reaches 1/α:
/// S* = u*·√(N + 1/ρ²), u* the root of g(u) = ln 2 + ln Φ(u) + u²/2 − c, with
/// c = ½ ln(Nρ² + 1) − ln α > 0. g is increasing and convex on u > 0 (its derivative is
/// the inverse Mills ratio plus u), so Newton's method from the right of the root,
/// u₀ = √(2c) (where g ≥ 0), converges monotonically.
fn half_normal_mixture_boundary(alpha: f64, n: f64, rho2: f64) -> f64 {
    let c = 0.5 * (n * rho2).ln_1p() - alpha.ln();
    let g = |u: f64| std::f64::consts::LN_2 + (-normal::sf(u)).ln_1p() + 0.5 * u * u - c;
    let mut u = (2.0 * c).sqrt();
    for _ in 0..100 {
        let slope = normal::pdf(u) / normal::cdf(u) + u;
        let step = g(u) / slope;
        u -= step;
        if step.abs() <= 1e-15 * u {
            break;
        }
    }
    u * (n + 1.0 / rho2).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms() -> (Summary, Summary) {
        (
            Summary {
                n: 4000,
                mean: 0.1,
                variance: 0.09,
            },
            Summary {
                n: 4100,
                mean: 0.115,
                variance: 0.115 * 0.885,
            },
        )
    }

    /// The one-sided e-value's closed form against a numeric integral of its definition
    /// (the midpoint rule on a fine grid around the peak).
    #[test]
    fn closed_form_is_the_mixture_integral() {
        let cases: [(f64, f64, f64); 4] = [
            (2.0, 500.0, 1e-3),
            (3.5, 8000.0, 2e-3),
            (-1.0, 100.0, 1e-2),
            (0.3, 1e5, 1e-4),
        ];
        for (s, n, rho2) in cases {
            let sd = rho2.sqrt();
            let f = |l: f64| (l * s - l * l * n / 2.0).exp() * 2.0 * normal::pdf(l / sd) / sd;
            let hi = (s.max(0.0) / n) + 12.0 / n.sqrt() + 12.0 * sd;
            let steps = 200_000;
            let h = hi / steps as f64;
            let integral: f64 = (0..steps).map(|i| f((i as f64 + 0.5) * h) * h).sum();
            let closed = half_normal_mixture_ln_e(s, n, rho2).exp();
            assert!(
                (closed - integral).abs() <= 1e-8 * integral,
                "S={s}: {closed} vs {integral}"
            );
        }
    }

    #[test]
    fn one_sided_bound_lies_between_two_sided_at_alpha_and_2_alpha() {
        let (a, b) = arms();
        for alpha in [0.01, 0.05, 0.1] {
            let at = |alpha| Sequential {
                alpha,
                ..Sequential::default()
            };
            let one = one_sided(&a, &b, Side::Greater, &at(alpha)).unwrap();
            let two = two_sided(&a, &b, &at(alpha)).unwrap();
            let two_2a = two_sided(&a, &b, &at(2.0 * alpha)).unwrap();
            assert!(two.interval.low < one.bound && one.bound < two_2a.interval.low);
            assert!(two.p_value / 2.0 < one.p_value && one.p_value <= two.p_value);
            let less = one_sided(&a, &b, Side::Less, &at(alpha)).unwrap();
            assert!(two.interval.high > less.bound && less.bound > two_2a.interval.high);
            assert_eq!(less.p_value, 1.0);
        }
    }

    /// The bound excludes 0 exactly when the p-value is at most α: scan effects through
    /// the boundary.
    #[test]
    fn bound_and_p_value_agree() {
        let a = Summary {
            n: 3000,
            mean: 1.0,
            variance: 4.0,
        };
        for i in 0..400 {
            let b = Summary {
                mean: 1.0 + i as f64 * 0.0005,
                ..a
            };
            let r = one_sided(&a, &b, Side::Greater, &Sequential::default()).unwrap();
            if (r.p_value - 0.05).abs() > 1e-9 {
                assert_eq!(r.rejects, r.bound > 0.0, "lift {}: {r:?}", r.lift);
            }
        }
    }
}
