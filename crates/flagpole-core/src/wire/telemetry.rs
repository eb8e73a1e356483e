//! What SDKs send back: evaluation counts, exposures and tracked events (docs/protocol.md,
//! "Telemetry").
//!
//! One batch type travels both ways in: as a [`super::ClientMessage::Telemetry`] frame on
//! the stream, and as the body of `POST /sdk/v1/events` for clients without a stream. The
//! limits and [`TelemetryBatch::validate`] live here so that the SDK builds batches the
//! server accepts, and the server refuses the same things whichever way a batch came.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest encoded batch a server accepts, in bytes (HTTP 413 / `too_large` beyond).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Most items (counts + exposures + events) in one batch (HTTP 413 / `too_large` beyond).
pub const MAX_BATCH_ITEMS: usize = 5_000;

/// Longest flag key, event name, context key, SDK or application name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Most properties on one tracked event.
pub const MAX_EVENT_PROPERTIES: usize = 64;

/// How far in the past a timestamp may be: an SDK that buffered through an outage still
/// delivers, a clock that is days wrong does not write into closed rollups.
pub const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// How far in the future a timestamp may be (clock skew).
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// One delivery of telemetry. Counters merge, so a batch that cannot be delivered is kept
/// and merged into the next; its `id` makes redelivery harmless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetryBatch {
    /// Idempotency id, a UUID (the SDK uses v7, so ids sort by time). The server remembers
    /// ids for at least 24 hours: a batch delivered again counts once.
    pub id: String,
    /// SDK name and version (`flagpole-rust/0.1.0`).
    #[serde(default)]
    pub sdk: String,
    /// The application's name, as configured in the SDK (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app: String,
    /// The application's version (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    /// Evaluation counters over a window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<EvalCount>,
    /// First exposures of a context to a flag's variant, for flags marked
    /// [`crate::model::FlagState::exposures`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposures: Vec<Exposure>,
    /// Events from `track`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<TrackedEvent>,
    /// Outcomes of flag-controlled code paths (`guard`, `shadow`) over a window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<OutcomeCount>,
    /// Exposures and events the SDK dropped because its buffer was full, since its last
    /// acknowledged batch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

/// How many evaluations of one flag gave one outcome in a window. Identified by
/// (flag, flag version, variant, reason, rule, error); the server adds counts with the same
/// identity together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalCount {
    /// Flag key as asked for (it may not exist: `FLAG_NOT_FOUND`).
    pub flag: String,
    /// The flag's version the evaluation ran on (0 when unknown).
    #[serde(default)]
    pub flag_version: u64,
    /// Served variant; absent on error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// [`crate::Reason::code`] (`RULE_MATCH`, `FALLTHROUGH`, ...).
    pub reason: String,
    /// For `RULE_MATCH`, the rule's id (its position when it has none, as `#3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For `ERROR`, [`crate::ErrorKind::code`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Window start, Unix milliseconds.
    pub start_ms: i64,
    /// Window end (exclusive), Unix milliseconds.
    pub end_ms: i64,
    /// Evaluations in the window; never 0.
    pub count: u64,
}

/// Which code path an [`OutcomeCount`] is about.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The code path `guard` ran for the variant evaluated.
    #[default]
    Guard,
    /// `shadow`'s current path, the one whose result the user gets.
    ShadowCurrent,
    /// `shadow`'s candidate, run beside it, its result only compared.
    ShadowNew,
    /// A kind this version does not know; refused by [`TelemetryBatch::validate`].
    #[serde(other)]
    Unknown,
}

impl OutcomeKind {
    /// The wire name (`guard`, `shadow_current`, `shadow_new`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Guard => "guard",
            OutcomeKind::ShadowCurrent => "shadow_current",
            OutcomeKind::ShadowNew => "shadow_new",
            OutcomeKind::Unknown => "unknown",
        }
    }

    /// The kind of a wire name, `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        [
            OutcomeKind::Guard,
            OutcomeKind::ShadowCurrent,
            OutcomeKind::ShadowNew,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// What one flag-controlled code path did for one variant in a window: how often it ran,
