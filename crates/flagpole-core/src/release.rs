//! Release plans (issue 17): a flag's move from a control variant to a new variant in
//! steps of increasing percentage, and how each step maps onto the flag's rollout buckets.
//!
//! A plan is data the server stores and the guardian (`flagpole_stats::guardian`) decides
//! over; this module says what a valid plan is and which buckets each arm holds at each
//! step. The mapping is the stickiness promise: a step serves
//! `Rollout { weights: [new: w, control: 100% − w] }`, and a rollout fills its slices in
//! order from bucket 0, so the new variant holds buckets `[0, w)` and the comparison group
//! (control) `[w, 100%)`. The arms never overlap, and since `w` only grows from step to
//! step, whoever got the new variant keeps it at every later step.
//!
//! The comparison group is the whole rest of the population rather than a slice the size
//! of the new variant's: the guardrail test's variance is σ²/n_new + σ²/n_control, so the
//! largest control there is gives the most power at the small first steps, which is where
//! a regression must be caught.

use serde::{Deserialize, Serialize};

use crate::model::{Rollout, Serve, TOTAL_WEIGHT, WeightedVariant};

/// Minimum duration of each step of a template: one hour.
pub const DEFAULT_MIN_DURATION_MS: u64 = 3600 * 1000;
/// Minimum units per arm of each step of a template.
pub const DEFAULT_MIN_UNITS: u64 = 200;

/// A plan's starting steps, edited freely afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// 1 → 5 → 10 → 25 → 50 → 100%: the default.
    Gradual,
    /// 5 → 25 → 50 → 100%: the classic canary.
    Canary,
}

impl Template {
    /// The template's percentages.
    pub fn percents(self) -> &'static [f64] {
        match self {
            Template::Gradual => &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0],
            Template::Canary => &[5.0, 25.0, 50.0, 100.0],
        }
    }

    /// The template's steps, each with the default minimum duration and units.
    pub fn steps(self) -> Vec<Step> {
        self.percents()
            .iter()
            .map(|&percent| Step {
                percent,
                min_duration_ms: DEFAULT_MIN_DURATION_MS,
                min_units: DEFAULT_MIN_UNITS,
            })
            .collect()
    }
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Share of the population served the new variant, in percent: 0 < p ≤ 100, in
    /// multiples of 0.001 (a rollout's resolution).
    pub percent: f64,
    /// The step lasts at least this long before it may advance.
    pub min_duration_ms: u64,
    /// Each arm must have seen at least this many units during the step before it may
    /// advance.
    pub min_units: u64,
}

/// A release plan on one flag in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePlan {
    /// The variant everyone has before the plan, and the comparison group's.
    pub control: String,
    /// The variant being released.
    pub new: String,
    /// Attribute whose value is hashed; empty means the context key (as [`Rollout`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bucket_by: String,
    /// Steps in order, percentages strictly increasing.
    pub steps: Vec<Step>,
}

/// What is wrong with a plan, and where (`steps[2].percent`), for a 4xx naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct PlanError {
    /// The field, as a path into the plan's JSON document.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

/// The buckets each arm holds at a step, as half-open ranges of `[0, TOTAL_WEIGHT)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmBuckets {
    /// The new variant's buckets.
    pub new: std::ops::Range<u32>,
    /// The comparison group's: control's, disjoint from `new`.
    pub control: std::ops::Range<u32>,
}

/// Which side of the comparison a bucket is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanArm {
    /// The comparison group.
    Control,
    /// The new variant.
    New,
}

/// A percentage as a rollout weight (0.001% units), if it is one exactly (to 1e-9).
fn weight_of(percent: f64) -> Option<u32> {
    let w = percent * f64::from(TOTAL_WEIGHT) / 100.0;
    let rounded = w.round();
    ((w - rounded).abs() <= 1e-9 && rounded >= 0.0 && rounded <= f64::from(TOTAL_WEIGHT))
        .then_some(rounded as u32)
}

impl ReleasePlan {
    /// A plan from a template.
    pub fn from_template(template: Template, control: &str, new: &str) -> ReleasePlan {
        ReleasePlan {
            control: control.to_owned(),
            new: new.to_owned(),
            bucket_by: String::new(),
            steps: template.steps(),
        }
    }

