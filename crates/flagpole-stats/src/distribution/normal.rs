//! The standard normal distribution: density, CDF, survival function and quantile.
//!
//! Tails are computed directly (`sf(x)`, not `1 - cdf(x)`), so a p-value of 1e-12 keeps
//! its digits; gbstats subtracts from 1 in places, which only matters below 1e-16.

use std::f64::consts::FRAC_1_SQRT_2;

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Density φ(x).
pub fn pdf(x: f64) -> f64 {
    FRAC_1_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Φ(x) = P(Z ≤ x) = erfc(−x/√2)/2.
pub fn cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// 1 − Φ(x) = P(Z > x), without the cancellation of `1 - cdf(x)`.
pub fn sf(x: f64) -> f64 {
    0.5 * libm::erfc(x * FRAC_1_SQRT_2)
}

/// Φ⁻¹(p): the x with Φ(x) = p; −∞ at 0, +∞ at 1, NaN outside [0, 1].
///
/// Abramowitz & Stegun 26.2.23 (error < 4.5e-4) gives the start, then Halley steps on the
/// tail probability, which converge cubically: three steps reach the last bit. Working on
/// the smaller tail q = min(p, 1 − p) keeps the relative precision of tiny tails (1 − p
/// is exact for p ≥ ½, by Sterbenz's lemma).
pub fn quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    let q = if p < 0.5 { p } else { 1.0 - p };
    let z = upper_tail_quantile(q);
    if p < 0.5 { -z } else { z }
}

/// The z > 0 with sf(z) = q, for 0 < q < ½.
fn upper_tail_quantile(q: f64) -> f64 {
    let t = (-2.0 * q.ln()).sqrt();
    let mut z = t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t);
    for _ in 0..8 {
        // f(z) = sf(z) − q, f' = −φ(z), f'' = zφ(z); Halley's step is
        // z − r / (1 − r f''/(2f')) with r = f/f', which is z − r / (1 + r z / 2).
        let density = pdf(z);
        if density == 0.0 {
            break;
        }
        let r = (q - sf(z)) / density;
        let step = r / (1.0 + 0.5 * r * z);
        z -= step;
        if step.abs() <= 1e-15 * z.abs() {
            break;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges() {
        assert_eq!(quantile(0.5), 0.0);
        assert_eq!(quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(quantile(1.0), f64::INFINITY);
        assert!(quantile(1.5).is_nan() && quantile(f64::NAN).is_nan());
        assert_eq!(quantile(0.25), -quantile(0.75));
    }

    #[test]
    fn quantile_inverts_cdf() {
        for i in 1..1000 {
            let p = i as f64 / 1000.0;
            let x = quantile(p);
            assert!((cdf(x) - p).abs() < 4e-16, "p = {p}");
        }
    }
}
