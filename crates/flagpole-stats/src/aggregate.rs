//! Per-arm aggregates of a metric, and the mean and variance of one unit's value they
//! imply, with gbstats' formulas (`gbstats/models/statistics.py`) so both engines start
//! from the same numbers.
//!
//! Aggregates are sums, so the server can keep them up to date as events arrive and merge
//! them without touching raw events.

/// What every test needs of an arm: units, and the mean and variance of a unit's value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Units (users, or whatever the experiment randomises).
    pub n: u64,
    /// Mean of the metric per unit (for a ratio metric, the ratio of sums).
    pub mean: f64,
    /// Variance of one unit's value (for a ratio metric, the delta-method variance).
    pub variance: f64,
}

/// One arm's sums for one metric.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregate {
    /// A count, sum or mean metric: per unit a value x; the arm keeps n, Σx and Σx².
    Mean {
        /// Units.
        n: u64,
        /// Σx over units.
        sum: f64,
        /// Σx² over units.
        sum_squares: f64,
    },
    /// A binomial metric: per unit 0 or 1 (converted or not); the arm keeps n and Σx.
    Proportion {
        /// Units.
        n: u64,
        /// Units that converted.
        sum: f64,
    },
    /// A ratio metric, Σa / Σb over units (for example revenue per session): per unit a
    /// numerator a and a denominator b, each a mean or a proportion component.
    Ratio {
        /// Units.
        n: u64,
        /// The numerator's sums.
        numerator: Component,
        /// The denominator's sums.
        denominator: Component,
        /// Σab over units, for the covariance of numerator and denominator.
        sum_of_products: f64,
    },
}

/// One side of a ratio metric; it shares the ratio's n.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Component {
    /// Any per-unit value: Σx and Σx².
    Mean {
        /// Σx over units.
        sum: f64,
        /// Σx² over units.
        sum_squares: f64,
    },
    /// A 0/1 per-unit value: Σx.
    Proportion {
        /// Σx over units.
        sum: f64,
    },
}

impl Aggregate {
    /// Units in the arm.
    pub fn n(&self) -> u64 {
        match *self {
            Aggregate::Mean { n, .. }
            | Aggregate::Proportion { n, .. }
            | Aggregate::Ratio { n, .. } => n,
        }
    }

    /// The arm's mean, variance and size, as the tests consume them.
    pub fn summary(&self) -> Summary {
        let n = self.n();
        let (mean, variance) = match *self {
            Aggregate::Mean {
                sum, sum_squares, ..
            } => {
                let c = Component::Mean { sum, sum_squares };
                (c.mean(n), c.variance(n))
            }
            Aggregate::Proportion { sum, .. } => {
                let c = Component::Proportion { sum };
                (c.mean(n), c.variance(n))
            }
            Aggregate::Ratio {
                numerator: m,
                denominator: d,
                sum_of_products,
                ..
            } => ratio(n, m, d, sum_of_products),
        };
        Summary { n, mean, variance }
    }
}

impl Component {
    fn sum(&self) -> f64 {
        match *self {
            Component::Mean { sum, .. } | Component::Proportion { sum } => sum,
        }
    }

    fn mean(&self, n: u64) -> f64 {
        if n == 0 { 0.0 } else { self.sum() / n as f64 }
    }

    /// The sample variance (n − 1 denominator) for a mean; p(1 − p), the binomial's
    /// plug-in variance, for a proportion: gbstats' choices, kept so results agree.
    fn variance(&self, n: u64) -> f64 {
        match *self {
            Component::Mean { sum, sum_squares } => {
                if n <= 1 {
                    return 0.0;
                }
                let n = n as f64;
                (sum_squares - sum * sum / n) / (n - 1.0)
            }
            Component::Proportion { .. } => {
                let p = self.mean(n);
                p * (1.0 - p)
            }
        }
    }
}

