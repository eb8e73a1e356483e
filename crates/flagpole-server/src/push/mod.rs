//! Real-time push to SDKs (docs/protocol.md): per-environment hubs that turn committed
//! versions into patches, serialise each once and fan it out to every WebSocket of the
//! environment.
//!
//! How a change travels:
//! 1. a write commits; on Postgres the same transaction ran `pg_notify('flagpole_env',
//!    '<env>:<version>')` (`store::change_log::notify_committed`), and the writing replica publishes
//!    `EnvChanged` on its in-process [`ChangeFeed`];
//! 2. every replica's listener ([`notify::listen`]) hands notifications to its hubs and its
//!    snapshot cache (the `ChangeFeed` stays "commits made by this process"; a replica's
//!    own notifications come back too, and are skipped by version);
//! 3. the feed follower pokes the environment's hub; the hub's updater reads what changed
//!    since its version (`store::snapshot::load_patch`), publishes one patch (bursts coalesce into
//!    one) and the connections ([`connection`]) forward it. A config write skips the read
//!    on its own replica: it hands its patch to the hub itself ([`local`]), and the hub
//!    ignores pokes for that version meanwhile.
//!
//! Safety nets: a listener that reconnects, and a periodic version check, compare every
//! hub with the database (notifications sent while a listener was away are lost).
//! [`history`] keeps the change rows patches are built from bounded.

pub(crate) mod connection;
pub mod history;
pub(crate) mod hub;
pub(crate) mod keys;
pub(crate) mod local;
pub(crate) mod notify;
pub(crate) mod reports;
pub(crate) mod source;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{SdkKeyCache, SdkSeen};
use crate::changes::ChangeFeed;
use crate::db::Db;
use crate::snapshots::SnapshotCache;
use flagpole_core::wire::PatchError;
use hub::{EnvHub, PublishError};
use source::{PatchRead, Source, SourceError};

/// How often hubs are compared with the database, and idle hubs dropped.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// A hub with no connection for this long is dropped (its next connection reloads it).
pub const HUB_IDLE: Duration = Duration::from_secs(60);

/// Why a stream could not be set up for an environment.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The environment was deleted.
    #[error("environment {0} not found")]
    Gone(i64),
    /// Loading it failed.
    #[error("loading environment for push: {0}")]
    Source(#[from] SourceError),
}

/// The hubs of this replica. Cheap to clone.
#[derive(Clone)]
pub struct Push {
    inner: Arc<Registry>,
}

struct Registry {
    /// What hubs read; the database-only tasks of [`Push::start`] get the database itself.
    source: Source,
    // std Mutex: held only to look up, insert or remove, never across an await.
    hubs: Mutex<HashMap<i64, Arc<EnvHub>>>,
    /// When each hub was first seen without connections.
    idle_since: Mutex<HashMap<i64, Instant>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Server heartbeat interval for connections.
    heartbeat: Duration,
    /// Keys with open streams, checked for revocation every heartbeat.
    keys: keys::StreamKeys,
}

/// A connection's claim on a hub: while any lease is alive the hub is not dropped.
pub(crate) struct Lease {
    hub: Arc<EnvHub>,
}

