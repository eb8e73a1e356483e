//! Alerts that act: what Prometheus Alertmanager sends (`payload.rs`), how a project's
//! alert mappings pick the alerts they act on (`matcher.rs`), and what a mapping does and
//! did (`mapping.rs`).
//!
//! Pure: no IO, no HTTP, no database. The webhook handler (`http::alerts`) parses and
//! authorises, `domain::alert_receive` acts (one transaction per firing), and
//! `store::alert_mapping` holds the SQL. This module sits below all three, so it names
//! none of them; its checks return [`Invalid`], which the domain turns into a 4xx.

pub(crate) mod mapping;
pub(crate) mod matcher;
pub(crate) mod payload;

pub(crate) use mapping::{FiringRecord, MappingAction, Outcome};
pub(crate) use matcher::{Matcher, Rule};
pub(crate) use payload::{FiringAlert, Notification};

/// A part of a request that is wrong: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// Path in the request body: `alerts[2].startsAt`, `matchers[0].value`.
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
