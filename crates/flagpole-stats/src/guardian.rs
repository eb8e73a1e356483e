//! The rollout guardian's decision (issue 17): at one check of a release plan's step,
//! advance, extend the step, hold for a person, roll back, or wait.
//!
//! A pure function of the plan, the step, the time since the step began and per-arm
//! aggregates, so the server's scheduler only gathers numbers and acts, and the rules can
//! be read and tested as a table and simulated (`cargo xtask sim-guard`). The rules, in
//! the order they are applied:
//!
//! 1. A step at 100% has no comparison group: [`Decision::Advance`] (the plan is done).
//! 2. Every guardrail with at least [`MIN_EVENTS`] [`events`] in each arm is tested
//!    ([`guardrail::check`], one-sided sequential at the guardrail's α, on [`summaries`]).
//!    Any regression: [`Decision::RollBack`] on the one with the smallest p-value, at any
//!    time in the step, whatever else is missing.
//! 3. Before the step's end (its minimum duration, twice that once extended):
//!    [`Decision::Wait`], saying what it waits for.
//! 4. At the step's end the evidence must be complete: each arm has the step's minimum
//!    units, and no guardrail that could not be tested shows the new variant worse than
//!    control for a reason more data in this step would fix: a refusal (a variance of 0),
//!    or control short of events while the new arm has its events (no errors in control,
//!    many in the new variant). A guardrail merely short of events in the new arm does not
//!    block: the next step tests it on more data. If the evidence is incomplete the step
//!    is extended once by its minimum duration ([`Decision::Extend`]), then
//!    [`Decision::Hold`] says why. A setting out of its domain (α = 1.5) holds at once.
//! 5. Otherwise [`Decision::Advance`].
//!
//! The aggregates are the plan's, one pair per step so far, not the current step's alone:
//! the sequential test's α holds over every look of one sequence, and restarting it at
//! each step would spend α again at every step (five tests at α = 0.05 could roll back a
//! healthy variant one time in five). They stay apart per step because each step splits
//! the population differently: within a step both arms run side by side, so the test
//! compares the arms step by step and combines the steps ([`guardrail::check_strata`]).
//! Summed over the plan, the new arm would be observed mostly late and control mostly
//! early, and an error rate rising by a quarter over the plan's five hours rolled back 14%
//! of A/A plans in `sim-guard`. The units, on the other hand, are the current step's own:
//! they say whether this step has been seen by enough people.

use flagpole_core::release::{PlanArm, ReleasePlan};
use serde::{Deserialize, Serialize};

use crate::guardrail::{self, Guardrail, Worse};
use crate::sequential::OneSidedResult;
use crate::{Aggregate, Summary};

/// No guardrail is tested on fewer events than this in either arm.
pub const MIN_EVENTS: u64 = 20;

/// The total units (both arms) at which a plan's guardrail boundary is tightest: the
/// sequential test's `tuning`, 50,000 rather than gbstats' 5,000 for experiments. Any
/// tuning keeps the test's α; it only moves where the boundary is tight. In `sim-guard`
/// over seeds 1–5 and 17, 50,000 caught 96.1–97.3% of the regressions before the 25% step
/// with 2.9–4.1% false rollbacks; 20,000 caught 94.6–97.0% (two seeds under 95%), 5,000
/// about 94%, and 100,000 let false rollbacks reach 4.9%. docs/rollouts.md has the sweep.
pub const TUNING: f64 = 50_000.0;

/// The guardrail settings a release plan uses for a metric: one-sided at α = 0.05,
/// absolute difference, tuned with [`TUNING`].
pub fn plan_guardrail(worse: Worse) -> Guardrail {
    Guardrail {
        worse,
        tuning: TUNING,
        ..Guardrail::default()
    }
}

/// A value per arm of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arms<T> {
    /// The comparison group's.
    pub control: T,
    /// The new variant's.
    pub new: T,
}

impl<T> Arms<T> {
    fn get(&self, arm: PlanArm) -> &T {
        match arm {
            PlanArm::Control => &self.control,
            PlanArm::New => &self.new,
        }
    }
}

/// One guardrail metric at a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailData {
    /// The metric's name, for the decision and the audit entry (`errors`, `latency_ms`).
    pub name: String,
    /// Direction, α and the rest of the test's settings.
    pub settings: Guardrail,
    /// Each arm's sums in each step so far, in step order (the current step last): errors
    /// per request as a proportion, latency as a mean (n, Σx, Σx²), any tracked metric as
    /// its aggregate.
    pub by_step: Vec<Arms<Aggregate>>,
}

