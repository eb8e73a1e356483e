//! The parts of an experiment and their rules: arms (variants of the flag, control first,
//! with a split that sums to 100%), metrics over tracked events, analysis settings, state.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// Weights of a flag's rollout are in 0.001% units: a percentage with more decimals than
/// that cannot be served exactly.
const WEIGHT_UNITS_PER_PERCENT: f64 = 1000.0;

/// One arm: a variant of the flag and its share of traffic. The first arm is control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExperimentArm)]
pub(crate) struct Arm {
    /// A variant key of the flag.
    pub(crate) variant: String,
    /// Share of traffic in percent (up to 3 decimals); the arms sum to 100.
    pub(crate) weight: f64,
}

impl Arm {
    /// The weight in the flag rollout's units (0.001%).
    pub(crate) fn rollout_weight(&self) -> u32 {
        // Checked by `check_arms`: a non-negative multiple of 0.001 up to 100.
        (self.weight * WEIGHT_UNITS_PER_PERCENT).round() as u32
    }
}

/// What a metric measures of a unit, from the unit's tracked events after its first
/// exposure. An event without a value counts as value 1 where a value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MetricKind {
    /// Did the unit send the event within the conversion window (0 or 1).
    Binomial,
    /// How many times the unit sent the event.
    Count,
    /// The sum of the event's values.
    Sum,
    /// The mean of the event's values: Σ values over Σ events, as a ratio of sums across
    /// units (delta method).
    Mean,
    /// Σ values of `event` over Σ values of `denominator`, per arm (delta method).
    Ratio,
}

/// A metric over tracked events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExperimentMetric)]
pub(crate) struct Metric {
    /// Unique within the experiment; names the metric in results.
    pub(crate) key: String,
    /// What is measured.
    pub(crate) kind: MetricKind,
    /// The tracked event's name (the numerator's, for a ratio).
    pub(crate) event: String,
    /// A ratio's denominator event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) denominator: Option<String>,
    /// Only events within this many hours after the unit's first exposure count. Binomial
    /// metrics default to 72 hours; the others count every later event when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) window_hours: Option<f64>,
    /// Lower is better (for example latency or errors): chance to win and risk turn round.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) inverse: bool,
}

/// Binomial metrics' conversion window when none is given.
pub(crate) const DEFAULT_CONVERSION_WINDOW_HOURS: f64 = 72.0;

impl Metric {
    /// The window in milliseconds after first exposure, if any.
    pub(crate) fn window_ms(&self) -> Option<i64> {
        let hours = match (self.window_hours, self.kind) {
            (Some(h), _) => h,
            (None, MetricKind::Binomial) => DEFAULT_CONVERSION_WINDOW_HOURS,
            (None, _) => return None,
        };
        Some((hours * 3_600_000.0).round() as i64)
    }
}

/// An experiment's metrics: one primary, any secondary and guardrail ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExperimentMetrics)]
pub(crate) struct Metrics {
    /// The metric the decision is about.
    pub(crate) primary: Metric,
    /// Further metrics to learn from.
    #[serde(default)]
    pub(crate) secondary: Vec<Metric>,
    /// Metrics that must not get worse.
    #[serde(default)]
    pub(crate) guardrail: Vec<Metric>,
}

impl Metrics {
    /// Every metric with its role, primary first.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&'static str, &Metric)> {
        std::iter::once(("primary", &self.primary))
            .chain(self.secondary.iter().map(|m| ("secondary", m)))
            .chain(self.guardrail.iter().map(|m| ("guardrail", m)))
    }
}

/// How results are tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    /// Welch's t-test at a fixed horizon: look once, at the planned sample size.
    #[default]
    Frequentist,
    /// Confidence sequences: valid however often results are looked at.
    Sequential,
    /// Chance to beat control and risk, flat Gaussian prior.
    Bayesian,
}

