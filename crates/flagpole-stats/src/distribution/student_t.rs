//! Student's t distribution with real (Welch–Satterthwaite) degrees of freedom ν > 0.
//!
//! P(T > t) = ½ I_x(ν/2, ½) with x = ν/(ν + t²) (Abramowitz & Stegun 26.7.1 via 26.5.27),
//! the incomplete beta from [`super::special`] with a prefactor computed for b = ½ (see
//! there why a generic one is not accurate enough at large ν).

use super::{normal, special};

/// P(T ≤ t).
pub fn cdf(t: f64, df: f64) -> f64 {
    sf(-t, df)
}

/// P(T > t), computed directly in both tails.
pub fn sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t < 0.0 {
        return 1.0 - sf(-t, df);
    }
    if t == 0.0 {
        return 0.5;
    }
    let t2 = t * t;
    if t2.is_infinite() {
        return 0.0;
    }
    if df.is_infinite() {
        return normal::sf(t);
    }
    let a = 0.5 * df;
    let x = df / (df + t2);
    let y = t2 / (df + t2);
    // xᵃ yᵇ / B(a, ½) = xᵃ √y Γ(a + ½) / (Γ(a) √π), with a ln x = −a ln(1 + t²/ν).
    let ln_front = -a * (t2 / df).ln_1p() + 0.5 * y.ln() + special::ln_gamma_half_ratio(a)
        - 0.5 * std::f64::consts::PI.ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + 2.5) {
        0.5 * front / special::beta_fraction(a, 0.5, x, y)
    } else {
        // I_x(a, ½) = 1 − I_y(½, a), same prefactor.
        0.5 * (1.0 - front / special::beta_fraction(0.5, a, y, x))
    }
}

/// Density of T at t.
pub fn pdf(t: f64, df: f64) -> f64 {
    if df.is_infinite() {
        return normal::pdf(t);
    }
    // Γ((ν+1)/2) / (Γ(ν/2) √(νπ)) · (1 + t²/ν)^(−(ν+1)/2)
    let ln = special::ln_gamma_half_ratio(0.5 * df)
        - 0.5 * (df * std::f64::consts::PI).ln()
        - 0.5 * (df + 1.0) * (t * t / df).ln_1p();
    ln.exp()
}

/// The t with P(T ≤ t) = p; ±∞ at 1 and 0, NaN outside [0, 1] or for ν ≤ 0.
///
/// Newton's method on the upper tail, safeguarded by a bracket: sf is convex and
/// decreasing for t > 0, so a step that leaves the bracket is replaced by bisection.
/// The start is the Cornish–Fisher expansion around the normal quantile (Abramowitz &
/// Stegun 26.7.5), which is already within 1e-9 for large ν.
pub fn quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
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
    let t = upper_tail_quantile(q, df);
    if p < 0.5 { -t } else { t }
}

/// The t > 0 with sf(t, ν) = q, for 0 < q < ½.
fn upper_tail_quantile(q: f64, df: f64) -> f64 {
    let z = -normal::quantile(q);
    if df.is_infinite() {
        return z;
    }
    let guess = cornish_fisher(z, df);
    // sf(0) = ½ > q: 0 is a lower bound. Find an upper bound by doubling.
    let mut lo = 0.0;
    let mut hi = if guess.is_finite() && guess > 0.0 {
        guess
    } else {
        z.max(1.0)
    };
    while sf(hi, df) > q {
        lo = hi;
        hi *= 2.0;
        if hi.is_infinite() {
            return f64::INFINITY;
        }
    }
    let mut t = if guess > lo && guess < hi {
        guess
    } else {
        0.5 * (lo + hi)
    };
    for _ in 0..200 {
        let f = sf(t, df) - q;
        if f == 0.0 {
            return t;
        }
        if f > 0.0 {
            lo = t
        } else {
            hi = t
        }
        let mut next = t + f / pdf(t, df);
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - t).abs() <= 2.0 * f64::EPSILON * next.abs() {
            return next;
        }
        t = next;
    }
    t
}

/// t ≈ z + g₁/ν + g₂/ν² + g₃/ν³ + g₄/ν⁴ (A&S 26.7.5).
fn cornish_fisher(z: f64, df: f64) -> f64 {
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed forms: ν = 1 is Cauchy, ν = 2 has F(t) = ½ + t / (2√(2 + t²)). Both lose
    /// digits to cancellation in a tail themselves, hence absolute tolerances (the
    /// relative accuracy is checked against mpmath in tests/distributions.rs).
    #[test]
    fn closed_forms() {
        for t in [-30.0, -2.0, -0.1, 0.4, 1.0, 7.5, 1e6] {
            let cauchy = 0.5 + f64::atan(t) / std::f64::consts::PI;
            assert!((cdf(t, 1.0) - cauchy).abs() < 1e-15, "ν=1, t={t}");
            let two = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!((cdf(t, 2.0) - two).abs() < 1e-15, "ν=2, t={t}");
        }
        for p in [0.001, 0.025, 0.3, 0.9, 0.975] {
            let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
            assert!((quantile(p, 1.0) - cauchy).abs() <= 1e-13 * cauchy.abs());
        }
    }

    #[test]
    fn quantile_inverts_sf_at_any_df() {
        for df in [0.5, 1.3, 4.0, 29.7, 1e3, 2.2e5, 3.3e6, 1e9] {
            for p in [1e-9, 0.01, 0.025, 0.2, 0.6, 0.95, 0.995] {
                let t = quantile(p, df);
                assert!(
                    (cdf(t, df) - p).abs() <= 4e-16_f64.max(1e-14 * p),
                    "ν={df} p={p}"
                );
            }
        }
    }
}
