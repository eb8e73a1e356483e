//! The χ² distribution's upper tail, for the sample-ratio-mismatch test.

use super::special;

/// P(X > x) for X ~ χ²(k): Q(k/2, x/2), the regularised upper incomplete gamma function.
pub fn sf(x: f64, k: f64) -> f64 {
    if x.is_nan() || k.is_nan() || k <= 0.0 {
        return f64::NAN;
    }
    special::upper_regularized_gamma(0.5 * k, 0.5 * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// k = 1 is 2·(1 − Φ(√x)) and k = 2 is e^(−x/2), computed another way (√x rounds,
    /// and the tail's relative error grows with x: 1e-13 here, mpmath is the sharp check).
    #[test]
    fn closed_forms() {
        for x in [0.01, 0.5, 3.84, 10.0, 60.0] {
            let one = 2.0 * super::super::normal::sf(f64::sqrt(x));
            assert!((sf(x, 1.0) - one).abs() <= 1e-13 * one, "k=1, x={x}");
            let two = (-0.5 * x).exp();
            assert!((sf(x, 2.0) - two).abs() <= 1e-14 * two, "k=2, x={x}");
        }
        assert_eq!(sf(0.0, 3.0), 1.0);
    }
}
