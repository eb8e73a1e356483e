//! State shared between the [`crate::Client`] handles and the background tasks: the
//! current compiled flags (behind an `ArcSwap`, read lock-free by every evaluation), the
//! status, and the change and persistence channels.
//!
//! Only one task at a time publishes (the connection task, or `build()` before it starts),
//! so a load-compare-store here never races another writer.

use std::fmt;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use flagpole_core::Snapshot;
use flagpole_core::model::EnvironmentSnapshot;
use tokio::sync::{broadcast, watch};

use crate::changes::{self, ChangeEvent};
use crate::detail::Names;
use crate::telemetry::{self, MarkedFlags};

/// Change events kept for slow subscribers before they are told "everything may have
/// changed" instead (see [`crate::Changes::recv`]).
const CHANGE_BUFFER: usize = 256;

/// Where the flags being served came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// No flags yet: evaluations serve the caller's default with `NOT_READY`.
    None,
    /// Loaded from the on-disk cache at start-up and not yet confirmed by the server.
    Cache,
    /// Received from (or confirmed by) the server.
    Server,
    /// Loaded from a file in offline mode.
    File,
}

/// The state of the connection to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Opening a connection (or waiting to retry one).
    Connecting,
    /// Connected and receiving changes.
    Connected,
    /// Lost the connection; reconnecting with backoff. The last known flags are served.
    Disconnected,
    /// The server refused the SDK key: it does not exist or was revoked (HTTP 401/403 at
    /// connect, or close code 1008 while connected). Retrying soon cannot help, so the
    /// client retries slowly (every minute or so, in case a newly created key had not
    /// reached the server's cache yet). The last known flags are served.
    Rejected,
    /// Offline mode: no network at all.
    Offline,
    /// [`crate::Client::close`] was called or the client was dropped.
    Closed,
}

/// A point-in-time view of the client, from [`crate::Client::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The connection.
    pub connection: ConnectionState,
    /// Where the served flags came from.
    pub source: Source,
    /// Version of the environment being served, if any.
    pub version: Option<u64>,
}

impl Status {
    /// True once flags from the server (or the offline file) have been received:
    /// what [`crate::Client::wait_until_ready`] waits for.
    pub fn is_ready(&self) -> bool {
        matches!(self.source, Source::Server | Source::File)
    }

    /// True if evaluations use flags (rather than the caller's defaults).
    pub fn has_flags(&self) -> bool {
        self.source != Source::None
    }

    /// True if the flags served may be out of date: they come from the disk cache, or the
    /// connection to the server is currently down.
    pub fn is_stale(&self) -> bool {
        match self.source {
            Source::Cache => true,
            Source::Server => self.connection != ConnectionState::Connected,
            Source::None | Source::File => false,
        }
    }
}

/// What the status says about a rejected key, in [`Status`]'s and
/// [`crate::NotReady`]'s messages.
pub const KEY_REJECTED: &str = "SDK key rejected: invalid or revoked";

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.connection {
            ConnectionState::Rejected => write!(f, "{KEY_REJECTED}")?,
            other => write!(f, "{other:?}")?,
        }
        write!(f, ", flags from {:?}", self.source)?;
        match self.version {
            Some(v) => write!(f, " at version {v}"),
            None => Ok(()),
        }
    }
}

/// What evaluations read: one environment, compiled, plus interned names for owned details.
pub(crate) struct State {
    /// The model the snapshot was compiled from; `None` before the first flags.
    pub(crate) env: Option<Arc<EnvironmentSnapshot>>,
    pub(crate) snapshot: Snapshot,
    /// The flags asking for exposures; `None` when there are none (the usual case).
    pub(crate) marked: Option<MarkedFlags>,
    /// Built by the first `*_detail` call on this version, not on every change: most
    /// applications evaluate values only, and every change would pay for interning every
    /// flag's names.
    names: OnceLock<Names>,
}

impl State {
    fn empty() -> Self {
        State {
            env: None,
            snapshot: Snapshot::empty(),
            marked: None,
            names: OnceLock::new(),
        }
    }

    /// Shared strings for owned details.
    pub(crate) fn names(&self) -> &Names {
        self.names.get_or_init(|| match &self.env {
            Some(env) => Names::new(env),
            None => Names::default(),
        })
    }
}

pub(crate) struct Shared {
    pub(crate) state: ArcSwap<State>,
    status: watch::Sender<Status>,
    changes: broadcast::Sender<ChangeEvent>,
    /// The latest server-sourced environment, for the disk-cache writer.
    persist: watch::Sender<Option<Arc<EnvironmentSnapshot>>>,
    /// Telemetry's stream hand-over and replaced snapshots (inert while it is off).
    pub(crate) telemetry: telemetry::Hooks,
}