/// failed and (for a shadow candidate) disagreed with the current path, and how long it
/// took, as a sum and a [`super::latency`] histogram. Identified by (flag, flag version,
/// variant, kind); the server adds outcomes with the same identity together, bucket by
/// bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeCount {
    /// Flag key as asked for.
    pub flag: String,
    /// The flag's version the evaluation ran on (0 when unknown).
    #[serde(default)]
    pub flag_version: u64,
    /// The variant evaluated (`""` when the evaluation failed and the default was used).
    #[serde(default)]
    pub variant: String,
    /// Which path.
    pub kind: OutcomeKind,
    /// Window start, Unix milliseconds.
    pub start_ms: i64,
    /// Window end (exclusive), Unix milliseconds.
    pub end_ms: i64,
    /// Runs of the path (finished or timed out).
    #[serde(default)]
    pub calls: u64,
    /// Runs that returned an error (or, for `shadow_new`, timed out).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// `shadow_new` only: runs whose result differed from the current path's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mismatches: u64,
    /// `shadow_new` only: runs stopped at the time limit (also counted in `errors`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeouts: u64,
    /// `shadow_new` only: candidates not run because the concurrency bound was full (not
    /// counted in `calls`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// Sum of the runs' durations, microseconds.
    #[serde(default)]
    pub duration_us: u64,
    /// The runs' durations as (bucket, count) pairs of [`super::latency`], buckets
    /// increasing, counts adding up to `calls`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<(u32, u64)>,
}

/// A context saw a flag's variant (sent once per flag, variant and context key per hour).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// Flag key.
    pub flag: String,
    /// The flag's version.
    #[serde(default)]
    pub flag_version: u64,
    /// The variant served.
    pub variant: String,
    /// The context's key (the experiment unit).
    pub context_key: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

/// An event from `track(name, context, value, properties)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackedEvent {
    /// Event name (`checkout_completed`).
    pub name: String,
    /// The context's key.
    pub context_key: String,
    /// A finite number (revenue, latency), if the event has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Free-form properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

/// Why a batch was refused: the field (`events[3].at_ms`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BatchError {
    /// Path of the offending field in the batch.
    pub field: String,
    /// For people.
    pub message: String,
    /// True when the batch is too big (HTTP 413), rather than malformed (HTTP 422).
    pub too_large: bool,
}

impl BatchError {
    fn invalid(field: String, message: impl Into<String>) -> Self {
        BatchError {
            field,
            message: message.into(),
            too_large: false,
        }
    }
}

impl TelemetryBatch {
    /// Items in the batch, as limited by [`MAX_BATCH_ITEMS`].
    pub fn len(&self) -> usize {
        self.counts.len() + self.exposures.len() + self.events.len() + self.outcomes.len()
    }

    /// True when the batch carries nothing (not even a dropped count).
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.dropped == 0
    }

    /// Checks everything the server checks except the size in bytes (which it sees before
    /// parsing), with `now_ms` the receiver's clock. The first problem found is returned.
    pub fn validate(&self, now_ms: i64) -> Result<(), BatchError> {
        if self.len() > MAX_BATCH_ITEMS {
            return Err(BatchError {
                field: "counts".into(),
                message: format!(
                    "{} items (counts, exposures, events and outcomes) is over the limit of {MAX_BATCH_ITEMS}",
                    self.len()
                ),
                too_large: true,
            });
        }
        if !is_uuid(&self.id) {
            return Err(BatchError::invalid(
                "id".into(),
                "must be a UUID (for example a UUIDv7)",
            ));
        }
        name("sdk", &self.sdk, true)?;
        name("app", &self.app, true)?;
        name("app_version", &self.app_version, true)?;
        let time = |field: String, at: i64| timestamp(field, at, now_ms);
        for (i, c) in self.counts.iter().enumerate() {
            let at = |f: &str| format!("counts[{i}].{f}");
            name(&at("flag"), &c.flag, false)?;
            name(&at("reason"), &c.reason, false)?;
            if let Some(v) = &c.variant {
                name(&at("variant"), v, false)?;
            }
            if let Some(r) = &c.rule {
                name(&at("rule"), r, true)?;
            }
            if let Some(e) = &c.error {
                name(&at("error"), e, false)?;
            }
            time(at("start_ms"), c.start_ms)?;
            time(at("end_ms"), c.end_ms)?;
            if c.end_ms < c.start_ms {
                return Err(BatchError::invalid(at("end_ms"), "is before start_ms"));
            }
            if c.count == 0 {
                return Err(BatchError::invalid(at("count"), "must be at least 1"));
            }
        }
        for (i, e) in self.exposures.iter().enumerate() {
            let at = |f: &str| format!("exposures[{i}].{f}");
            name(&at("flag"), &e.flag, false)?;
            name(&at("variant"), &e.variant, false)?;
            name(&at("context_key"), &e.context_key, false)?;
            time(at("at_ms"), e.at_ms)?;
        }
        for (i, e) in self.events.iter().enumerate() {
            let at = |f: &str| format!("events[{i}].{f}");
            name(&at("name"), &e.name, false)?;
            name(&at("context_key"), &e.context_key, false)?;
            if e.value.is_some_and(|v| !v.is_finite()) {
                return Err(BatchError::invalid(at("value"), "must be a finite number"));
            }
            if e.properties.len() > MAX_EVENT_PROPERTIES {
                return Err(BatchError::invalid(
                    at("properties"),
                    format!("at most {MAX_EVENT_PROPERTIES} properties"),
                ));
            }
            time(at("at_ms"), e.at_ms)?;
        }
        for (i, o) in self.outcomes.iter().enumerate() {
            validate_outcome(i, o, now_ms)?;
        }
        Ok(())
    }
}

