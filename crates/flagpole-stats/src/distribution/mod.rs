//! The distributions the tests need, accurate to ~1e-15 (checked against mpmath in
//! `tests/distributions.rs`): normal, Student's t with real degrees of freedom, χ².
//!
//! Written here rather than taken from statrs 0.19, whose t quantile was off by 1e-5 at
//! 1.7·10⁵ degrees of freedom and did not return at 10⁸: Welch's degrees of freedom for an
//! experiment with a million units per arm are in that range.

pub mod chi_squared;
pub mod normal;
pub mod student_t;

mod special;
