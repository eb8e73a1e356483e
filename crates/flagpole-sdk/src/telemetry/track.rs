//! `track`: turning a call into a [`TrackedEvent`], refused at the call when the server
//! would refuse it, so a bad event fails where it is written rather than in a batch later.

use flagpole_core::Context;
use flagpole_core::wire::{TelemetryBatch, TrackedEvent};
use serde_json::{Map, Value};

/// Why [`crate::Client::track`] refused an event. Nothing was buffered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// The value is NaN or infinite; the server only stores finite numbers.
    #[error("tracked value must be a finite number, got {0}")]
    NonFiniteValue(f64),
    /// The name, the context key or the properties break the batch limits
    /// (`flagpole_core::wire::TelemetryBatch::validate`).
    #[error("invalid tracked event: {field}: {message}")]
    Invalid {
        /// `name`, `context_key` or `properties`.
        field: String,
        /// What is wrong, for people.
        message: String,
    },
}

/// Builds the event and checks it with the very rules the server applies.
pub(crate) fn event(
    name: &str,
    ctx: &Context,
    value: Option<f64>,
    properties: Map<String, Value>,
    now_ms: i64,
) -> Result<TrackedEvent, TrackError> {
    if let Some(v) = value.filter(|v| !v.is_finite()) {
        return Err(TrackError::NonFiniteValue(v));
    }
    // One event in a batch of its own, validated by the wire module: the SDK cannot drift
    // from what the server checks. The id only has to be well-formed here.
    let mut batch = TelemetryBatch {
        id: uuid::Uuid::nil().to_string(),
        events: vec![TrackedEvent {
            name: name.to_owned(),
            context_key: ctx.key.clone(),
            value,
            properties,
            at_ms: now_ms,
        }],
        ..TelemetryBatch::default()
    };
    if let Err(error) = batch.validate(now_ms) {
        let field = error
            .field
            .strip_prefix("events[0].")
            .unwrap_or(&error.field)
            .to_owned();
        return Err(TrackError::Invalid {
            field,
            message: error.message,
        });
    }
    Ok(batch.events.pop().expect("the event just put there"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagpole_core::wire::{MAX_EVENT_PROPERTIES, MAX_NAME_LEN};

    const NOW: i64 = 1_800_000_000_000;

    fn field(result: Result<TrackedEvent, TrackError>) -> String {
        match result.unwrap_err() {
            TrackError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_good_event_is_built() {
        let mut props = Map::new();
        props.insert("plan".into(), "pro".into());
        let e = event("checkout", &Context::new("u1"), Some(12.5), props, NOW).unwrap();
        assert_eq!(
            (e.name.as_str(), e.context_key.as_str(), e.value, e.at_ms),
            ("checkout", "u1", Some(12.5), NOW)
        );
        assert_eq!(e.properties["plan"], "pro");
    }

    #[test]
    fn non_finite_values_are_refused() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = event("x", &Context::new("u1"), Some(v), Map::new(), NOW).unwrap_err();
            assert!(matches!(err, TrackError::NonFiniteValue(_)), "{v}: {err}");
        }
    }

    #[test]
    fn names_keys_and_properties_follow_the_batch_rules() {
        let ctx = Context::new("u1");
        assert_eq!(field(event("", &ctx, None, Map::new(), NOW)), "name");
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(field(event(&long, &ctx, None, Map::new(), NOW)), "name");
        assert_eq!(
            field(event("x", &Context::new(""), None, Map::new(), NOW)),
            "context_key"
        );
        let many: Map<String, Value> = (0..=MAX_EVENT_PROPERTIES)
            .map(|i| (format!("p{i}"), Value::from(i)))
            .collect();
        assert_eq!(field(event("x", &ctx, None, many, NOW)), "properties");
        let name = "x".repeat(MAX_NAME_LEN);
        assert!(
            event(&name, &ctx, None, Map::new(), NOW).is_ok(),
            "at the limit"
        );
    }
}