impl Shared {
    pub(crate) fn new(connection: ConnectionState) -> Self {
        Shared {
            state: ArcSwap::from_pointee(State::empty()),
            status: watch::Sender::new(Status {
                connection,
                source: Source::None,
                version: None,
            }),
            changes: broadcast::Sender::new(CHANGE_BUFFER),
            persist: watch::Sender::new(None),
            telemetry: telemetry::Hooks::default(),
        }
    }

    /// Compiles and installs a new environment, then tells subscribers which flags changed.
    /// With telemetry on, the snapshot counts evaluations and the one it replaces is kept
    /// until its counts are collected ([`telemetry::Retired`]).
    ///
    /// Compilation is lenient ([`Snapshot::compile`]): a flag this SDK cannot compile
    /// evaluates to `INVALID_FLAG` while the rest of the environment keeps working. It
    /// is also incremental ([`Snapshot::recompile`]): a patch's environment shares every
    /// flag it did not replace with the one held, and those flags are not compiled again.
    pub(crate) fn publish(&self, env: EnvironmentSnapshot, source: Source) {
        let snapshot = {
            let held = self.state.load();
            match &held.env {
                Some(held_env) => Snapshot::recompile(&env, held_env, &held.snapshot),
                None => Snapshot::compile(&env),
            }
        };
        // Counting costs a few instructions per evaluation and memory per thread, so only
        // while telemetry is on (set before the first publish). A recompile of a counting
        // snapshot counts already; this covers the first compile.
        let snapshot = if self.telemetry.retired.is_on() {
            snapshot.with_counting()
        } else {
            snapshot
        };
        for error in snapshot.errors() {
            tracing::warn!(%error, "flagpole: flag failed to compile; it will evaluate to INVALID_FLAG");
        }
        let marked = MarkedFlags::of(&env);
        let env = Arc::new(env);
        let old = self.state.swap(Arc::new(State {
            env: Some(env.clone()),
            snapshot,
            marked,
            names: OnceLock::new(),
        }));
        // The change event goes out before the status update: whoever wakes up on the
        // status (`wait_until_ready`, a version watch) and then subscribes must not be
        // handed an event for flags it has already read. In the other order a subscriber
        // created right after "ready" got the initial load as a change, at the version it
        // had just read (the e2e replicas test saw `[11, 11, ...]`).
        //
        // Most applications never subscribe; working out which flags changed (every flag's
        // dependencies) is then skipped. A subscription made concurrently with this
        // publish may or may not see it, as with any event published while subscribing.
        if self.changes.receiver_count() > 0 {
            let changed = changes::changed_flags(old.env.as_deref(), &env);
            if !changed.is_empty() {
                // Receivers may have gone since they were counted: not an error.
                let _ = self.changes.send(ChangeEvent {
                    version: env.version,
                    keys: changed.into(),
                    lagged: false,
                });
            }
        }
        // Its counters are collected once more after its last evaluation.
        self.telemetry.retired.keep(old);
        self.status.send_modify(|s| {
            s.source = source;
            s.version = Some(env.version);
        });
        // Only the disk-cache writer reads this (subscribed before the connection starts,
        // see `ClientBuilder::build`); without one there is nobody to wake.
        if source == Source::Server && self.persist.receiver_count() > 0 {
            self.persist.send_replace(Some(env.clone()));
        }
        tracing::debug!(version = env.version, ?source, "flagpole: flags updated");
    }

    /// The server confirmed the version we hold (from the cache) is current.
    pub(crate) fn confirm(&self) {
        self.status.send_if_modified(|s| {
            let stale = s.source == Source::Cache;
            if stale {
                s.source = Source::Server;
            }
            stale
        });
    }

    pub(crate) fn set_connection(&self, connection: ConnectionState) {
        self.status.send_if_modified(|s| {
            let changed = s.connection != connection && s.connection != ConnectionState::Closed;
            if changed {
                s.connection = connection;
            }
            changed
        });
    }

    /// Final: later `set_connection` calls are ignored.
    pub(crate) fn mark_closed(&self) {
        self.status.send_if_modified(|s| {
            let changed = s.connection != ConnectionState::Closed;
            s.connection = ConnectionState::Closed;
            changed
        });
    }

    pub(crate) fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    pub(crate) fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.changes.subscribe()
    }

    pub(crate) fn watch_persist(&self) -> watch::Receiver<Option<Arc<EnvironmentSnapshot>>> {
        self.persist.subscribe()
    }

    /// The environment currently held, if any.
    pub(crate) fn held(&self) -> Option<Arc<EnvironmentSnapshot>> {
        self.state.load().env.clone()
    }
}
