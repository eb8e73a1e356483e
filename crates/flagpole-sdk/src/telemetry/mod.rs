//! Telemetry: what the SDK reports back to the server (docs/protocol.md, "Telemetry").
//!
//! Three kinds of data travel in [`flagpole_core::wire::TelemetryBatch`]es:
//! evaluation counts (from `flagpole-core`'s counters, [`counts`]), exposures of flags the
//! server marks ([`exposure`]), and events from [`crate::Client::track`] ([`track`]).
//! Exposures and events wait in a bounded [`buffer`]; [`batch`] cuts them into batches
//! within the wire limits and keeps each until acknowledged; the [`task`] delivers them on
//! the stream ([`uplink`]) when the server announced it, else over [`http`].
//!
//! Switched off in the builder, none of this exists: no buffer, no task, and the
//! evaluation path checks one `Option`.

mod batch;
mod buffer;
mod counts;
mod exposure;
mod http;
mod outcomes;
mod task;
mod track;
mod uplink;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flagpole_core::Context;
use flagpole_core::wire::{Exposure, MAX_NAME_LEN};
use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use track::TrackError;

pub(crate) use buffer::Limits;
pub(crate) use counts::{Retired, SnapshotCounts};
pub(crate) use exposure::MarkedFlags;
pub(crate) use http::EventsEndpoint;
pub(crate) use outcomes::{Outcomes, Run};
pub(crate) use uplink::{Attached, Reply, Uplink};

use buffer::{Buffer, Pushed};
use exposure::{DEDUPE_CAPACITY, DEDUPE_SHARDS, DEDUPE_TTL, ExposureDedupe};

/// Default time between flushes (each drawn ±20% around it).
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default hard deadline of the final flush in `close()`, DNS and connect included.
pub(crate) const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

/// Telemetry's hooks into the state shared with the connection and the flags; inert
/// while telemetry is off.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Telemetry frames on the stream.
    pub(crate) uplink: Uplink,
    /// Replaced snapshots whose counts are not yet collected.
    pub(crate) retired: Retired,
    /// How many times the stream has connected: a key refused during one connection
    /// may work again on a later one.
    pub(crate) connections: tokio::sync::watch::Sender<u64>,
}

/// The builder's telemetry settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) enabled: bool,
    pub(crate) limits: Limits,
    pub(crate) flush_interval: Duration,
    pub(crate) close_deadline: Duration,
    pub(crate) app: String,
    pub(crate) app_version: String,
    /// `shadow`'s bound on candidates running at once, and their time limit.
    pub(crate) shadow_concurrency: usize,
    pub(crate) shadow_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            limits: Limits::default(),
            flush_interval: FLUSH_INTERVAL,
            close_deadline: CLOSE_DEADLINE,
            app: String::new(),
            app_version: String::new(),
            shadow_concurrency: crate::client::SHADOW_CONCURRENCY,
            shadow_timeout: crate::client::SHADOW_TIMEOUT,
        }
    }
}

/// What a delivery attempt did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Acknowledged: stored.
    Stored,
    /// Not stored, the server is busy: retry after this.
    Busy(Duration),
    /// Over the server's limits: split.
    TooLarge,
    /// Refused for good (the message says why): drop.
    Invalid(String),
    /// The SDK key was refused: stop sending.
    Unauthorized,
    /// The server has no telemetry endpoint (404/405: a server older than telemetry, or a
    /// proxy that does not route it). Nothing was stored; asked again much later.
    Unsupported(String),
    /// Certainly not stored (nothing was written): the batch may still change.
    NotSent(String),
    /// Written but not answered: maybe stored, so resent unchanged under its id.
    NoAnswer(String),
}

/// The recording side, called from evaluations and `track`.
pub(crate) struct Recorder {
    /// A std mutex: held for a push or a take, never across an await.
    buffer: Mutex<Buffer>,
    dedupe: ExposureDedupe,
    /// Wakes the task when the buffer reaches its flush threshold.
    flush: Notify,
    /// What `guard` and `shadow` recorded since the last flush.
    pub(crate) outcomes: Outcomes,
}

