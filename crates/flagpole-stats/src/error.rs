//! Why a comparison has no result. The first three are the cases where gbstats answers
//! with an empty result and a message code; [`StatsError::code`] gives that code, so a
//! result page can say the same thing GrowthBook would.

use std::fmt;

/// Which side of a comparison a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The baseline every other arm is compared with.
    Control,
    /// The arm being compared with control.
    Treatment,
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arm::Control => "control",
            Arm::Treatment => "treatment",
        })
    }
}

/// A comparison that cannot be computed, and why, in words for the person reading results.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The control mean is exactly 0. gbstats refuses every frequentist comparison then,
    /// absolute ones included, and Bayesian relative ones.
    #[error("the control arm's mean is 0: there is no baseline to measure a lift against")]
    ZeroBaseline,
    /// A Bayesian absolute comparison with a prior stated relative to the control mean,
    /// when that mean is 0: the prior would have zero width. gbstats 0.8.0 raises
    /// ZeroDivisionError here; this is the same outcome (no result) as a clear error.
    #[error(
        "the control arm's mean is 0 and the prior is relative to it: the prior has no \
         scale for an absolute effect"
    )]
    ZeroBaselinePrior,
    /// An arm has no units (Bayesian tests; frequentist ones report zero variance).
    #[error("the {0} arm has no units yet")]
    NoUnits(Arm),
    /// An arm's variance is zero or negative: fewer than two units, or every unit has the
    /// same value, so the uncertainty of its mean cannot be estimated.
    #[error(
        "the {0} arm's variance is not positive (fewer than 2 units, or every unit has the \
         same value): its uncertainty cannot be estimated yet"
    )]
    ZeroVariance(Arm),
    /// A setting or input is out of its domain (a programming or configuration error,
    /// not a property of the data).
    #[error("{field}: {message}")]
    Invalid {
        /// The setting or input, as named in the API.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl StatsError {
    /// The matching gbstats message code (`gbstats/messages.py`), or `INVALID_INPUT`.
    pub fn code(&self) -> &'static str {
        match self {
            StatsError::ZeroBaseline | StatsError::ZeroBaselinePrior => {
                "ZERO_NEGATIVE_BASELINE_VARIATION"
            }
            StatsError::NoUnits(_) => "NO_UNITS_IN_VARIATION",
            StatsError::ZeroVariance(_) => "ZERO_NEGATIVE_VARIANCE",
            StatsError::Invalid { .. } => "INVALID_INPUT",
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StatsError::Invalid {
            field,
            message: message.into(),
        }
    }
}
