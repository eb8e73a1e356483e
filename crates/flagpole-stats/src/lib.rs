//! Flagpole's experiment statistics: per-arm aggregates and the tests that compare arms,
//! in agreement with GrowthBook's engine, gbstats 0.8.0 (the conformance fixtures in
//! `tests/gbstats/` are its answers; `cargo xtask gbstats` recomputes them with the real
//! package).
//!
//! - [`Aggregate`]: an arm's sums for a mean, binomial or ratio metric → [`Summary`]
//!   (units, mean, variance).
//! - [`frequentist::two_sided`]: Welch's t-test (`TwoSidedTTest`).
//! - [`sequential::two_sided`]: confidence sequences (`SequentialTwoSidedTTest`), and
//!   [`sequential::one_sided`], the one-sided version behind [`guardrail::check`].
//! - [`bayesian::effect_test`]: chance to beat control and risk under a Gaussian prior
//!   (`EffectBayesianABTest`).
//! - [`srm::p_value`]: sample ratio mismatch (`check_srm`).
//! - [`guardian::decide`]: a release plan's check (advance, extend, hold, roll back,
//!   wait) over [`guardrail::check`].
//!
//! Pure: no IO, no clock, no randomness; the distributions it needs are in
//! [`distribution`].
//!
//! ```
//! use flagpole_stats::{Aggregate, frequentist};
//!
//! let control = Aggregate::Proportion { n: 1000, sum: 100.0 }.summary();
//! let treatment = Aggregate::Proportion { n: 1000, sum: 120.0 }.summary();
//! let r = frequentist::two_sided(&control, &treatment, &Default::default()).unwrap();
//! assert!((r.lift - 0.2).abs() < 1e-12); // +20%
//! assert!((r.p_value - 0.19235).abs() < 1e-5);
//! ```

pub mod bayesian;
pub mod distribution;
pub mod frequentist;
pub mod guardian;
pub mod guardrail;
pub mod sequential;
pub mod srm;

mod aggregate;
mod effect;
mod error;

pub use aggregate::{Aggregate, Component, Summary};
pub use effect::{Difference, Interval};
pub use error::{Arm, StatsError};