impl Recorder {
    fn new(limits: Limits) -> Recorder {
        Recorder {
            buffer: Mutex::new(Buffer::new(limits)),
            dedupe: ExposureDedupe::new(DEDUPE_CAPACITY, DEDUPE_TTL, DEDUPE_SHARDS),
            flush: Notify::new(),
            outcomes: Outcomes::default(),
        }
    }

    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        // Poisoning would need a panic inside `Buffer`'s own small methods; the buffer is
        // still consistent then, so keep going rather than panic in every evaluation.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An evaluation of a marked flag served `variant` to `context_key`: buffered the
    /// first time in an hour. Errors (no variant) and contexts without a usable key are
    /// not exposures.
    pub(crate) fn expose(
        &self,
        flag: &str,
        version: u64,
        variant: Option<&str>,
        context_key: &str,
    ) {
        let Some(variant) = variant else { return };
        if context_key.is_empty() || context_key.len() > MAX_NAME_LEN {
            return;
        }
        if !self
            .dedupe
            .first(flag, variant, context_key, std::time::Instant::now())
        {
            return;
        }
        let exposure = Exposure {
            flag: flag.to_owned(),
            flag_version: version,
            variant: variant.to_owned(),
            context_key: context_key.to_owned(),
            at_ms: now_ms(),
        };
        let pushed = self.buffer().push_exposure(exposure);
        self.after_push(pushed);
    }

    /// `track`: validated, then buffered (or dropped and counted when the buffer is full).
    pub(crate) fn track(
        &self,
        name: &str,
        ctx: &Context,
        value: Option<f64>,
        properties: Map<String, Value>,
    ) -> Result<(), TrackError> {
        let event = track::event(name, ctx, value, properties, now_ms())?;
        let pushed = self.buffer().push_event(event);
        self.after_push(pushed);
        Ok(())
    }

    fn after_push(&self, pushed: Pushed) {
        if pushed == (Pushed::Kept { flush: true }) {
            self.flush.notify_one();
        }
    }
}

/// `track`'s checks without a recorder (telemetry off): the same errors either way.
pub(crate) fn check_event(
    name: &str,
    ctx: &Context,
    value: Option<f64>,
    properties: Map<String, Value>,
) -> Result<(), TrackError> {
    track::event(name, ctx, value, properties, now_ms()).map(drop)
}

/// A client's telemetry: the recorder and the task delivering what it records.
pub(crate) struct Telemetry {
    pub(crate) recorder: Arc<Recorder>,
    /// Where `shadow` runs its candidates.
    pub(crate) shadows: crate::client::Shadows,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Telemetry {
    /// Starts the task. `shutdown` is the client's: dropping the last handle stops the
    /// task too (after its final flush).
    pub(crate) fn start(
        settings: Settings,
        shared: Arc<crate::shared::Shared>,
        http: EventsEndpoint,
        shutdown: CancellationToken,
    ) -> Telemetry {
        let recorder = Arc::new(Recorder::new(settings.limits));
        let shadows =
            crate::client::Shadows::new(settings.shadow_concurrency, settings.shadow_timeout);
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let task = task::Task {
            outbox: batch::Outbox::new(crate::SDK_NAME, &settings.app, &settings.app_version),
            settings,
            recorder: recorder.clone(),
            counts: SnapshotCounts {
                shared: shared.clone(),
            },
            shared,
            http,
            window_start_ms: now_ms(),
            paused: None,
            not_before: None,
            unsupported_until: None,
            warned_unsupported: false,
        };
        tasks.spawn(task.run(stop.clone(), shutdown));
        tasks.close();
        Telemetry {
            recorder,
            shadows,
            stop,
            tasks,
        }
    }

    /// Final flush (within the close deadline) and the task's end.
    pub(crate) async fn close(&self) {
        // Candidates still running are stopped first (unrecorded), so the final flush
        // does not wait for them.
        self.shadows.close().await;
        self.stop.cancel();
        self.tasks.wait().await;
    }
}

/// Unix milliseconds, the wire's timestamps.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
