//! [`Client`]: evaluation on the current flags, readiness, status, subscriptions, shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::Guard;
use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::{Context, Detail, ErrorKind, Evaluation, Reason, Snapshot};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::builder::ClientBuilder;
use crate::cache;
use crate::changes::{Changes, FlagChanges};
use crate::detail::EvaluationDetail;
use crate::error::{NotReady, OfflineError};
use crate::shared::{ConnectionState, Shared, Source, State, Status};
use crate::telemetry::{self, Recorder, Telemetry, TrackError};

mod guard;

pub(crate) use guard::{SHADOW_CONCURRENCY, SHADOW_TIMEOUT, Shadows};

/// A Flagpole client for one environment. Cheap to clone; all clones share one connection.
///
/// Evaluations read the current compiled flags lock-free and never touch the network. The
/// connection task stops when [`Client::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// `None` when switched off (and for offline clients).
    telemetry: Option<Telemetry>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the last handle stops the tasks without waiting for them.
        self.shutdown.cancel();
        self.shared.mark_closed();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client for the server at `url` (`http[s]://host[:port]`, or
    /// the `ws[s]://…/sdk/v1/stream` URL itself) with an SDK key (`fp_sdk_…`).
    pub fn builder(url: impl Into<String>, sdk_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url.into(), sdk_key.into())
    }

    /// An offline client: flags from a JSON `EnvironmentSnapshot` file (or a cache file),
    /// no network, ready at once. Needs no async runtime.
    pub fn offline_from_file(path: impl AsRef<Path>) -> Result<Client, OfflineError> {
        let env = cache::load_offline(path.as_ref())?;
        Ok(Client::offline(env))
    }

    /// An offline client serving `env`, for tests.
    pub fn offline(env: EnvironmentSnapshot) -> Client {
        let shared = Arc::new(Shared::new(ConnectionState::Offline));
        shared.publish(env, Source::File);
        let tasks = TaskTracker::new();
        tasks.close();
        Client::from_parts(shared, CancellationToken::new(), tasks, None)
    }

    pub(crate) fn from_parts(
        shared: Arc<Shared>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        telemetry: Option<Telemetry>,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                shared,
                shutdown,
                tasks,
                telemetry,
            }),
        }
    }

    /// Waits until flags from the server (or the offline file) are available, for at most
    /// `timeout`. Flags from the disk cache do not count: they are served meanwhile, and
    /// [`NotReady::status`] says so. Returns at once when the server rejects the SDK key
    /// (the error then reads "SDK key rejected: invalid or revoked"): waiting longer would
    /// not help.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<(), NotReady> {
        let mut status = self.inner.shared.watch_status();
        let ready = tokio::time::timeout(timeout, async {
            status
                .wait_for(|s| {
                    s.is_ready()
                        || matches!(
                            s.connection,
                            ConnectionState::Closed | ConnectionState::Rejected
                        )
                })
                .await
                .map(|s| s.is_ready())
                .unwrap_or(false)
        })
        .await;
        match ready {
            Ok(true) => Ok(()),
            _ => Err(NotReady {
                status: self.status(),
            }),
        }
    }

    /// Connection state, where the flags came from and their version.
    pub fn status(&self) -> Status {
        self.inner.shared.status()
    }

    /// Status changes as they happen, for health checks or alerting on stale flags.
    pub fn watch_status(&self) -> tokio::sync::watch::Receiver<Status> {
        self.inner.shared.watch_status()
    }

    #[inline]
    fn state(&self) -> Guard<Arc<State>> {
        self.inner.shared.state.load()
    }

    /// The recorder and the flag's version when `flag_key` asks for exposures. For an
    /// environment without marked flags this is one `Option` check.
    #[inline]
    fn exposing(&self, state: &State, flag_key: &str) -> Option<(&Recorder, u64)> {
        let version = state.marked.as_ref()?.version(flag_key)?;
        Some((&self.inner.telemetry.as_ref()?.recorder, version))
    }

    /// A boolean flag's value, or `default` (also before the first flags). Lock-free, and
    /// allocates nothing when `ctx` is reused.
    #[inline]
    pub fn bool_value(&self, flag_key: &str, ctx: &Context, default: bool) -> bool {
        let state = self.state();
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            let d = state.snapshot.bool_detail(flag_key, ctx, default);
            recorder.expose(flag_key, version, d.variant, &ctx.key);
            return d.value;
        }
        state.snapshot.bool_value(flag_key, ctx, default)
    }

    /// A number flag's value, or `default`. Lock-free and allocation-free, as
    /// [`Client::bool_value`].
    #[inline]
    pub fn number_value(&self, flag_key: &str, ctx: &Context, default: f64) -> f64 {
        let state = self.state();
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            let d = state.snapshot.number_detail(flag_key, ctx, default);
            recorder.expose(flag_key, version, d.variant, &ctx.key);
            return d.value;
        }
        state.snapshot.number_value(flag_key, ctx, default)
    }

    /// A string flag's value, or `default`. Allocates the returned `String`; borrow it
    /// through [`Client::flags`] to avoid that.
    pub fn string_value(&self, flag_key: &str, ctx: &Context, default: &str) -> String {
        let state = self.state();
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            let d = state.snapshot.string_detail(flag_key, ctx, default);
            recorder.expose(flag_key, version, d.variant, &ctx.key);
            return d.value.to_owned();
        }
        state
            .snapshot
            .string_value(flag_key, ctx, default)
            .to_owned()
    }

    /// Any flag's value as JSON, or `default`. Clones the served value.
    pub fn json_value(&self, flag_key: &str, ctx: &Context, default: Value) -> Value {
        let state = self.state();
        let e = state.snapshot.evaluate(flag_key, ctx);
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            recorder.expose(flag_key, version, e.variant, &ctx.key);
        }
        match e.value {
            Some(value) => value.clone(),
            None => default,
        }
    }

    /// A boolean flag's value, variant and reason. Allocation-free: the variant and rule
    /// ids are shared strings, interned by the first detail call after each change.
    pub fn bool_detail(
        &self,
        flag_key: &str,
        ctx: &Context,
        default: bool,
    ) -> EvaluationDetail<bool> {
        let state = self.state();
        if state.env.is_none() {
            return EvaluationDetail::error(default, ErrorKind::NotReady);
        }
        let d = state.snapshot.bool_detail(flag_key, ctx, default);
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            recorder.expose(flag_key, version, d.variant, &ctx.key);
        }
        state.names().detail(flag_key, d.value, d.variant, d.reason)
    }

    /// A number flag's value, variant and reason. Allocation-free, as [`Client::bool_detail`].
    pub fn number_detail(
        &self,
        flag_key: &str,
        ctx: &Context,
        default: f64,
    ) -> EvaluationDetail<f64> {
        let state = self.state();
        if state.env.is_none() {
            return EvaluationDetail::error(default, ErrorKind::NotReady);
        }
        let d = state.snapshot.number_detail(flag_key, ctx, default);
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            recorder.expose(flag_key, version, d.variant, &ctx.key);
        }
        state.names().detail(flag_key, d.value, d.variant, d.reason)
    }

    /// A string flag's value (owned), variant and reason.
    pub fn string_detail(
        &self,
        flag_key: &str,
        ctx: &Context,
        default: &str,
    ) -> EvaluationDetail<String> {
        let state = self.state();
        if state.env.is_none() {
            return EvaluationDetail::error(default.to_owned(), ErrorKind::NotReady);
        }
        let d = state.snapshot.string_detail(flag_key, ctx, default);
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            recorder.expose(flag_key, version, d.variant, &ctx.key);
        }
        state
            .names()
            .detail(flag_key, d.value.to_owned(), d.variant, d.reason)
    }

    /// Any flag's value as JSON (cloned), variant and reason.
    pub fn json_detail(
        &self,
        flag_key: &str,
        ctx: &Context,
        default: Value,
    ) -> EvaluationDetail<Value> {
        let state = self.state();
        if state.env.is_none() {
            return EvaluationDetail::error(default, ErrorKind::NotReady);
        }
        let e = state.snapshot.evaluate(flag_key, ctx);
        if let Some((recorder, version)) = self.exposing(&state, flag_key) {
            recorder.expose(flag_key, version, e.variant, &ctx.key);
        }
        let value = e.value.cloned().unwrap_or(default);
        state.names().detail(flag_key, value, e.variant, e.reason)
    }

    /// The current flags, borrowed: `flagpole-core`'s own [`Detail`] and [`Evaluation`]
    /// without any copying. Hold it briefly (for one request): it pins one version of the
    /// flags in memory.
    pub fn flags(&self) -> Flags {
        let state = self.state();
        // The recorder is only shared (a reference count) when some flag asks for
        // exposures, so the common case stays free of shared writes.
        let recorder = match (&state.marked, &self.inner.telemetry) {
            (Some(_), Some(t)) => Some(t.recorder.clone()),
            _ => None,
        };
        Flags { state, recorder }
    }

    /// Records an event for experiments and guarded rollouts (`checkout_completed`,
    /// `request_error`): `name`, the context's key, an optional finite `value` (revenue,
    /// latency) and free-form `properties`. Buffered and sent with the next batch; see
    /// the crate docs' "Telemetry" section for the bounds.
    ///
    /// Refused at once, with nothing buffered, when the value is NaN or infinite, the name
    /// or context key is empty or over 256 bytes, or there are over 64 properties: the
    /// rules the server applies to a batch. With telemetry switched off (or offline) a
    /// valid event is accepted and discarded.
    pub fn track(
        &self,
        name: &str,
        ctx: &Context,
        value: Option<f64>,
        properties: Map<String, Value>,
    ) -> Result<(), TrackError> {
        match &self.inner.telemetry {
            Some(t) => t.recorder.track(name, ctx, value, properties),
            None => telemetry::check_event(name, ctx, value, properties),
        }
    }

    /// Every change to any flag from now on.
    pub fn subscribe(&self) -> Changes {
        Changes::new(self.inner.shared.clone(), self.inner.shutdown.clone())
    }

    /// Changes to one flag from now on (including changes through its segments and
    /// prerequisites, and its removal).
    pub fn subscribe_flag(&self, flag_key: impl Into<String>) -> FlagChanges {
        FlagChanges::new(self.subscribe(), flag_key.into())
    }

    /// Stops the connection (sending a close frame) and the cache writer, flushing a
    /// pending cache write, and waits for them. Evaluations keep serving the last flags.
    ///
    /// With telemetry on, a final flush comes first: it gives up after 2 s (the default
    /// close deadline, DNS and connect included), so `close` returns even when the server
    /// is unreachable.
    pub async fn close(&self) {
        if let Some(telemetry) = &self.inner.telemetry {
            telemetry.close().await;
        }
        self.inner.shutdown.cancel();
        self.inner.tasks.wait().await;
        self.inner.shared.mark_closed();
    }
}

