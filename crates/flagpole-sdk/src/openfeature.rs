//! An [OpenFeature](https://openfeature.dev) provider backed by a [`Client`] (cargo feature
//! `openfeature`, crate `open-feature` 0.3).
//!
//! Evaluation goes through the same lock-free snapshot as the client's own calls; only the
//! conversion of the OpenFeature context and of results costs allocations. Flagpole's
//! reasons map to OpenFeature's as follows, and the original reason is kept in the flag
//! metadata under `reason` (with `rule_id`, `rule_index`, `prerequisite` when they apply):
//!
//! | Flagpole | OpenFeature |
//! |---|---|
//! | `OFF` | `DISABLED` |
//! | `TARGET_MATCH`, `RULE_MATCH` | `TARGETING_MATCH` (`SPLIT` if a rollout decided) |
//! | `FALLTHROUGH` | `DEFAULT` (`SPLIT` if a rollout decided) |
//! | `PREREQUISITE_FAILED` | `DEFAULT` |
//! | `ERROR` | an error: `FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `TARGETING_KEY_MISSING` (or `INVALID_CONTEXT` when another bucketing attribute is missing), `PROVIDER_NOT_READY`, or `GENERAL` |
//!
//! **Status**: `READY` with flags from the server and the stream connected; `STALE` while
//! flags are served from the disk cache or the connection is down; `NOT_READY` before any
//! flags; `ERROR` when the server rejected the SDK key (invalid or revoked), whatever the
//! flags, since reconnecting cannot fix it. The `open-feature` 0.3 crate has no provider
//! events and its `ERROR` status carries no message, so evaluations say it: without flags
//! they fail with `PROVIDER_NOT_READY` and the message "SDK key rejected: invalid or
//! revoked" ([`crate::KEY_REJECTED`]). Flags received before the key was revoked are still
//! served (an application keeps its last known flags rather than falling back to its code
//! defaults), and [`Client::status`] says the same in words.
//!
//! **Tracking** (OpenFeature spec, section 6): the `open-feature` 0.3 crate's
//! `FeatureProvider` has no `track`, so [`FlagpoleProvider::track`] offers it on the
//! provider, taking the spec's `(name, context, details{value, fields})` and recording a
//! Flagpole tracked event (the context's targeting key, the value, the fields as
//! properties).
//!
//! **OpenTelemetry**: [`otel`] names evaluation data after the OpenTelemetry
//! feature-flag semantic conventions, and [`evaluation_attributes`] turns an OpenFeature
//! `EvaluationDetails` into those attributes, for a span event or a log record. The SDK
//! does not depend on OpenTelemetry itself and emits nothing on its own.

use std::collections::HashMap;
use std::time::Duration;

use flagpole_core::{Context, Detail, ErrorKind, Reason};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationDetails, EvaluationError,
    EvaluationErrorCode, EvaluationReason, EvaluationResult, FlagMetadata, StructValue,
    Value as OfValue, async_trait,
};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::shared::{ConnectionState, KEY_REJECTED};
use crate::telemetry::TrackError;

/// The provider's name in OpenFeature metadata.
pub const PROVIDER_NAME: &str = "flagpole";

/// A `FeatureProvider` that evaluates with a Flagpole [`Client`].
#[derive(Debug)]
pub struct FlagpoleProvider {
    client: Client,
    metadata: ProviderMetadata,
    init_timeout: Duration,
}

impl FlagpoleProvider {
    /// A provider over `client`. `initialize` waits up to 5 s for the first flags.
    pub fn new(client: Client) -> Self {
        FlagpoleProvider {
            client,
            metadata: ProviderMetadata::new(PROVIDER_NAME),
            init_timeout: Duration::from_secs(5),
        }
    }