fn validate_outcome(i: usize, o: &OutcomeCount, now_ms: i64) -> Result<(), BatchError> {
    let at = |f: &str| format!("outcomes[{i}].{f}");
    name(&at("flag"), &o.flag, false)?;
    name(&at("variant"), &o.variant, true)?;
    if o.kind == OutcomeKind::Unknown {
        return Err(BatchError::invalid(
            at("kind"),
            "must be guard, shadow_current or shadow_new",
        ));
    }
    timestamp(at("start_ms"), o.start_ms, now_ms)?;
    timestamp(at("end_ms"), o.end_ms, now_ms)?;
    if o.end_ms < o.start_ms {
        return Err(BatchError::invalid(at("end_ms"), "is before start_ms"));
    }
    if o.calls == 0 && o.skipped == 0 {
        return Err(BatchError::invalid(
            at("calls"),
            "must be at least 1 (or `skipped` must be)",
        ));
    }
    if o.errors > o.calls {
        return Err(BatchError::invalid(at("errors"), "is more than `calls`"));
    }
    if o.kind != OutcomeKind::ShadowNew {
        for (field, n) in [
            ("mismatches", o.mismatches),
            ("timeouts", o.timeouts),
            ("skipped", o.skipped),
        ] {
            if n != 0 {
                return Err(BatchError::invalid(
                    at(field),
                    "is for kind shadow_new only",
                ));
            }
        }
    }
    if o.mismatches > o.calls {
        return Err(BatchError::invalid(
            at("mismatches"),
            "is more than `calls`",
        ));
    }
    if o.timeouts > o.errors {
        return Err(BatchError::invalid(at("timeouts"), "is more than `errors`"));
    }
    let mut previous: Option<u32> = None;
    let mut total: u64 = 0;
    for &(bucket, n) in &o.latency {
        if bucket >= super::latency::BUCKETS || previous.is_some_and(|p| p >= bucket) {
            return Err(BatchError::invalid(
                at("latency"),
                format!(
                    "buckets must increase and be below {}",
                    super::latency::BUCKETS
                ),
            ));
        }
        if n == 0 {
            return Err(BatchError::invalid(
                at("latency"),
                "counts must be at least 1",
            ));
        }
        previous = Some(bucket);
        total = total.saturating_add(n);
    }
    if total != o.calls {
        return Err(BatchError::invalid(
            at("latency"),
            format!("counts add up to {total}, not `calls` ({})", o.calls),
        ));
    }
    Ok(())
}

