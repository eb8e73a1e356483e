//! The guardrail check of a progressive rollout (issue 17): has the new variant made a
//! metric worse than control? A one-sided sequential test ([`crate::sequential`]), so a
//! guardian may look every minute for hours and still roll back a healthy variant with
//! probability at most α over the whole rollout.

use crate::sequential::{self, OneSidedResult, Sequential, Side};
use crate::{Difference, StatsError, Summary};

/// Which direction of a metric is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Worse {
    /// An increase is a regression: error rates, latency.
    Higher,
    /// A decrease is a regression: conversions, revenue.
    Lower,
}

/// Settings of a guardrail check.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guardrail {
    /// Which direction is a regression.
    pub worse: Worse,
    /// How the effect is expressed. Absolute by default: a guardrail's control often has
    /// a rate of 0 early on (no errors yet), where a relative effect has no baseline.
    pub difference: Difference,
    /// Probability of flagging a regression that is not there, over all looks: 0.05.
    pub alpha: f64,
    /// The total sample size the boundary is tightest at.
    pub tuning: f64,
}

impl Default for Guardrail {
    fn default() -> Self {
        Guardrail {
            worse: Worse::Higher,
            difference: Difference::Absolute,
            alpha: 0.05,
            tuning: sequential::DEFAULT_TUNING,
        }
    }
}

/// The guardrail's verdict at one look, with the figures it rests on (for the audit
/// entry that has to let anyone recompute it).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The new variant is worse than control, at level α over all looks.
    pub regression: bool,
    /// The test behind the verdict: "no effect" against an effect in the worse direction.
    pub test: OneSidedResult,
}

/// Checks `new` against `control` on one guardrail metric.
///
/// Errors as the other tests: no baseline (relative effects), or an arm whose variance is
/// not positive yet (too few units, or all the same value, such as no errors at all in
/// either arm). Whether that means "wait" or "hold" is the caller's policy.
pub fn check(
    control: &Summary,
    new: &Summary,
    settings: &Guardrail,
) -> Result<Verdict, StatsError> {
    let side = match settings.worse {
        Worse::Higher => Side::Greater,
        Worse::Lower => Side::Less,
    };
    let test = sequential::one_sided(
        control,
        new,
        side,
        &Sequential {
            difference: settings.difference,
            alpha: settings.alpha,
            tuning: settings.tuning,
        },
    )?;
    Ok(Verdict {
        regression: test.rejects,
        test,
    })
}