    /// How long `initialize` (called by `OpenFeature::set_provider`) waits for the flags.
    #[must_use]
    pub fn with_init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// OpenFeature tracking (spec section 6): records `name` for the context's targeting
    /// key with the details' value and fields, as [`Client::track`] does (and refused
    /// the same way: a non-finite value, an empty or over-long name or targeting key,
    /// more than 64 fields). Fields that have no JSON form (a float that is not finite, a
    /// struct of an unknown type) are left out.
    pub fn track(
        &self,
        name: &str,
        context: &EvaluationContext,
        details: TrackingEventDetails,
    ) -> Result<(), TrackError> {
        let ctx = to_context(context);
        let properties: Map<String, Value> = details
            .fields
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), field_to_json(v)?)))
            .collect();
        self.client.track(name, &ctx, details.value, properties)
    }
}

/// OpenFeature's tracking event details (spec section 6.2), which the `open-feature` 0.3
/// crate does not define: an optional numeric value and custom fields.
#[derive(Debug, Clone, Default)]
pub struct TrackingEventDetails {
    /// A number the event carries (revenue, latency); must be finite.
    pub value: Option<f64>,
    /// Custom fields, sent as the event's properties.
    pub fields: HashMap<String, EvaluationContextFieldValue>,
}

impl TrackingEventDetails {
    /// Details with a value and no fields.
    pub fn with_value(value: f64) -> Self {
        TrackingEventDetails {
            value: Some(value),
            fields: HashMap::new(),
        }
    }

    /// Adds a custom field.
    #[must_use]
    pub fn with_field(
        mut self,
        name: impl Into<String>,
        value: impl Into<EvaluationContextFieldValue>,
    ) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }
}

/// Attribute names of the OpenTelemetry semantic conventions for feature flags
/// (`feature_flag.*`, the `feature_flag.evaluation` event), as far as Flagpole knows them.
pub mod otel {
    /// The flag's key.
    pub const KEY: &str = "feature_flag.key";
    /// The served variant's key.
    pub const RESULT_VARIANT: &str = "feature_flag.result.variant";
    /// Why it was served, in lower case (`targeting_match`, `split`, `disabled`, ...).
    pub const RESULT_REASON: &str = "feature_flag.result.reason";
    /// The context's targeting key.
    pub const CONTEXT_ID: &str = "feature_flag.context.id";
    /// The provider's name: `flagpole`.
    pub const PROVIDER_NAME: &str = "feature_flag.provider.name";
    /// The name of the event an evaluation is recorded as.
    pub const EVALUATION_EVENT: &str = "feature_flag.evaluation";
}

/// The OpenTelemetry attributes of one evaluation: the flag key and provider name
/// always, the variant and reason when the details have them, the context id when the
/// context has a targeting key. Pass them to a span event named
/// [`otel::EVALUATION_EVENT`] or to a log record.
pub fn evaluation_attributes<T>(
    details: &EvaluationDetails<T>,
    context: &EvaluationContext,
) -> Vec<(&'static str, String)> {
    let mut attributes = vec![
        (otel::KEY, details.flag_key.clone()),
        (otel::PROVIDER_NAME, PROVIDER_NAME.to_owned()),
    ];
    if let Some(variant) = &details.variant {
        attributes.push((otel::RESULT_VARIANT, variant.clone()));
    }
    if let Some(reason) = &details.reason {
        attributes.push((otel::RESULT_REASON, otel_reason(reason)));
    }
    if let Some(key) = context.targeting_key.as_ref().filter(|k| !k.is_empty()) {
        attributes.push((otel::CONTEXT_ID, key.clone()));
    }
    attributes
}

/// The conventions' reason values are OpenFeature's reasons in lower case.
fn otel_reason(reason: &EvaluationReason) -> String {
    match reason {
        EvaluationReason::Static => "static".into(),
        EvaluationReason::Default => "default".into(),
        EvaluationReason::TargetingMatch => "targeting_match".into(),
        EvaluationReason::Split => "split".into(),
        EvaluationReason::Cached => "cached".into(),
        EvaluationReason::Disabled => "disabled".into(),
        EvaluationReason::Unknown => "unknown".into(),
        EvaluationReason::Error => "error".into(),
        EvaluationReason::Other(other) => other.to_lowercase(),
    }
}