/// Mean Σa/Σb and its delta-method variance per unit, with μ and σ² of a and b and their
/// covariance c: Var ≈ σ²ₐ/μ_b² − 2c μₐ/μ_b³ + μₐ² σ²_b/μ_b⁴ (gbstats `RatioStatistic`).
fn ratio(n: u64, m: Component, d: Component, sum_of_products: f64) -> (f64, f64) {
    let mean = if d.sum() == 0.0 {
        0.0
    } else {
        m.sum() / d.sum()
    };
    let (m_mean, d_mean) = (m.mean(n), d.mean(n));
    if d_mean == 0.0 || n <= 1 {
        return (mean, 0.0);
    }
    let nf = n as f64;
    let covariance = (sum_of_products - m.sum() * d.sum() / nf) / (nf - 1.0);
    let variance = m.variance(n) / d_mean.powi(2) - 2.0 * covariance * m_mean / d_mean.powi(3)
        + m_mean.powi(2) * d.variance(n) / d_mean.powi(4);
    (mean, variance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_variance() {
        // Values 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3.
        let s = Aggregate::Mean {
            n: 4,
            sum: 12.0,
            sum_squares: 50.0,
        }
        .summary();
        assert_eq!((s.n, s.mean, s.variance), (4, 3.0, 14.0 / 3.0));
        let p = Aggregate::Proportion {
            n: 1000,
            sum: 100.0,
        }
        .summary();
        assert_eq!(p.mean, 0.1);
        assert!((p.variance - 0.09).abs() < 1e-16);
        // gbstats' conventions for tiny arms: no units is a mean of 0, one unit no variance.
        let empty = Aggregate::Mean {
            n: 0,
            sum: 0.0,
            sum_squares: 0.0,
        }
        .summary();
        assert_eq!((empty.mean, empty.variance), (0.0, 0.0));
        let one = Aggregate::Mean {
            n: 1,
            sum: 5.0,
            sum_squares: 25.0,
        }
        .summary();
        assert_eq!((one.mean, one.variance), (5.0, 0.0));
    }

    /// The delta method against the variance of a ratio computed by hand for units
    /// (a, b) = (1, 2), (2, 2), (3, 4), (6, 4).
    #[test]
    fn ratio_delta_method() {
        let units = [(1.0, 2.0), (2.0, 2.0), (3.0, 4.0), (6.0, 4.0)];
        let sum = |f: &dyn Fn(&(f64, f64)) -> f64| units.iter().map(f).sum::<f64>();
        let agg = Aggregate::Ratio {
            n: 4,
            numerator: Component::Mean {
                sum: sum(&|u| u.0),
                sum_squares: sum(&|u| u.0 * u.0),
            },
            denominator: Component::Mean {
                sum: sum(&|u| u.1),
                sum_squares: sum(&|u| u.1 * u.1),
            },
            sum_of_products: sum(&|u| u.0 * u.1),
        };
        let s = agg.summary();
        assert_eq!(s.mean, 1.0);
        // μa = 3, μb = 3, σ²a = 14/3, σ²b = 4/3, cov = (1·2+2·2+3·4+6·4 − 4·3·3)/3 = 2.
        // 14/3/9 − 2·2·3/27 + 9·(4/3)/81 = 14/27 − 12/27 + 4/27 = 6/27.
        assert!((s.variance - 6.0 / 27.0).abs() < 1e-15, "{}", s.variance);
        // A zero denominator: gbstats' mean 0, variance 0.
        let zero = Aggregate::Ratio {
            n: 3,
            numerator: Component::Proportion { sum: 1.0 },
            denominator: Component::Proportion { sum: 0.0 },
            sum_of_products: 0.0,
        };
        assert_eq!(zero.summary().mean, 0.0);
        assert_eq!(zero.summary().variance, 0.0);
    }

    #[test]
    fn wire_format() {
        let agg: Aggregate = serde_json::from_str(
            r#"{"kind": "ratio", "n": 10,
                "numerator": {"kind": "proportion", "sum": 4},
                "denominator": {"kind": "mean", "sum": 20, "sum_squares": 50},
                "sum_of_products": 9}"#,
        )
        .unwrap();
        assert_eq!(agg.n(), 10);
        assert!(
            serde_json::from_str::<Aggregate>(r#"{"kind": "mean", "n": 1, "sum": 1}"#).is_err()
        );
    }
}