/// Analysis settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = ExperimentAnalysis)]
pub(crate) struct Analysis {
    /// Which test.
    pub(crate) mode: Mode,
    /// False-positive rate; intervals cover 1 − alpha.
    pub(crate) alpha: f64,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            mode: Mode::Frequentist,
            alpha: 0.05,
        }
    }
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ExperimentState)]
pub(crate) enum State {
    /// Being set up; nothing is collected.
    Draft,
    /// The flag serves the split and SDKs send exposures.
    Running,
    /// Over, with a decision.
    Stopped,
}

impl State {
    /// The state with this stored name.
    pub(crate) fn parse(s: &str) -> Option<State> {
        match s {
            "draft" => Some(State::Draft),
            "running" => Some(State::Running),
            "stopped" => Some(State::Stopped),
            _ => None,
        }
    }
}

/// What was decided when the experiment stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExperimentDecision)]
pub(crate) struct Decision {
    /// The variant to ship, or none (keep things as they were / inconclusive).
    pub(crate) ship: Option<String>,
    /// Why.
    #[serde(default)]
    pub(crate) comment: String,
}

/// Checks arms against the flag's variant keys: at least two, distinct, each a variant of
/// the flag, weights positive multiples of 0.001% that sum to 100%.
pub(crate) fn check_arms(arms: &[Arm], variants: &[&str]) -> Result<(), Invalid> {
    if arms.len() < 2 {
        return Err(Invalid::new(
            "arms",
            "an experiment needs at least two arms: control first, then one or more treatments",
        ));
    }
    for (i, arm) in arms.iter().enumerate() {
        if !variants.contains(&arm.variant.as_str()) {
            return Err(Invalid::new(
                format!("arms[{i}].variant"),
                format!(
                    "`{}` is not a variant of the flag (its variants: {})",
                    arm.variant,
                    variants.join(", ")
                ),
            ));
        }
        if arms[..i].iter().any(|a| a.variant == arm.variant) {
            return Err(Invalid::new(
                format!("arms[{i}].variant"),
                format!("`{}` is already an arm", arm.variant),
            ));
        }
        let units = arm.weight * WEIGHT_UNITS_PER_PERCENT;
        if !(arm.weight > 0.0 && arm.weight <= 100.0) || (units - units.round()).abs() > 1e-6 {
            return Err(Invalid::new(
                format!("arms[{i}].weight"),
                "must be a percentage above 0 and at most 100, with at most 3 decimals",
            ));
        }
    }
    let total: u32 = arms.iter().map(Arm::rollout_weight).sum();
    if total != flagpole_core::model::TOTAL_WEIGHT {
        return Err(Invalid::new(
            "arms",
            format!(
                "the split must sum to 100%, it sums to {}%",
                f64::from(total) / WEIGHT_UNITS_PER_PERCENT
            ),
        ));
    }
    Ok(())
}

/// Checks metrics: each names an event (and a ratio its denominator), keys are distinct,
/// windows positive.
pub(crate) fn check_metrics(metrics: &Metrics) -> Result<(), Invalid> {
    let mut seen: Vec<&str> = Vec::new();
    let fields = std::iter::once(("metrics.primary".to_owned(), &metrics.primary))
        .chain(
            metrics
                .secondary
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("metrics.secondary[{i}]"), m)),
        )
        .chain(
            metrics
                .guardrail
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("metrics.guardrail[{i}]"), m)),
        );
    for (field, metric) in fields {
        if flagpole_core::validate_key(&metric.key).is_err() {
            return Err(Invalid::new(
                format!("{field}.key"),
                "a metric needs a key: letters, digits, `-`, `_` or `.`",
            ));
        }
        if seen.contains(&metric.key.as_str()) {
            return Err(Invalid::new(
                format!("{field}.key"),
                format!("`{}` names another metric of this experiment", metric.key),
            ));
        }
        seen.push(&metric.key);
        if metric.event.trim().is_empty() {
            return Err(Invalid::new(
                format!("{field}.event"),
                "a metric must name the tracked event it counts",
            ));
        }
        match (&metric.kind, &metric.denominator) {
            (MetricKind::Ratio, None) => {
                return Err(Invalid::new(
                    format!("{field}.denominator"),
                    "a ratio metric must name its denominator event",
                ));
            }
            (MetricKind::Ratio, Some(d)) if d.trim().is_empty() => {
                return Err(Invalid::new(
                    format!("{field}.denominator"),
                    "a ratio metric must name its denominator event",
                ));
            }
            (MetricKind::Ratio, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(Invalid::new(
                    format!("{field}.denominator"),
                    "only a ratio metric has a denominator",
                ));
            }
        }
        if let Some(h) = metric.window_hours
            && !(h > 0.0 && h.is_finite())
        {
            return Err(Invalid::new(
                format!("{field}.window_hours"),
                "must be a positive number of hours",
            ));
        }
    }
    Ok(())
}

