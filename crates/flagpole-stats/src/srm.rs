//! Sample ratio mismatch: do the units per arm fit the configured split? Pearson's χ²
//! goodness-of-fit test, as gbstats' `check_srm`.

use crate::{StatsError, distribution::chi_squared};

/// The p-value of "units were assigned in the proportions of `weights`".
///
/// χ² = Σ (oᵢ − eᵢ)²/eᵢ with eᵢ = wᵢ/Σw · Σo, on k − 1 degrees of freedom for k arms.
/// As gbstats: no units at all is p = 1, and an arm of weight 0 adds nothing to χ² but
/// still counts in the degrees of freedom. A small p (issue 16 warns below 0.001) means
/// the assignment or the exposure logging is broken, whatever the metric says.
pub fn p_value(users: &[u64], weights: &[f64]) -> Result<f64, StatsError> {
    if users.len() != weights.len() {
        return Err(StatsError::invalid(
            "weights",
            format!("{} weights for {} arms", weights.len(), users.len()),
        ));
    }
    if users.len() < 2 {
        return Err(StatsError::invalid(
            "weights",
            "a split needs at least two arms",
        ));
    }
    // Finite and not negative first, so the sum below is a number.
    if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || weights.iter().sum::<f64>() <= 0.0 {
        return Err(StatsError::invalid(
            "weights",
            "weights must be finite, not negative, and not all zero",
        ));
    }
    let total: f64 = users.iter().map(|&u| u as f64).sum();
    if total == 0.0 {
        return Ok(1.0);
    }
    let total_weight: f64 = weights.iter().sum();
    let x: f64 = users
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(&o, w)| {
            let e = w / total_weight * total;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    Ok(chi_squared::sf(x, (users.len() - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_notes_example() {
        let p = p_value(&[1000, 1100], &[0.5, 0.5]).unwrap();
        assert!((p - 0.029_096_331_741_252_267).abs() < 1e-15, "{p}");
        assert_eq!(p_value(&[0, 0, 0], &[1.0, 1.0, 2.0]), Ok(1.0));
        assert!(p_value(&[10], &[1.0]).is_err());
        assert!(p_value(&[10, 10], &[1.0, -1.0]).is_err());
    }
}