/// One version of the flags, borrowed lock-free from a [`Client`] by [`Client::flags`].
///
/// Its methods return `flagpole-core`'s borrowed results, so string and JSON values are
/// not copied. Before the first flags they report [`ErrorKind::NotReady`].
pub struct Flags {
    state: Guard<Arc<State>>,
    /// Set only when some flag of this version asks for exposures.
    recorder: Option<Arc<Recorder>>,
}

impl Flags {
    /// True if flags have been loaded (from the server, the cache or a file).
    pub fn has_flags(&self) -> bool {
        self.state.env.is_some()
    }

    /// The version of the environment, if any.
    pub fn version(&self) -> Option<u64> {
        self.state.env.as_ref().map(|e| e.version)
    }

    /// The environment as received: flags and segments.
    pub fn environment(&self) -> Option<&EnvironmentSnapshot> {
        self.state.env.as_deref()
    }

    /// The compiled snapshot (empty before the first flags).
    pub fn snapshot(&self) -> &Snapshot {
        &self.state.snapshot
    }

    /// Records an exposure when this flag asks for them.
    #[inline]
    fn expose(&self, flag_key: &str, ctx: &Context, variant: Option<&str>) {
        if let Some(recorder) = &self.recorder
            && let Some(version) = self.state.marked.as_ref().and_then(|m| m.version(flag_key))
        {
            recorder.expose(flag_key, version, variant, &ctx.key);
        }
    }

