//! Shared application state handed to every handler.

use std::sync::Arc;

pub use crate::changes::{ChangeFeed, EnvChanged};
use crate::config::Config;
use crate::db::Db;

/// Cheap to clone: one reference count. axum clones the state for every request (twice
/// for a handler taking `State`), so the fields live behind a single `Arc` rather than each
/// field being cloned (measured under OFREP load: cloning the pool, moka caches and
/// cancellation tokens field by field cost several percent of a request). Fields are
/// reached through `Deref`: `state.db`, `state.snapshots`.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What an [`AppState`] shares.
pub struct SharedState {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<Config>,
    /// Committed changes to environments' data, for caches and push.
    pub changes: ChangeFeed,
    /// Authentication caches and login counters.
    pub auth: crate::auth::AuthState,
    /// Compiled environments for evaluation (OFREP), kept fresh from `changes`; they count
    /// OFREP evaluations.
    pub snapshots: crate::snapshots::SnapshotCache,
    /// Set when shutdown begins (SIGTERM): /readyz fails from then on while requests are
    /// still served for the drain delay, so load balancers stop routing here first.
    pub draining: std::sync::atomic::AtomicBool,
    /// Cancelled when the server shuts down (after the drain delay); every background task
    /// and every SDK stream watches it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Background tasks, so shutdown can wait for them to finish.
    pub tasks: tokio_util::task::TaskTracker,
    /// Per-environment push hubs for the SDK stream.
    pub push: crate::push::Push,
    /// The queue of SDK telemetry and its writer.
    pub ingest: crate::ingest::Ingest,
    /// Wakes this replica's scheduler loop (scheduled changes).
    pub scheduler: SchedulerWake,
}

/// The handle every write that schedules a change wakes this replica's scheduler loop
/// through. It lives here rather than in `crate::scheduler` because that loop calls the
/// domain, which holds the state: the state must not depend on the loop.
#[derive(Debug, Clone, Default)]
pub struct SchedulerWake(Arc<tokio::sync::Notify>);

impl SchedulerWake {
    /// Makes the loop look at the table now (a change was scheduled or rebased). A wake
    /// while it is busy is kept for its next sleep.
    pub(crate) fn wake(&self) {
        self.0.notify_one();
    }

    /// What the loop waits on.
    pub(crate) fn notify(&self) -> Arc<tokio::sync::Notify> {
        self.0.clone()
    }
}

impl AppState {
    /// True once shutdown has begun (see [`SharedState::draining`]).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// State over an opened, migrated database.
    pub fn new(db: Db, config: Config) -> AppState {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        AppState(Arc::new(SharedState {
            // Counting: OFREP evaluations are reported as application `ofrep`, drained by
            // `ingest::own_counts`.
            snapshots: crate::snapshots::SnapshotCache::counting(
                db.clone(),
                crate::snapshots::DEFAULT_TTL,
            ),
            push: crate::push::Push::new(
                db.clone(),
                std::time::Duration::from_secs(config.stream_heartbeat_secs.max(1)),
                shutdown.clone(),
                tasks.clone(),
            ),
            ingest: crate::ingest::Ingest::new(config.telemetry_queue_bytes),
            scheduler: SchedulerWake::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            shutdown,
            tasks,
            db,
            config: Arc::new(config),
            changes: ChangeFeed::new(),
            auth: crate::auth::AuthState::new(),
        }))
    }
}
