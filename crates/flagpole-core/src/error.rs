//! Compilation errors: what is wrong, and exactly where.

use std::fmt;

/// What a [`CompileError`] is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "type", content = "key", rename_all = "snake_case")]
pub enum Subject {
    /// A flag, by key.
    Flag(String),
    /// A segment, by key.
    Segment(String),
}

/// One problem found while compiling. `path` is relative to the subject's JSON document
/// (for a flag, the [`crate::model::FlagState`]: `config.rules[2].clauses[0].values[1]`),
/// so an API can point at the exact field of the body it received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompileError {
    /// The flag or segment the problem is in.
    pub subject: Subject,
    /// Field path inside the subject, e.g. `config.rules[0].serve.rollout.weights`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, key) = match &self.subject {
            Subject::Flag(k) => ("flag", k),
            Subject::Segment(k) => ("segment", k),
        };
        write!(f, "{kind} `{key}`: {}: {}", self.path, self.message)
    }
}

impl std::error::Error for CompileError {}

/// Every problem found in one compilation, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} compile error(s); first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
pub struct CompileErrors(pub Vec<CompileError>);

/// Collects errors for one subject while compiling it.
pub(crate) struct Sink<'a> {
    subject: &'a Subject,
    errors: &'a mut Vec<CompileError>,
    start: usize,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(subject: &'a Subject, errors: &'a mut Vec<CompileError>) -> Self {
        let start = errors.len();
        Sink {
            subject,
            errors,
            start,
        }
    }

    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(CompileError {
            subject: self.subject.clone(),
            path: path.into(),
            message: message.into(),
        });
    }

    /// True if nothing was pushed through this sink.
    pub(crate) fn is_clean(&self) -> bool {
        self.errors.len() == self.start
    }
}