    /// Evaluates any flag.
    pub fn evaluate(&self, flag_key: &str, ctx: &Context) -> Evaluation<'_> {
        if !self.has_flags() {
            return Evaluation::error(ErrorKind::NotReady);
        }
        let e = self.state.snapshot.evaluate(flag_key, ctx);
        self.expose(flag_key, ctx, e.variant);
        e
    }

    /// A boolean flag's value with details.
    pub fn bool_detail(&self, flag_key: &str, ctx: &Context, default: bool) -> Detail<'_, bool> {
        match self.has_flags() {
            true => {
                let d = self.state.snapshot.bool_detail(flag_key, ctx, default);
                self.expose(flag_key, ctx, d.variant);
                d
            }
            false => not_ready(default),
        }
    }

    /// A number flag's value with details.
    pub fn number_detail(&self, flag_key: &str, ctx: &Context, default: f64) -> Detail<'_, f64> {
        match self.has_flags() {
            true => {
                let d = self.state.snapshot.number_detail(flag_key, ctx, default);
                self.expose(flag_key, ctx, d.variant);
                d
            }
            false => not_ready(default),
        }
    }

    /// A string flag's value, borrowed, with details.
    pub fn string_detail<'a>(
        &'a self,
        flag_key: &str,
        ctx: &Context,
        default: &'a str,
    ) -> Detail<'a, &'a str> {
        match self.has_flags() {
            true => {
                let d = self.state.snapshot.string_detail(flag_key, ctx, default);
                self.expose(flag_key, ctx, d.variant);
                d
            }
            false => not_ready(default),
        }
    }

    /// Any flag's value as borrowed JSON, with details.
    pub fn json_detail<'a>(
        &'a self,
        flag_key: &str,
        ctx: &Context,
        default: &'a Value,
    ) -> Detail<'a, &'a Value> {
        match self.has_flags() {
            true => {
                let d = self.state.snapshot.json_detail(flag_key, ctx, default);
                self.expose(flag_key, ctx, d.variant);
                d
            }
            false => not_ready(default),
        }
    }

    /// A string flag's value, borrowed, or `default`.
    pub fn string_value<'a>(&'a self, flag_key: &str, ctx: &Context, default: &'a str) -> &'a str {
        if self.recorder.is_some() {
            return self.string_detail(flag_key, ctx, default).value;
        }
        self.state.snapshot.string_value(flag_key, ctx, default)
    }

    /// Any flag's value as borrowed JSON, or `default`.
    pub fn json_value<'a>(
        &'a self,
        flag_key: &str,
        ctx: &Context,
        default: &'a Value,
    ) -> &'a Value {
        if self.recorder.is_some() {
            return self.json_detail(flag_key, ctx, default).value;
        }
        self.state.snapshot.json_value(flag_key, ctx, default)
    }
}

fn not_ready<'s, T>(value: T) -> Detail<'s, T> {
    Detail {
        value,
        variant: None,
        reason: Reason::Error {
            error: ErrorKind::NotReady,
        },
    }
}
