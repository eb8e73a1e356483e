//! How hubs hear of committed versions: the in-process change feed, Postgres
//! LISTEN/NOTIFY between replicas, and a periodic version check as the safety net.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Push;
use crate::changes::EnvChanged;
use crate::db::Db;
use crate::snapshots::SnapshotCache;
use crate::store::change_log::{self, all_data_versions, data_versions, parse_payload};

/// Pokes hubs with every change on the in-process feed until shutdown.
pub(crate) async fn follow(
    push: Push,
    mut changes: Receiver<EnvChanged>,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = changes.recv() => received,
        };
        match received {
            Ok(change) => push.poke(
                change.environment_id,
                Some(u64::try_from(change.data_version).unwrap_or(0)),
            ),
            // Some changes were dropped: every hub compares itself with the database.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "push lagged behind the change feed; checking every hub"
                );
                push.poke_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Listens for commits (every replica's, this one's included) and hands them to the hubs
/// and the snapshot cache, until shutdown. After every (re)connection it compares every
/// environment with the database, because notifications sent while it was not listening
/// are lost.
pub(crate) async fn listen(push: Push, db: Db, cache: CacheFeeder, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            connected = subscribe(db.url()) => connected,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "push listener cannot connect");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                // Capped at 1 s: after a database outage, cross-replica pushes resume
                // within a second of Postgres returning (the periodic check alone would
                // take up to CHECK_INTERVAL). One connection attempt per second per
                // replica is no load on a database that is down anyway.
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // LISTEN is in effect now: anything committed from here on is delivered, and what
        // committed before is visible to this read.
        resync(&push, &db, &cache, Scope::AllEnvironments).await;
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => match parse_payload(notification.payload()) {
                    Some(change) => remote_change(&push, &cache, change),
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "ignoring malformed notification"
                    ),
                },
                Ok(None) => {
                    tracing::warn!("push listener lost its connection; reconnecting");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "push listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

/// How long one attempt to (re)connect the listener may take.
const LISTENER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A fresh listener on its own one-connection pool. Rejected: `PgListener::connect(url)`,
/// whose internal pool waits up to 30 s per attempt with backoff growing to 6 s, and
/// whose eager reconnect blocks inside `try_recv` without a word while the database is
/// down; after a 10 s outage that delayed cross-replica pushes by seconds. Here an attempt
/// fails within [`LISTENER_CONNECT_TIMEOUT`], is logged, and is retried by [`listen`]'s
/// own backoff (at most 1 s).
async fn subscribe(url: &str) -> Result<PgListener, sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(LISTENER_CONNECT_TIMEOUT)
        .connect_lazy(url)?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection ends `try_recv` with `Ok(None)` at once; `listen` reconnects.
    listener.eager_reconnect(false);
    change_log::listen(&mut listener).await?;
    Ok(listener)
}

/// Every [`super::CHECK_INTERVAL`]: compares hubs with the database and drops idle hubs.
pub(crate) async fn check_periodically(
    push: Push,
    db: Db,
    cache: CacheFeeder,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(super::CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => resync(&push, &db, &cache, Scope::Hubs).await,
        }
    }
}

/// Which environments [`resync`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Those with a hub on this replica (the periodic check: one small query).
    Hubs,
    /// All of them, so the snapshot cache catches up too (after a listener reconnect).
    AllEnvironments,
}

/// Reads environments' versions in one query and hands those a hub is behind on (or, for
/// [`Scope::AllEnvironments`], every one: the hubs and cache skip versions they have) to
/// [`remote_change`]. Hubs of environments that no longer exist are dropped, as are idle
/// hubs.
pub(crate) async fn resync(push: &Push, db: &Db, cache: &CacheFeeder, scope: Scope) {
    let hubs = push.hubs();
    let result = match scope {
        Scope::Hubs => {
            let ids: Vec<i64> = hubs.iter().map(|h| h.environment_id).collect();
            data_versions(db, &ids).await
        }
        Scope::AllEnvironments => all_data_versions(db).await,
    };
    let versions = match result {
        Ok(v) => v,
        Err(error) => {
            tracing::warn!(%error, "push version check failed");
            return;
        }
    };
    for &(environment_id, version) in &versions {
        let behind = hubs
            .iter()
            .find(|h| h.environment_id == environment_id)
            .is_some_and(|h| h.version().is_some_and(|held| held < version));
        if behind || scope == Scope::AllEnvironments {
            let change = EnvChanged {
                environment_id,
                data_version: i64::try_from(version).unwrap_or(i64::MAX),
            };
            remote_change(push, cache, change);
        }
    }
    let gone: Vec<i64> = hubs
        .iter()
        .map(|h| h.environment_id)
        .filter(|id| !versions.iter().any(|(v, _)| v == id))
        .collect();
    push.sweep(Instant::now(), &gone);
}

/// A version committed somewhere (maybe by another replica): the hub at once (push is the
/// latency-critical path), the snapshot cache through its own task.
fn remote_change(push: &Push, cache: &CacheFeeder, change: EnvChanged) {
    push.poke(
        change.environment_id,
        Some(u64::try_from(change.data_version).unwrap_or(0)),
    );
    cache.offer(change);
}

/// Hands remote versions to the snapshot cache, coalesced per environment and applied by
/// their own task ([`CacheFeeder::run`]): a reload takes a database read, and the listener
/// must not wait for it before handling the next notification.
#[derive(Clone, Default)]
pub(crate) struct CacheFeeder {
    // std Mutex: held only to insert or take the map.
    pending: Arc<Mutex<HashMap<i64, i64>>>,
    wake: Arc<Notify>,
}

impl CacheFeeder {
    /// Records that `change.environment_id` is at least at `change.data_version`.
    pub(crate) fn offer(&self, change: EnvChanged) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let version = pending
                .entry(change.environment_id)
                .or_insert(change.data_version);
            *version = (*version).max(change.data_version);
        }
        self.wake.notify_one();
    }

    /// Applies offered versions to `snapshots` until shutdown.
    pub(crate) async fn run(self, snapshots: SnapshotCache, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
            }
            let batch =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            for (environment_id, data_version) in batch {
                let change = EnvChanged {
                    environment_id,
                    data_version,
                };
                // `apply` reloads only if the cache holds that environment at an older version.
                if let Err(error) = snapshots.apply(change).await {
                    tracing::warn!(environment_id, %error,
                        "reloading a changed environment failed; dropping it from the cache");
                    snapshots.invalidate(environment_id).await;
                }
            }
        }
    }
}