    /// Checks the plan on its own: two distinct variants, at least one step, percentages
    /// in (0, 100] in multiples of 0.001 and strictly increasing, positive durations. The
    /// first problem is returned, naming its field.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.control.is_empty() {
            return Err(problem("control", "a control variant is required"));
        }
        if self.new.is_empty() {
            return Err(problem("new", "a new variant is required"));
        }
        if self.control == self.new {
            return Err(problem(
                "new",
                format!("must differ from the control variant `{}`", self.control),
            ));
        }
        if self.steps.is_empty() {
            return Err(problem("steps", "at least one step is required"));
        }
        let mut previous: Option<(f64, u32)> = None;
        for (i, step) in self.steps.iter().enumerate() {
            let field = format!("steps[{i}].percent");
            let p = step.percent;
            if !(p > 0.0 && p <= 100.0) {
                return Err(problem(
                    field,
                    format!("must be above 0 and at most 100, got {p}"),
                ));
            }
            let Some(w) = weight_of(p) else {
                return Err(problem(
                    field,
                    format!("must be a multiple of 0.001, got {p}"),
                ));
            };
            if let Some((prev_p, prev_w)) = previous
                && w <= prev_w
            {
                return Err(problem(
                    field,
                    format!("steps must increase: {p} follows {prev_p} (step {})", i - 1),
                ));
            }
            if step.min_duration_ms == 0 {
                return Err(problem(
                    format!("steps[{i}].min_duration_ms"),
                    "must be positive",
                ));
            }
            previous = Some((p, w));
        }
        Ok(())
    }

    /// Checks that the flag has both variants (`variants`: the flag's variant keys).
    pub fn validate_variants<'a>(
        &self,
        variants: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), PlanError> {
        for (field, key) in [("control", &self.control), ("new", &self.new)] {
            if !variants.clone().into_iter().any(|v| v == key) {
                return Err(problem(field, format!("the flag has no variant `{key}`")));
            }
        }
        Ok(())
    }

    /// The new variant's rollout weight at `step` (0.001% units). Panics if `step` is out
    /// of range or the plan is invalid; call [`ReleasePlan::validate`] first.
    pub fn new_weight(&self, step: usize) -> u32 {
        weight_of(self.steps[step].percent).expect("a validated plan")
    }

    /// Whether `step` is the plan's last.
    pub fn is_last(&self, step: usize) -> bool {
        step + 1 == self.steps.len()
    }

    /// What the flag serves at `step`: the new variant first, so its slice starts at
    /// bucket 0 and only grows (see the module's documentation).
    pub fn serve(&self, step: usize) -> Serve {
        let w = self.new_weight(step);
        if w == TOTAL_WEIGHT {
            return Serve::Variant(self.new.clone());
        }
        Serve::Rollout(Rollout {
            bucket_by: self.bucket_by.clone(),
            weights: vec![
                WeightedVariant {
                    variant: self.new.clone(),
                    weight: w,
                },
                WeightedVariant {
                    variant: self.control.clone(),
                    weight: TOTAL_WEIGHT - w,
                },
            ],
        })
    }

    /// What the flag serves once the plan is rolled back or aborted: control to everyone.
    pub fn serve_rolled_back(&self) -> Serve {
        Serve::Variant(self.control.clone())
    }

    /// The buckets of each arm at `step`. At 100% the comparison group is empty.
    pub fn arm_buckets(&self, step: usize) -> ArmBuckets {
        let w = self.new_weight(step);
        ArmBuckets {
            new: 0..w,
            control: w..TOTAL_WEIGHT,
        }
    }

    /// The arm a bucket (`flagpole_core::bucket::bucket`) is in at `step`.
    pub fn arm_of(&self, step: usize, bucket: u32) -> PlanArm {
        if bucket < self.new_weight(step) {
            PlanArm::New
        } else {
            PlanArm::Control
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(percents: &[f64]) -> ReleasePlan {
        let mut p = ReleasePlan::from_template(Template::Gradual, "off", "on");
        p.steps = percents
            .iter()
            .map(|&percent| Step {
                percent,
                min_duration_ms: 1000,
                min_units: 10,
            })
            .collect();
        p
    }

    #[test]
    fn templates_are_valid() {
        for t in [Template::Gradual, Template::Canary] {
            let p = ReleasePlan::from_template(t, "off", "on");
            p.validate().unwrap();
            assert_eq!(p.steps.last().unwrap().percent, 100.0);
        }
        assert_eq!(
            Template::Gradual.percents(),
            [1.0, 5.0, 10.0, 25.0, 50.0, 100.0]
        );
        assert_eq!(Template::Canary.percents(), [5.0, 25.0, 50.0, 100.0]);
    }

    /// Each invalid plan names the field at fault.
    #[test]
    fn invalid_plans_name_the_field() {
        let cases: &[(&[f64], &str, &str)] = &[
            (&[], "steps", "at least one"),
            (&[0.0, 5.0], "steps[0].percent", "above 0"),
            (&[5.0, 100.5], "steps[1].percent", "at most 100"),
            (&[-1.0], "steps[0].percent", "above 0"),
            (&[f64::NAN], "steps[0].percent", "above 0"),
            (
                &[5.0, 25.0, 25.0],
                "steps[2].percent",
                "must increase: 25 follows 25",
            ),
            (
                &[5.0, 50.0, 25.0, 100.0],
                "steps[2].percent",
                "must increase",
            ),
            (&[1.0, 2.0005], "steps[1].percent", "multiple of 0.001"),
        ];
        for (percents, field, message) in cases {
            let e = plan(percents).validate().unwrap_err();
            assert_eq!(e.field, *field, "{percents:?}: {e}");
            assert!(e.message.contains(message), "{percents:?}: {e}");
        }
        let mut p = plan(&[5.0]);
        p.steps[0].min_duration_ms = 0;
        assert_eq!(p.validate().unwrap_err().field, "steps[0].min_duration_ms");
        let mut p = plan(&[5.0]);
        p.new = "off".into();
        assert_eq!(p.validate().unwrap_err().field, "new");
        let p = plan(&[0.001, 0.002, 99.999]);
        p.validate().unwrap();
        assert_eq!(p.new_weight(0), 1);
        assert_eq!(p.new_weight(2), 99_999);
    }

    #[test]
    fn variants_must_exist() {
        let p = plan(&[5.0]);
        p.validate_variants(["on", "off"]).unwrap();
        let e = p.validate_variants(["on", "other"]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("control", "the flag has no variant `off`")
        );
    }

    #[test]
    fn serves_new_first_and_everyone_at_100() {
        let p = plan(&[5.0, 100.0]);
        let Serve::Rollout(r) = p.serve(0) else {
            panic!("a rollout at 5%")
        };
        assert_eq!(
            r.weights,
            [
                WeightedVariant {
                    variant: "on".into(),
                    weight: 5_000
                },
                WeightedVariant {
                    variant: "off".into(),
                    weight: 95_000
                },
            ]
        );
        assert_eq!(p.serve(1), Serve::Variant("on".into()));
        assert_eq!(p.serve_rolled_back(), Serve::Variant("off".into()));
        assert_eq!(p.arm_buckets(1).control, TOTAL_WEIGHT..TOTAL_WEIGHT);
    }
}
