//! The guardrail check of a progressive rollout (issue 17): has the new variant made a
//! metric worse than control? A one-sided sequential test ([`crate::sequential`]), so a
//! guardian may look every minute for hours and still roll back a healthy variant with
//! probability at most α over the whole rollout.

use crate::effect::{Effect, effect};
use crate::sequential::{self, OneSidedResult, Sequential, Side};
use crate::{Arm, Difference, StatsError, Summary};

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

fn side_and_sequential(settings: &Guardrail) -> (Side, Sequential) {
    let side = match settings.worse {
        Worse::Higher => Side::Greater,
        Worse::Lower => Side::Less,
    };
    let sequential = Sequential {
        difference: settings.difference,
        alpha: settings.alpha,
        tuning: settings.tuning,
    };
    (side, sequential)
}

/// Checks `new` against `control` when the arms were observed in strata (a release plan's
/// steps) whose split between the arms differs. Each stratum's effect is estimated within
/// it, where both arms ran side by side, and the effects are combined weighted by the
/// inverse of their variances. Pooling the strata's sums instead compares a new arm
/// observed mostly late with a control observed mostly early, so a metric drifting with
/// the time of day looks like a regression.
///
/// Refusals are [`check`]'s on the strata's totals; strata whose effect has no positive
/// variance carry no information and are left out. With one stratum it is [`check`].
pub fn check_strata(
    strata: &[(Summary, Summary)],
    settings: &Guardrail,
) -> Result<Verdict, StatsError> {
    let (side, sequential) = side_and_sequential(settings);
    let total = |pick: fn(&(Summary, Summary)) -> &Summary| {
        let n: u64 = strata.iter().map(|s| pick(s).n).sum();
        let mean = if n == 0 {
            0.0
        } else {
            strata
                .iter()
                .map(|s| pick(s).mean * pick(s).n as f64)
                .sum::<f64>()
                / n as f64
        };
        // Only the refusals are wanted of the totals: a positive variance where any
        // stratum has one.
        let variance = strata.iter().map(|s| pick(s).variance).fold(0.0, f64::max);
        Summary { n, mean, variance }
    };
    let (control, new) = (total(|s| &s.0), total(|s| &s.1));
    sequential::prepare(&control, &new, &sequential)?;
    let (mut weights, mut weighted) = (0.0, 0.0);
    for (c, t) in strata {
        if c.n == 0 || t.n == 0 || c.mean == 0.0 && settings.difference == Difference::Relative {
            continue;
        }
        let Effect { estimate, variance } = effect(c, t, settings.difference);
        if variance > 0.0 && variance.is_finite() {
            weights += 1.0 / variance;
            weighted += estimate / variance;
        }
    }
    if weights == 0.0 {
        return Err(StatsError::ZeroVariance(Arm::Control));
    }
    let combined = Effect {
        estimate: weighted / weights,
        variance: 1.0 / weights,
    };
    let test = sequential::one_sided_of(combined, (control.n + new.n) as f64, side, &sequential);
    Ok(Verdict {
        regression: test.rejects,
        test,
    })
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
