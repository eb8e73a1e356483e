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
    subject: SubjectRef<'a>,
    errors: &'a mut Vec<CompileError>,
    start: usize,
}

/// The subject of a [`Sink`], borrowed: the owned [`Subject`] (a copy of the key) is only
/// made when an error is reported, so compiling a valid flag allocates nothing for it.
#[derive(Clone, Copy)]
enum SubjectRef<'a> {
    Owned(&'a Subject),
    Flag(&'a str),
    Segment(&'a str),
}

impl<'a> Sink<'a> {
    pub(crate) fn new(subject: &'a Subject, errors: &'a mut Vec<CompileError>) -> Self {
        Self::with(SubjectRef::Owned(subject), errors)
    }

    /// A sink for the flag with this key.
    pub(crate) fn flag(key: &'a str, errors: &'a mut Vec<CompileError>) -> Self {
        Self::with(SubjectRef::Flag(key), errors)
    }

    /// A sink for the segment with this key.
    pub(crate) fn segment(key: &'a str, errors: &'a mut Vec<CompileError>) -> Self {
        Self::with(SubjectRef::Segment(key), errors)
    }

    fn with(subject: SubjectRef<'a>, errors: &'a mut Vec<CompileError>) -> Self {
        let start = errors.len();
        Sink {
            subject,
            errors,
            start,
        }
    }

    /// Reports a problem at `path` (a [`Path`], or any text).
    pub(crate) fn push(&mut self, path: impl fmt::Display, message: impl Into<String>) {
        let subject = match self.subject {
            SubjectRef::Owned(s) => s.clone(),
            SubjectRef::Flag(key) => Subject::Flag(key.to_owned()),
            SubjectRef::Segment(key) => Subject::Segment(key.to_owned()),
        };
        self.errors.push(CompileError {
            subject,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// True if nothing was pushed through this sink.
    pub(crate) fn is_clean(&self) -> bool {
        self.errors.len() == self.start
    }
}

/// Where in a subject's document compilation is, as a chain of stack frames
/// (`config` → `rules[2]` → `clauses[0]`). Formatted only when an error is reported:
/// building path strings eagerly was most of the cost of compiling a valid snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'static str,
    index: Option<usize>,
}

impl<'a> Path<'a> {
    /// A top-level field, e.g. `config.default_serve`.
    pub(crate) fn root(name: &'static str) -> Path<'static> {
        Path {
            parent: None,
            name,
            index: None,
        }
    }

    /// A top-level list element, e.g. `rules[2]`.
    pub(crate) fn root_at(name: &'static str, index: usize) -> Path<'static> {
        Path {
            parent: None,
            name,
            index: Some(index),
        }
    }

    /// `self.name`
    pub(crate) fn field(&'a self, name: &'static str) -> Path<'a> {
        Path {
            parent: Some(self),
            name,
            index: None,
        }
    }

    /// `self.name[index]`
    pub(crate) fn at(&'a self, name: &'static str, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            name,
            index: Some(index),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}.")?;
        }
        f.write_str(self.name)?;
        if let Some(index) = self.index {
            write!(f, "[{index}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_format_like_the_document() {
        let config = Path::root("config");
        let rule = config.at("rules", 2);
        assert_eq!(
            rule.at("clauses", 0).field("values").to_string(),
            "config.rules[2].clauses[0].values"
        );
        assert_eq!(rule.field("serve").to_string(), "config.rules[2].serve");
        assert_eq!(Path::root_at("rules", 1).to_string(), "rules[1]");
        assert_eq!(
            Path::root("config.off_variant").to_string(),
            "config.off_variant"
        );
    }
}