/// Everything a check decides on.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The plan (validated).
    pub plan: &'a ReleasePlan,
    /// Index of the current step in `plan.steps`.
    pub step: usize,
    /// Milliseconds since the current step began.
    pub elapsed_ms: u64,
    /// Whether this step was extended already.
    pub extended: bool,
    /// Units each arm has seen during this step.
    pub units: Arms<u64>,
    /// The guardrails, each with its aggregates.
    pub guardrails: &'a [GuardrailData],
}

/// What the guardian does at a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Go to the next step (from the last step: the plan is complete).
    Advance,
    /// Keep the step running until `until_ms` after it began (once per step).
    Extend {
        /// The step's new end, in milliseconds since it began.
        until_ms: u64,
        /// Why the step could not advance at its end.
        reason: Reason,
    },
    /// Stay at this step until a person acts.
    Hold {
        /// Why.
        reason: Reason,
    },
    /// Serve control to everyone: the new variant made a guardrail worse.
    RollBack {
        /// The guardrail that regressed.
        guardrail: String,
        /// Its aggregates per step at this check, so anyone can recompute the test.
        by_step: Vec<Arms<Aggregate>>,
        /// The test's result (statistic, p-value, bound).
        test: OneSidedResult,
    },
    /// Nothing to do yet.
    Wait {
        /// What the step is waiting for.
        reason: Reason,
    },
}

/// Why a step is waiting, extended or held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The step's minimum duration has not passed.
    StepRunning {
        /// Until the step's end.
        remaining_ms: u64,
    },
    /// An arm has seen fewer units in this step than the step's minimum.
    TooFewUnits {
        /// Which arm.
        arm: PlanArm,
        /// Units seen.
        units: u64,
        /// The step's minimum.
        needed: u64,
    },
    /// A guardrail has fewer than [`MIN_EVENTS`] events in an arm.
    TooFewEvents {
        /// Which guardrail.
        guardrail: String,
        /// Which arm.
        arm: PlanArm,
        /// Events seen.
        events: u64,
        /// [`MIN_EVENTS`].
        needed: u64,
    },
    /// A guardrail cannot be tested (for example control has no errors at all, so no
    /// variance), while the new variant's mean is worse than control's.
    Untestable {
        /// Which guardrail.
        guardrail: String,
        /// gbstats' message code for the refusal (`ZERO_NEGATIVE_VARIANCE`, ...).
        code: String,
        /// The refusal, for a person.
        message: String,
    },
}

/// What one guardrail says at a check.
enum Status<'g> {
    /// Tested; no regression.
    Fine,
    /// Tested; the new variant is worse.
    Regressed(&'g GuardrailData, OneSidedResult),
    /// Not tested, because of `reason`; `worse` when the new variant's mean is worse than
    /// control's all the same.
    Untested { reason: Reason, worse: bool },
}

/// The guardian's decision at one check. See the module documentation for the rules.
///
/// # Panics
///
/// If `check.step` is not a step of the plan, or the plan does not pass
/// [`ReleasePlan::validate`]: the server validates plans when they are written.
pub fn decide(check: &Check<'_>) -> Decision {
    let step = &check.plan.steps[check.step];
    if check.plan.arm_buckets(check.step).control.is_empty() {
        return Decision::Advance;
    }

    // Rule 2: test every guardrail that has the events for it.
    let mut regression: Option<(&GuardrailData, OneSidedResult)> = None;
    let mut waiting: Option<Reason> = None;
    let mut blocking: Option<Reason> = None;
    for g in check.guardrails {
        match status(g) {
            Status::Fine => {}
            Status::Regressed(g, test) => {
                if regression.is_none_or(|(_, r)| test.p_value < r.p_value) {
                    regression = Some((g, test));
                }
            }
            Status::Untested {
                reason: reason @ Reason::Untestable { .. },
                worse: _,
            } if is_invalid(&reason) => {
                // A setting out of its domain will not fix itself: hold now.
                return Decision::Hold { reason };
            }
            Status::Untested { reason, worse } => {
                if worse {
                    blocking.get_or_insert_with(|| reason.clone());
                }
                waiting.get_or_insert(reason);
            }
        }
    }
    if let Some((g, test)) = regression {
        return Decision::RollBack {
            guardrail: g.name.clone(),
            by_step: g.by_step.clone(),
            test,
        };
    }

    // Rule 3: the step runs its (possibly extended) duration.
    let end_ms = step
        .min_duration_ms
        .saturating_mul(if check.extended { 2 } else { 1 });
    if check.elapsed_ms < end_ms {
        return Decision::Wait {
            reason: waiting.unwrap_or(Reason::StepRunning {
                remaining_ms: end_ms - check.elapsed_ms,
            }),
        };
    }

    // Rule 4: complete evidence, units first (they are the step's own promise).
    let short = [PlanArm::New, PlanArm::Control]
        .into_iter()
        .find_map(|arm| {
            let units = *check.units.get(arm);
            (units < step.min_units).then_some(Reason::TooFewUnits {
                arm,
                units,
                needed: step.min_units,
            })
        });
    match short.or(blocking) {
        Some(reason) if !check.extended => Decision::Extend {
            until_ms: end_ms.saturating_mul(2),
            reason,
        },
        Some(reason) => Decision::Hold { reason },
        None => Decision::Advance,
    }
}

