//! The evaluation context: who is asking (a targeting key) and what we know about them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Attribute map. foldhash rather than SipHash: lookups are on the evaluation hot path and
/// a randomly seeded foldhash still resists collision attacks from remote (OFREP) contexts.
pub type Attributes = HashMap<String, Value, foldhash::fast::RandomState>;

/// A targeting key plus attributes.
///
/// Build one per request and reuse it: evaluation only borrows it, so a reused context
/// costs no allocation per evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// The targeting key (user id, device id, ...). Empty means "none": individual
    /// targets cannot match and rollouts bucketing by key report an error.
    #[serde(default)]
    pub key: String,
    /// Everything else. Values may be strings, numbers, booleans, lists or nested objects.
    #[serde(default)]
    pub attributes: Attributes,
}

impl Context {
    /// A context with a targeting key and no attributes.
    pub fn new(key: impl Into<String>) -> Self {
        Context {
            key: key.into(),
            attributes: Attributes::default(),
        }
    }

    /// Builder-style [`Context::set`].
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(name, value);
        self
    }

    /// Sets an attribute, replacing any previous value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.attributes.insert(name.into(), value.into());
    }

    /// The targeting key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A top-level attribute.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name)
    }
}