#[async_trait]
impl FeatureProvider for FlagpoleProvider {
    /// Waits for the client's first flags, for at most the init timeout. OpenFeature's
    /// `initialize` cannot fail; a client that is not ready yet resolves with
    /// `PROVIDER_NOT_READY` errors until it is, and [`Self::status`] reports it.
    async fn initialize(&mut self, _context: &EvaluationContext) {
        if let Err(error) = self.client.wait_until_ready(self.init_timeout).await {
            tracing::warn!(%error, "flagpole: OpenFeature provider initialised before the flags arrived");
        }
    }

    /// `ERROR` for a rejected SDK key; otherwise from the flags and the connection (see
    /// the module documentation).
    fn status(&self) -> ProviderStatus {
        let status = self.client.status();
        if status.connection == ConnectionState::Rejected {
            ProviderStatus::Error
        } else if status.is_ready() && !status.is_stale() {
            ProviderStatus::Ready
        } else if status.has_flags() {
            ProviderStatus::STALE
        } else {
            ProviderStatus::NotReady
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let ctx = to_context(context);
        let flags = self.client.flags();
        self.resolve(flags.bool_detail(flag_key, &ctx, false), &ctx, Ok)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        let ctx = to_context(context);
        let flags = self.client.flags();
        self.resolve(flags.number_detail(flag_key, &ctx, 0.0), &ctx, |n| {
            // Flagpole numbers are f64: an integral value within i64's range is an int.
            if n.fract() == 0.0 && n >= -(2f64.powi(63)) && n < 2f64.powi(63) {
                Ok(n as i64)
            } else {
                Err(mismatch("the flag's value is not an integer"))
            }
        })
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        let ctx = to_context(context);
        let flags = self.client.flags();
        self.resolve(flags.number_detail(flag_key, &ctx, 0.0), &ctx, Ok)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let ctx = to_context(context);
        let flags = self.client.flags();
        self.resolve(flags.string_detail(flag_key, &ctx, ""), &ctx, |s| {
            Ok(s.to_owned())
        })
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let ctx = to_context(context);
        let flags = self.client.flags();
        let null = Value::Null;
        self.resolve(
            flags.json_detail(flag_key, &ctx, &null),
            &ctx,
            |v| match v {
                Value::Object(_) => match to_of_value(v) {
                    Some(OfValue::Struct(s)) => Ok(s),
                    _ => Err(mismatch("the flag's value is not an object")),
                },
                _ => Err(mismatch("the flag's value is not an object")),
            },
        )
    }
}

/// Turns an OpenFeature context into a Flagpole one: the targeting key, and custom fields
/// as attributes. Date-times become epoch milliseconds (what `before`/`after` compare);
/// struct fields are accepted as `serde_json::Value`, `StructValue` or OpenFeature `Value`.
pub fn to_context(context: &EvaluationContext) -> Context {
    let mut ctx = Context::new(context.targeting_key.clone().unwrap_or_default());
    for (name, value) in &context.custom_fields {
        if let Some(value) = field_to_json(value) {
            ctx.set(name.clone(), value);
        }
    }
    ctx
}

fn field_to_json(value: &EvaluationContextFieldValue) -> Option<Value> {
    Some(match value {
        EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Value::from(*i),
        EvaluationContextFieldValue::Float(f) => Value::Number(serde_json::Number::from_f64(*f)?),
        EvaluationContextFieldValue::String(s) => Value::String(s.clone()),
        EvaluationContextFieldValue::DateTime(t) => {
            Value::from(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()?)
        }
        EvaluationContextFieldValue::Struct(any) => {
            if let Some(json) = any.downcast_ref::<Value>() {
                json.clone()
            } else if let Some(s) = any.downcast_ref::<StructValue>() {
                struct_to_json(s)
            } else {
                of_to_json(any.downcast_ref::<OfValue>()?)
            }
        }
    })
}

fn struct_to_json(s: &StructValue) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), of_to_json(v)))
            .collect(),
    )
}