/// Checks the analysis settings.
pub(crate) fn check_analysis(analysis: &Analysis) -> Result<(), Invalid> {
    if !(analysis.alpha > 0.0 && analysis.alpha < 0.5) {
        return Err(Invalid::new(
            "analysis.alpha",
            "must be between 0 and 0.5 (exclusive)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(variant: &str, weight: f64) -> Arm {
        Arm {
            variant: variant.into(),
            weight,
        }
    }

    #[test]
    fn arms_must_be_distinct_variants_splitting_all_traffic() {
        let v = ["off", "on", "blue"];
        assert!(check_arms(&[arm("off", 50.0), arm("on", 50.0)], &v).is_ok());
        assert!(
            check_arms(
                &[arm("off", 33.333), arm("on", 33.333), arm("blue", 33.334)],
                &v
            )
            .is_ok()
        );
        let field = |arms: &[Arm]| check_arms(arms, &v).unwrap_err().field;
        assert_eq!(field(&[arm("off", 100.0)]), "arms");
        assert_eq!(
            field(&[arm("off", 50.0), arm("red", 50.0)]),
            "arms[1].variant"
        );
        assert_eq!(
            field(&[arm("off", 50.0), arm("off", 50.0)]),
            "arms[1].variant"
        );
        assert_eq!(field(&[arm("off", 50.0), arm("on", 40.0)]), "arms");
        assert_eq!(field(&[arm("off", 50.0), arm("on", 0.0)]), "arms[1].weight");
        assert_eq!(
            field(&[arm("off", 49.9995), arm("on", 50.0005)]),
            "arms[0].weight"
        );
    }

    fn metric(key: &str, kind: MetricKind, event: &str) -> Metric {
        Metric {
            key: key.into(),
            kind,
            event: event.into(),
            denominator: None,
            window_hours: None,
            inverse: false,
        }
    }

    #[test]
    fn metrics_must_name_their_events() {
        let ok = Metrics {
            primary: metric("buy", MetricKind::Binomial, "purchase"),
            secondary: vec![metric("n", MetricKind::Count, "click")],
            guardrail: vec![],
        };
        assert!(check_metrics(&ok).is_ok());
        assert_eq!(ok.primary.window_ms(), Some(72 * 3_600_000));
        assert_eq!(ok.secondary[0].window_ms(), None);
        let mut m = ok.clone();
        m.primary.event = " ".into();
        assert_eq!(
            check_metrics(&m).unwrap_err().field,
            "metrics.primary.event"
        );
        let mut m = ok.clone();
        m.secondary[0].key = "buy".into();
        assert_eq!(
            check_metrics(&m).unwrap_err().field,
            "metrics.secondary[0].key"
        );
        let mut m = ok.clone();
        m.guardrail.push(metric("r", MetricKind::Ratio, "a"));
        assert_eq!(
            check_metrics(&m).unwrap_err().field,
            "metrics.guardrail[0].denominator"
        );
    }
}