/// The events of an arm that make a guardrail testable: for a proportion the units that
/// had the event (errors, conversions), whose count the normal approximation needs (20
/// requests without an error say nothing about an error rate, and with the pooled
/// variance, testing from 20 requests on rolled back 9% of A/A plans in `sim-guard`);
/// otherwise the units.
pub fn events(aggregate: &Aggregate) -> u64 {
    match *aggregate {
        Aggregate::Proportion { sum, .. } => sum as u64,
        Aggregate::Mean { n, .. } | Aggregate::Ratio { n, .. } => n,
    }
}

/// The summaries a guardrail's test compares. A proportion's variance is the pooled
/// rate's, p̄(1 − p̄), in both arms, as in the classic two-proportion z-test: under "no
/// effect" both arms have one rate, and the pooled estimate of its variance is the steadier
/// one. Each arm's own p̂(1 − p̂) is noisy in the small new arm of the first steps, and a
/// worse new arm inflates its own variance and so hides its regression: in `sim-guard`
/// (seed 17) each arm's own variance caught at most 91% of regressions before the 25% step
/// at any tuning tried. Other metrics keep each arm's variance: equal means do not imply
/// equal variances.
pub fn summaries(aggregates: &Arms<Aggregate>) -> Arms<Summary> {
    let (control, new) = (aggregates.control.summary(), aggregates.new.summary());
    match (aggregates.control, aggregates.new) {
        (Aggregate::Proportion { n: nc, sum: sc }, Aggregate::Proportion { n: nn, sum: sn })
            if nc + nn > 0 =>
        {
            let p = (sc + sn) / (nc + nn) as f64;
            let variance = p * (1.0 - p);
            Arms {
                control: Summary {
                    variance,
                    ..control
                },
                new: Summary { variance, ..new },
            }
        }
        _ => Arms { control, new },
    }
}

/// An arm over all steps: units, mean and events.
struct Total {
    mean: f64,
    events: u64,
}

fn total(g: &GuardrailData, arm: PlanArm) -> Total {
    let (mut n, mut sum, mut events_) = (0u64, 0.0, 0u64);
    for step in &g.by_step {
        let a = step.get(arm);
        let s = a.summary();
        n += s.n;
        sum += s.mean * s.n as f64;
        events_ += events(a);
    }
    Total {
        mean: if n == 0 { 0.0 } else { sum / n as f64 },
        events: events_,
    }
}

fn status(g: &GuardrailData) -> Status<'_> {
    let (control, new) = (total(g, PlanArm::Control), total(g, PlanArm::New));
    let worse = match g.settings.worse {
        Worse::Higher => new.mean > control.mean,
        Worse::Lower => new.mean < control.mean,
    };
    if let Some(reason) = too_few_events(g, &control, &new) {
        // Too few events says "too early to tell", which is no reason to stop a plan whose
        // next step brings more data; unless the new arm has its events and is worse while
        // control lacks them (no errors at all in control, many in the new variant).
        return Status::Untested {
            reason,
            worse: worse && new.events >= MIN_EVENTS,
        };
    }
    let strata: Vec<_> = g
        .by_step
        .iter()
        .map(|step| {
            let s = summaries(step);
            (s.control, s.new)
        })
        .collect();
    match guardrail::check_strata(&strata, &g.settings) {
        Ok(v) if v.regression => Status::Regressed(g, v.test),
        Ok(_) => Status::Fine,
        Err(e) => Status::Untested {
            reason: Reason::Untestable {
                guardrail: g.name.clone(),
                code: e.code().to_owned(),
                message: e.to_string(),
            },
            worse,
        },
    }
}

fn is_invalid(reason: &Reason) -> bool {
    matches!(reason, Reason::Untestable { code, .. } if code == "INVALID_INPUT")
}

/// The first arm of `g` with fewer than [`MIN_EVENTS`] events over the plan, control
/// first.
fn too_few_events(g: &GuardrailData, control: &Total, new: &Total) -> Option<Reason> {
    [(PlanArm::Control, control), (PlanArm::New, new)]
        .into_iter()
        .find_map(|(arm, t)| {
            (t.events < MIN_EVENTS).then(|| Reason::TooFewEvents {
                guardrail: g.name.clone(),
                arm,
                events: t.events,
                needed: MIN_EVENTS,
            })
        })
}
