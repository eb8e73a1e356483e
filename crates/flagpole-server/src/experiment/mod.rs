//! A/B experiments (issue 16): what an experiment is made of (`model.rs`: arms, metrics,
//! analysis settings, state) and how its results are computed from per-arm sums
//! (`results.rs`, over flagpole-stats).
//!
//! Pure: no IO, no HTTP, no database. `domain::experiments` writes experiments (one
//! transaction each), `store::experiment` holds the SQL, including the per-unit
//! aggregates the ingest writer maintains, and `http::experiments` is the REST surface.
//! This module sits below all three; its checks return [`Invalid`] (field, message),
//! which the domain turns into a 422.

pub(crate) mod model;
pub(crate) mod results;

pub(crate) use model::{
    Analysis, Arm, Decision, Metric, MetricKind, Metrics, Mode, State, check_analysis, check_arms,
    check_metrics,
};

/// A part of a request that is wrong: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// Path in the request body: `arms[1].variant`, `metrics.primary.event`.
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl Invalid {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