impl Lease {
    /// The hub.
    pub(crate) fn hub(&self) -> &Arc<EnvHub> {
        &self.hub
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.hub.leases.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Push {
    /// No hubs yet; hubs read from the database `db`, their updaters run on `tasks` and
    /// stop on `shutdown`.
    pub fn new(
        db: Db,
        heartbeat: Duration,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Push {
        Push::over(Arc::new(source::Database(db)), heartbeat, shutdown, tasks)
    }

    /// No hubs yet; hubs read from `source`.
    pub(crate) fn over(
        source: Source,
        heartbeat: Duration,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Push {
        Push {
            inner: Arc::new(Registry {
                source,
                hubs: Mutex::new(HashMap::new()),
                idle_since: Mutex::new(HashMap::new()),
                shutdown,
                tasks,
                heartbeat,
                keys: keys::StreamKeys::default(),
            }),
        }
    }

    /// Connections' heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.inner.heartbeat
    }

    /// The shutdown token connections watch.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The task tracker connections are tracked by.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// Open streams by SDK key.
    pub(crate) fn stream_keys(&self) -> &keys::StreamKeys {
        &self.inner.keys
    }

    /// What hubs read.
    pub(crate) fn source(&self) -> &Source {
        &self.inner.source
    }

    /// Starts the database replica's background tasks over `db`: the change-feed follower,
    /// the Postgres listener and the periodic check (the last two also keep `snapshots` up
    /// with other replicas' writes), history pruning, and the revocation check of streams'
    /// SDK keys (through `sdk_keys`, noting live ones in `sdk_seen`). Subscribes to `changes` before returning.
    pub fn start(
        &self,
        db: &Db,
        changes: &ChangeFeed,
        snapshots: &SnapshotCache,
        sdk_keys: &SdkKeyCache,
        sdk_seen: &SdkSeen,
    ) {
        let tasks = &self.inner.tasks;
        tasks.spawn(self.inner.keys.clone().watch(
            sdk_keys.clone(),
            sdk_seen.clone(),
            db.clone(),
            self.inner.heartbeat,
            self.inner.shutdown.clone(),
        ));
        tasks.spawn(notify::follow(
            self.clone(),
            changes.subscribe(),
            self.inner.shutdown.clone(),
        ));
        let cache = notify::CacheFeeder::default();
        tasks.spawn(
            cache
                .clone()
                .run(snapshots.clone(), self.inner.shutdown.clone()),
        );
        if db.backend == crate::db::Backend::Postgres {
            tasks.spawn(notify::listen(
                self.clone(),
                db.clone(),
                cache.clone(),
                self.inner.shutdown.clone(),
            ));
        }
        tasks.spawn(notify::check_periodically(
            self.clone(),
            db.clone(),
            cache,
            self.inner.shutdown.clone(),
        ));
        tasks.spawn(history::prune_periodically(
            db.clone(),
            self.inner.shutdown.clone(),
        ));
    }

    /// A lease on environment `environment_id`'s hub, loading it first if needed (one
    /// database read per environment, shared by concurrent first connections).
    pub(crate) async fn lease(&self, environment_id: i64) -> Result<Lease, HubError> {
        let hub = {
            let mut hubs = lock(&self.inner.hubs);
            // A hub whose environment was deleted is closed; an environment id is never
            // reused, but a fresh hub answers the question again rather than trusting it.
            if hubs
                .get(&environment_id)
                .is_some_and(|h| h.closed.is_cancelled())
            {
                hubs.remove(&environment_id);
            }
            let hub = hubs.entry(environment_id).or_insert_with(|| {
                let hub = Arc::new(EnvHub::new(environment_id));
                self.inner.tasks.spawn(updater(
                    hub.clone(),
                    self.inner.source.clone(),
                    self.inner.shutdown.clone(),
                ));
                hub
            });
            // Counted under the map lock: the sweep removes only hubs without leases, so
            // a hub handed out here cannot be removed underneath its connection.
            hub.leases.fetch_add(1, Ordering::AcqRel);
            hub.clone()
        };
        let lease = Lease { hub };
        if lease.hub.version().is_none() {
            let _loading = lease.hub.load_lock.lock().await;
            if lease.hub.version().is_none() {
                let env = self
                    .inner
                    .source
                    .environment(environment_id)
                    .await?
                    .ok_or(HubError::Gone(environment_id))?;
                lease.hub.set_loaded(env);
                // A change that committed while we read may have poked the updater
                // before the hub had a version; make it look again.
                lease.hub.poke(None);
            }
        }
        Ok(lease)
    }

    /// Tells the hub of `environment_id`, if any, that the database has `version`.
    pub(crate) fn poke(&self, environment_id: i64, version: Option<u64>) {
        let hub = lock(&self.inner.hubs).get(&environment_id).cloned();
        if let Some(hub) = hub {
            hub.poke(version);
        }
    }

    /// Pokes every hub to compare itself with the database.
    pub(crate) fn poke_all(&self) {
        for hub in self.hubs() {
            hub.poke(None);
        }
    }

    /// Every hub (a copy of the list).
    pub(crate) fn hubs(&self) -> Vec<Arc<EnvHub>> {
        lock(&self.inner.hubs).values().cloned().collect()
    }

    /// Drops hubs that have had no connection for [`HUB_IDLE`], and the hub of an
    /// environment that no longer exists.
    pub(crate) fn sweep(&self, now: Instant, gone: &[i64]) {
        let mut hubs = lock(&self.inner.hubs);
        let mut idle = lock(&self.inner.idle_since);
        hubs.retain(|id, hub| {
            let keep = if gone.contains(id) || hub.closed.is_cancelled() {
                false
            } else if hub.leases.load(Ordering::Acquire) > 0 {
                idle.remove(id);
                true
            } else {
                let since = *idle.entry(*id).or_insert(now);
                now.duration_since(since) < HUB_IDLE
            };
            if !keep {
                idle.remove(id);
                hub.closed.cancel();
            }
            keep
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps one hub in step with its source until it is closed or the server stops.
/// Pokes that arrive while a patch is being built leave one wake-up, so a burst of
/// writes becomes one patch.
async fn updater(hub: Arc<EnvHub>, source: Source, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = hub.closed.cancelled() => return,
            () = hub.wake.notified() => {}
        }
        let Some(from) = hub.version() else {
            // Not loaded yet: the load reads the latest and pokes again.
            continue;
        };
        let started = Instant::now();
        let read = source.changes_after(hub.environment_id, from).await;
        if let Ok(PatchRead::Patch(_)) = &read {
            // Only reads that found changes, as before the read moved to the store: the
            // stream tests count these to show a config write reads nothing back.
            metrics::histogram!("stream_patch_read_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        match read {
            Ok(PatchRead::UpToDate) => {}
            Ok(PatchRead::Patch(patch)) => match (patch.to, hub.publish(patch)) {
                (_, Ok(())) => {}
                // A write of this process published its own patch while this one was read
                // (`local`). Read again only if the hub is still short of what the
                // database had.
                (to, Err(PublishError::Patch(PatchError::Gap { .. }))) => {
                    if hub.version().is_none_or(|held| held < to) {
                        hub.poke(None);
                    }
                }
                (_, Err(error)) => {
                    tracing::error!(environment_id = hub.environment_id, %error, "publishing patch failed");
                }
            },
            Ok(PatchRead::Gone) => {
                tracing::info!(
                    environment_id = hub.environment_id,
                    "environment deleted; closing its streams"
                );
                hub.closed.cancel();
                return;
            }
            Ok(PatchRead::Pruned) => match source.environment(hub.environment_id).await {
                Ok(Some(env)) => {
                    tracing::info!(
                        environment_id = hub.environment_id,
                        from,
                        to = env.version,
                        "change history pruned past this hub's version; sending the whole environment"
                    );
                    match hub.publish_whole(&env) {
                        Ok(()) => {}
                        Err(PublishError::Patch(PatchError::Gap { .. })) => hub.poke(None),
                        Err(error) => {
                            tracing::error!(environment_id = hub.environment_id, %error, "publishing the whole environment failed");
                        }
                    }
                }
                // Deleted meanwhile: the next poke finds it gone.
                Ok(None) => hub.poke(None),
                Err(error) => {
                    tracing::warn!(environment_id = hub.environment_id, %error, "loading the environment failed");
                }
            },
            // The next poke (or the periodic check) retries.
            Err(error) => {
                tracing::warn!(environment_id = hub.environment_id, %error, "building patch failed");
            }
        }
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod source_tests;