fn name(field: &str, value: &str, may_be_empty: bool) -> Result<(), BatchError> {
    if value.is_empty() && !may_be_empty {
        return Err(BatchError::invalid(field.into(), "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(BatchError::invalid(
            field.into(),
            format!("longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    Ok(())
}

fn timestamp(field: String, at_ms: i64, now_ms: i64) -> Result<(), BatchError> {
    if at_ms > now_ms.saturating_add(MAX_SKEW_MS) {
        return Err(BatchError::invalid(
            field,
            "is more than 5 minutes in the future (check the clock)",
        ));
    }
    if at_ms < now_ms.saturating_sub(MAX_AGE_MS) {
        return Err(BatchError::invalid(
            field,
            "is more than 7 days in the past",
        ));
    }
    Ok(())
}

/// The textual UUID form, any version: 8-4-4-4-12 hexadecimal digits.
fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn batch() -> TelemetryBatch {
        TelemetryBatch {
            id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
            sdk: "flagpole-rust/0.1.0".into(),
            counts: vec![EvalCount {
                flag: "checkout".into(),
                flag_version: 3,
                variant: Some("on".into()),
                reason: "RULE_MATCH".into(),
                rule: Some("nordics".into()),
                start_ms: NOW - 10_000,
                end_ms: NOW,
                count: 41,
                ..EvalCount::default()
            }],
            exposures: vec![Exposure {
                flag: "checkout".into(),
                flag_version: 3,
                variant: "on".into(),
                context_key: "user-1".into(),
                at_ms: NOW - 5_000,
            }],
            events: vec![TrackedEvent {
                name: "checkout_completed".into(),
                context_key: "user-1".into(),
                value: Some(12.5),
                at_ms: NOW - 1_000,
                ..TrackedEvent::default()
            }],
            outcomes: vec![OutcomeCount {
                flag: "checkout".into(),
                flag_version: 3,
                variant: "on".into(),
                kind: OutcomeKind::ShadowNew,
                start_ms: NOW - 10_000,
                end_ms: NOW,
                calls: 10,
                errors: 2,
                mismatches: 1,
                timeouts: 1,
                skipped: 4,
                duration_us: 12_000,
                latency: vec![(30, 4), (41, 6)],
            }],
            ..TelemetryBatch::default()
        }
    }

    #[test]
    fn a_wellformed_batch_validates_and_round_trips() {
        let b = batch();
        assert_eq!(b.validate(NOW), Ok(()));
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<TelemetryBatch>(&text).unwrap(), b);
    }

    #[test]
    fn each_problem_names_its_field() {
        type Breakage = Box<dyn Fn(&mut TelemetryBatch)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("id", Box::new(|b| b.id = "not-a-uuid".into())),
            ("counts[0].flag", Box::new(|b| b.counts[0].flag.clear())),
            ("counts[0].count", Box::new(|b| b.counts[0].count = 0)),
            (
                "counts[0].end_ms",
                Box::new(|b| b.counts[0].end_ms = b.counts[0].start_ms - 1),
            ),
            (
                "exposures[0].at_ms",
                Box::new(|b| b.exposures[0].at_ms = NOW + MAX_SKEW_MS + 1),
            ),
            (
                "events[0].at_ms",
                Box::new(|b| b.events[0].at_ms = NOW - MAX_AGE_MS - 1),
            ),
            (
                "events[0].value",
                Box::new(|b| b.events[0].value = Some(f64::NAN)),
            ),
            (
                "outcomes[0].latency",
                Box::new(|b| b.outcomes[0].latency[1].1 = 5),
            ),
            (
                "outcomes[0].latency",
                Box::new(|b| b.outcomes[0].latency[1].0 = 30),
            ),
            (
                "outcomes[0].errors",
                Box::new(|b| b.outcomes[0].errors = 11),
            ),
            (
                "outcomes[0].kind",
                Box::new(|b| b.outcomes[0].kind = OutcomeKind::Unknown),
            ),
            (
                "outcomes[0].mismatches",
                Box::new(|b| b.outcomes[0].kind = OutcomeKind::Guard),
            ),
            ("outcomes[0].flag", Box::new(|b| b.outcomes[0].flag.clear())),
            (
                "events[0].name",
                Box::new(|b| b.events[0].name = "x".repeat(MAX_NAME_LEN + 1)),
            ),
        ];
        for (field, break_it) in cases {
            let mut b = batch();
            break_it(&mut b);
            let error = b.validate(NOW).unwrap_err();
            assert_eq!(error.field, field, "{error}");
            assert!(!error.too_large);
        }
    }

    #[test]
    fn an_unknown_outcome_kind_parses_and_is_refused_by_name() {
        let mut value = serde_json::to_value(batch()).unwrap();
        value["outcomes"][0]["kind"] = "shadow_sideways".into();
        let b: TelemetryBatch = serde_json::from_value(value).unwrap();
        assert_eq!(b.validate(NOW).unwrap_err().field, "outcomes[0].kind");
        let text = serde_json::to_string(&batch()).unwrap();
        assert!(text.contains(r#""kind":"shadow_new""#), "{text}");
        assert!(text.contains(r#""latency":[[30,4],[41,6]]"#), "{text}");
    }

    #[test]
    fn too_many_items_is_too_large() {
        let mut b = batch();
        b.events = vec![b.events[0].clone(); MAX_BATCH_ITEMS];
        assert!(b.validate(NOW).unwrap_err().too_large);
    }
}
