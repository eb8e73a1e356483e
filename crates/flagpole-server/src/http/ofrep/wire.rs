//! OFREP's JSON: the request (read straight into a `flagpole_core::Context`) and the
//! response shapes, borrowing from the compiled snapshot so a response costs one
//! serialisation and no copies of flag values.

use std::fmt;

use axum::http::StatusCode;
use flagpole_core::{Attributes, Context};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserializer, Serialize};
use serde_json::Value;

use super::Failure;

/// `{"context": {"targetingKey": "user-1", ...attributes}}`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(example = json!({"context": {"targetingKey": "user-123", "country": "no", "plan": "pro"}}))]
pub(crate) struct EvaluationRequest {
    /// The evaluation context: `targetingKey` (used for individual targets and
    /// percentage rollouts) and any other attributes, which rules match against by name.
    #[schema(value_type = Object)]
    pub(crate) context: Context,
}

/// Parses a request body: malformed JSON is `PARSE_ERROR`, well-formed JSON of the wrong
/// shape (no `context`, a non-string `targetingKey`) is `INVALID_CONTEXT`.
pub(crate) fn parse_request(bytes: &[u8]) -> Result<EvaluationRequest, Failure> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = RequestVisitor
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    parsed.map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "INVALID_CONTEXT",
            _ => "PARSE_ERROR",
        };
        Failure::new(StatusCode::BAD_REQUEST, code, e.to_string())
    })
}

struct RequestVisitor;

impl<'de> DeserializeSeed<'de> for RequestVisitor {
    type Value = EvaluationRequest;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = EvaluationRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a `context` object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut context = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "context" {
                context = Some(map.next_value_seed(ContextVisitor)?);
            } else {
                // Unknown members are ignored, so newer clients keep working.
                map.next_value::<IgnoredAny>()?;
            }
        }
        let context = context.ok_or_else(|| de::Error::missing_field("context"))?;
        Ok(EvaluationRequest { context })
    }
}

/// Reads an OFREP context directly into a [`Context`]: `targetingKey` becomes the key, every
/// other member an attribute (no intermediate map).
struct ContextVisitor;

impl<'de> DeserializeSeed<'de> for ContextVisitor {
    type Value = Context;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ContextVisitor {
    type Value = Context;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a context object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut key = String::new();
        let mut attributes = Attributes::default();
        while let Some(name) = map.next_key::<String>()? {
            if name == "targetingKey" {
                // `null` is treated like an absent key.
                key = map
                    .next_value::<Option<String>>()
                    .map_err(|e| de::Error::custom(format!("targetingKey: {e}")))?
                    .unwrap_or_default();
            } else {
                let value: Value = map.next_value()?;
                attributes.insert(name, value);
            }
        }
        Ok(Context { key, attributes })
    }
}

/// A successful evaluation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"key": "new-checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on",
    "metadata": {"flagpoleReason": "RULE_MATCH", "ruleId": "nordics", "ruleIndex": 0, "environmentVersion": 42}}))]
pub(crate) struct EvaluationSuccess<'s> {
    /// The flag key.
    pub(crate) key: &'s str,
    /// The served value (boolean, string, number or JSON, per the flag's kind).
    #[schema(value_type = Object)]
    pub(crate) value: &'s Value,
    /// `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DISABLED` or `DEFAULT`.
    pub(crate) reason: &'static str,
    /// Key of the served variant.
    pub(crate) variant: &'s str,
    /// Flagpole's own explanation.
    pub(crate) metadata: FlagMetadata<'s>,
}

/// Flagpole-specific details of an evaluation (OFREP metadata values are scalars).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FlagMetadata<'s> {
    /// Flagpole's reason: `OFF`, `TARGET_MATCH`, `RULE_MATCH`, `PREREQUISITE_FAILED`,
    /// `FALLTHROUGH`.
    pub(crate) flagpole_reason: &'static str,
    /// Id of the matching rule, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule_id: Option<&'s str>,
    /// Position of the matching rule, from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule_index: Option<usize>,
    /// Key of the prerequisite flag that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prerequisite: Option<&'s str>,
    /// The environment's data version the evaluation used.
    pub(crate) environment_version: i64,
}

/// A failed evaluation of one flag.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"key": "no-such-flag", "errorCode": "FLAG_NOT_FOUND",
    "errorDetails": "flag `no-such-flag` was not found in this environment"}))]
pub(crate) struct EvaluationFailure {
    /// The flag key.
    pub(crate) key: String,
    /// `FLAG_NOT_FOUND`, `PARSE_ERROR`, `TARGETING_KEY_MISSING`, `INVALID_CONTEXT` or
    /// `GENERAL`.
    pub(crate) error_code: &'static str,
    /// What went wrong, for people.
    pub(crate) error_details: String,
}

/// One flag of a bulk response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum BulkItem<'s> {
    /// Evaluated.
    Success(EvaluationSuccess<'s>),
    /// Could not be evaluated for this context.
    Failure(EvaluationFailure),
}

/// Every flag of the environment, evaluated for one context.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BulkEvaluationSuccess<'s> {
    /// One entry per live flag.
    pub(crate) flags: Vec<BulkItem<'s>>,
    /// About the flag set as a whole.
    pub(crate) metadata: BulkMetadata,
}

/// Metadata of a bulk response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkMetadata {
    /// The environment's data version the evaluations used.
    pub(crate) environment_version: i64,
}

/// The bulk request as a whole failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkEvaluationFailure {
    /// `PARSE_ERROR`, `INVALID_CONTEXT` or `GENERAL`.
    pub(crate) error_code: &'static str,
    /// What went wrong, for people.
    pub(crate) error_details: String,
}