fn of_to_json(value: &OfValue) -> Value {
    match value {
        OfValue::Bool(b) => Value::Bool(*b),
        OfValue::Int(i) => Value::from(*i),
        OfValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        OfValue::String(s) => Value::String(s.clone()),
        OfValue::Array(items) => Value::Array(items.iter().map(of_to_json).collect()),
        OfValue::Struct(s) => struct_to_json(s),
    }
}

/// JSON to an OpenFeature value. OpenFeature has no null: null object fields are left
/// out and null array items skipped.
fn to_of_value(value: &Value) -> Option<OfValue> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => OfValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => OfValue::Int(i),
            None => OfValue::Float(n.as_f64()?),
        },
        Value::String(s) => OfValue::String(s.clone()),
        Value::Array(items) => OfValue::Array(items.iter().filter_map(to_of_value).collect()),
        Value::Object(fields) => OfValue::Struct(StructValue {
            fields: fields
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), to_of_value(v)?)))
                .collect(),
        }),
    })
}

impl FlagpoleProvider {
    fn resolve<T, U>(
        &self,
        detail: Detail<'_, T>,
        ctx: &Context,
        convert: impl FnOnce(T) -> Result<U, EvaluationError>,
    ) -> EvaluationResult<ResolutionDetails<U>> {
        if let Reason::Error { error } = detail.reason {
            let mut error = evaluation_error(error, ctx);
            // Without flags, say why they never came when the reason is known: the status
            // alone (`ERROR`) carries no message.
            if error.code == EvaluationErrorCode::ProviderNotReady
                && self.client.status().connection == ConnectionState::Rejected
            {
                error.message = Some(KEY_REJECTED.to_owned());
            }
            return Err(error);
        }
        Ok(ResolutionDetails {
            value: convert(detail.value)?,
            variant: detail.variant.map(str::to_owned),
            reason: Some(of_reason(&detail.reason)),
            flag_metadata: Some(metadata(&detail.reason)),
        })
    }
}

/// Flagpole's reason as OpenFeature's (see the module table).
pub fn of_reason(reason: &Reason<'_>) -> EvaluationReason {
    match reason {
        Reason::Off => EvaluationReason::Disabled,
        Reason::TargetMatch => EvaluationReason::TargetingMatch,
        Reason::RuleMatch {
            in_rollout: true, ..
        }
        | Reason::Fallthrough { in_rollout: true } => EvaluationReason::Split,
        Reason::RuleMatch { .. } => EvaluationReason::TargetingMatch,
        Reason::Fallthrough { .. } | Reason::PrerequisiteFailed { .. } => EvaluationReason::Default,
        Reason::Error { .. } => EvaluationReason::Error,
    }
}

fn metadata(reason: &Reason<'_>) -> FlagMetadata {
    let meta = FlagMetadata::default().with_value("reason", reason.code().to_owned());
    match reason {
        Reason::RuleMatch {
            rule_index,
            rule_id,
            ..
        } => meta
            .with_value("rule_id", (*rule_id).to_owned())
            .with_value("rule_index", i64::try_from(*rule_index).unwrap_or(i64::MAX)),
        Reason::PrerequisiteFailed { prerequisite } => {
            meta.with_value("prerequisite", (*prerequisite).to_owned())
        }
        _ => meta,
    }
}

fn evaluation_error(error: ErrorKind, ctx: &Context) -> EvaluationError {
    let code = match error {
        ErrorKind::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorKind::WrongType => EvaluationErrorCode::TypeMismatch,
        ErrorKind::MissingBucketKey if ctx.key.is_empty() => {
            EvaluationErrorCode::TargetingKeyMissing
        }
        ErrorKind::MissingBucketKey => EvaluationErrorCode::InvalidContext,
        ErrorKind::NotReady => EvaluationErrorCode::ProviderNotReady,
        ErrorKind::InvalidFlag => EvaluationErrorCode::General(error.code().to_owned()),
    };
    EvaluationError {
        code,
        message: Some(error.code().to_owned()),
    }
}

fn mismatch(message: &str) -> EvaluationError {
    EvaluationError {
        code: EvaluationErrorCode::TypeMismatch,
        message: Some(message.to_owned()),
    }
}
