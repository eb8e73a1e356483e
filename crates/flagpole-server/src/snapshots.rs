//! The per-environment cache of compiled snapshots that OFREP (and later push) evaluate
//! against, so the request path never touches the database.
//!
//! Freshness comes from two sources:
//! - the in-process [`ChangeFeed`]: after a write commits, the refresher task reloads the
//!   changed environment and swaps the new snapshot in;
//! - a time-to-live, the safety net for writes made by other replicas until push brings
//!   LISTEN/NOTIFY between them.
//!
//! Every insert goes through moka's per-key `and_try_compute_with`, which serialises
//! loaders of one environment and lets the newest `data_version` win: a slow load that
//! started before a write can never overwrite the snapshot loaded after it.
//!
//! The server's cache ([`SnapshotCache::counting`]) compiles counting snapshots, so that
//! OFREP evaluations are counted like an SDK's. Entries are replaced on every write and
//! every time-to-live, while requests may still evaluate on the entry they got; so every
//! snapshot it compiled is kept in a list until [`SnapshotCache::drain_counts`] has
//! drained it after its last user let go (the SDK's retired snapshots, the same way).

use std::collections::HashSet;
use std::sync::atomic::{self, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flagpole_core::Snapshot;
use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::EvalCount;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::changes::{ChangeFeed, EnvChanged};
use crate::db::Db;
use crate::store::snapshot::{environment_ids, load_environment};

/// How long an entry is trusted without hearing of a change. Other replicas' writes become
/// visible after at most this long.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// One environment, compiled and ready to evaluate.
#[derive(Debug)]
pub struct CompiledEnvironment {
    /// `environment.id`.
    pub environment_id: i64,
    /// The environment's `data_version` the snapshot was read at.
    pub data_version: i64,
    /// The leniently compiled snapshot (a broken flag evaluates to an error; the rest work).
    pub snapshot: Snapshot,
    /// Keys of flags with no targets, prerequisites or rules: what they serve does not
    /// depend on the context, which OFREP reports as `STATIC`.
    pub static_flags: HashSet<String>,
    /// `"<environment id>-<data version>"`: changes whenever anything evaluated changes.
    pub etag: String,
}

impl CompiledEnvironment {
    /// Compiles `env` (read from environment `environment_id`).
    pub fn compile(environment_id: i64, env: &EnvironmentSnapshot) -> CompiledEnvironment {
        let snapshot = Snapshot::compile(env);
        for error in snapshot.errors() {
            tracing::warn!(environment_id, %error, "stored flag does not compile; it evaluates to an error");
        }
        let static_flags = env
            .flags
            .iter()
            .filter(|f| {
                f.config.targets.is_empty()
                    && f.config.prerequisites.is_empty()
                    && f.config.rules.is_empty()
            })
            .map(|f| f.flag.key.clone())
            .collect();
        let data_version = i64::try_from(env.version).unwrap_or(i64::MAX);
        CompiledEnvironment {
            environment_id,
            data_version,
            snapshot,
            static_flags,
            etag: format!("\"{environment_id}-{data_version}\""),
        }
    }
}

/// Why a snapshot could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The environment does not exist (it was deleted).
    #[error("environment {0} not found")]
    EnvironmentNotFound(i64),
    /// Reading the database failed.
    #[error("loading environment snapshot: {0}")]
    Db(#[from] sqlx::Error),
}

/// Compiled environments by `environment.id`. Cheap to clone (shared inside).
///
/// Everything sits behind one `Arc`: `AppState` (which holds this) is cloned for every
/// request, and one reference count is cheaper than cloning the pool handle and moka's
/// several internal `Arc`s.
#[derive(Clone)]
pub struct SnapshotCache(Arc<Inner>);

struct Inner {
    db: Db,
    cache: Cache<i64, Arc<CompiledEnvironment>>,
    /// Set once every environment has been loaded (at start); read by /readyz.
    warmed: AtomicBool,
    /// When counting: every environment compiled and not yet drained for the last time,
    /// in the cache or not. A std mutex, held for a push or a swap, never across an await.
    counted: Option<Mutex<Vec<Arc<CompiledEnvironment>>>>,
}

impl SnapshotCache {
    /// An empty cache over `db` whose entries expire after `ttl`; its snapshots do not
    /// count evaluations.
    pub fn new(db: Db, ttl: Duration) -> SnapshotCache {
        SnapshotCache::build(db, ttl, false)
    }

    /// Like [`SnapshotCache::new`], with snapshots that count every evaluation
    /// ([`Snapshot::with_counting`]). Someone must call [`SnapshotCache::drain_counts`]
    /// periodically: until drained, every snapshot compiled stays in memory.
    pub fn counting(db: Db, ttl: Duration) -> SnapshotCache {
        SnapshotCache::build(db, ttl, true)
    }

    fn build(db: Db, ttl: Duration, counting: bool) -> SnapshotCache {
        SnapshotCache(Arc::new(Inner {
            db,
            cache: Cache::builder().time_to_live(ttl).build(),
            warmed: AtomicBool::new(false),
            counted: counting.then(Mutex::default),
        }))
    }

    /// What was counted since the last call, per environment (an environment may appear
    /// more than once: one entry per snapshot), over the window `[start_ms, end_ms)`.
    /// Snapshots that left the cache are drained until nobody holds them any more, then
    /// once more, and dropped: an evaluation is reported once, by exactly one call.
    pub async fn drain_counts(&self, start_ms: i64, end_ms: i64) -> Vec<(i64, Vec<EvalCount>)> {
        let Some(counted) = &self.0.counted else {
            return Vec::new();
        };
        // Lets moka drop what expired or was replaced, so those snapshots reach their last
        // drain now rather than at its next housekeeping.
        self.0.cache.run_pending_tasks().await;
        let lock = || counted.lock().unwrap_or_else(PoisonError::into_inner);
        let compiled = std::mem::take(&mut *lock());
        let mut kept = Vec::with_capacity(compiled.len());
        let mut drained = Vec::new();
        for env in compiled {
            // Checked before draining: one held elsewhere (the cache, a request) may still
            // be evaluated on, and is drained again next time. Held only here, nobody can
            // reach it any more, so this drain is its last.
            let last = Arc::strong_count(&env) == 1;
            if last {
                // Pairs with the release of the last other reference: the increments of
                // the evaluations made through it are visible to the drain.
                atomic::fence(Ordering::Acquire);
            }
            let mut counts = Vec::new();
            if env.snapshot.drain_counts(start_ms, end_ms, &mut counts) > 0 {
                drained.push((env.environment_id, counts));
            }
            if !last {
                kept.push(env);
            }
        }
        let mut list = lock();
        // Compiled while this drained: after the ones kept.
        kept.append(&mut list);
        *list = kept;
        drained
    }

    /// The compiled environment, loading it on a miss. Concurrent misses for one
    /// environment load it once.
    pub async fn get(
        &self,
        environment_id: i64,
    ) -> Result<Arc<CompiledEnvironment>, Arc<SnapshotError>> {
        if let Some(hit) = self.0.cache.get(&environment_id).await {
            return Ok(hit);
        }
        let inner = self.0.clone();
        let result = self
            .0
            .cache
            .entry(environment_id)
            .and_try_compute_with(|current| async move {
                // Another caller may have loaded it while we waited for the entry lock.
                if current.is_some() {
                    return Ok(Op::Nop);
                }
                Ok(Op::Put(inner.load(environment_id).await?))
            })
            .await
            .map_err(Arc::new)?;
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => {
                Ok(e.into_value())
            }
            // Unreachable with the closure above; answer as if the environment vanished.
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                Err(Arc::new(SnapshotError::EnvironmentNotFound(environment_id)))
            }
        }
    }

    /// Reloads a cached environment and swaps the result in if it is newer. Environments
    /// not in the cache are left to load on their next use.
    pub async fn refresh(&self, environment_id: i64) -> Result<(), SnapshotError> {
        let inner = self.0.clone();
        self.0
            .cache
            .entry(environment_id)
            .and_try_compute_with(|current| async move {
                let Some(current) = current else {
                    return Ok(Op::Nop);
                };
                match inner.load(environment_id).await {
                    Ok(fresh) if fresh.data_version > current.value().data_version => {
                        Ok(Op::Put(fresh))
                    }
                    Ok(_) => Ok(Op::Nop),
                    Err(SnapshotError::EnvironmentNotFound(_)) => Ok(Op::Remove),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(())
    }

    /// Applies a committed change: reloads the environment unless the cache already holds
    /// that version or a later one.
    pub async fn apply(&self, change: EnvChanged) -> Result<(), SnapshotError> {
        match self.0.cache.get(&change.environment_id).await {
            Some(cached) if cached.data_version >= change.data_version => Ok(()),
            Some(_) => self.refresh(change.environment_id).await,
            None => Ok(()),
        }
    }

    /// Reloads every cached environment (after missing change events).
    pub async fn refresh_all(&self) {
        let ids: Vec<i64> = self.0.cache.iter().map(|(id, _)| *id).collect();
        for id in ids {
            if let Err(error) = self.refresh(id).await {
                tracing::warn!(environment_id = id, %error, "refreshing snapshot failed; dropping it");
                self.0.cache.invalidate(&id).await;
            }
        }
    }

    /// Loads every environment, so the first evaluations do not wait for the database.
    /// Returns how many were loaded.
    pub async fn warm(&self) -> Result<usize, Arc<SnapshotError>> {
        let ids = environment_ids(&self.0.db)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        for &id in &ids {
            match self.get(id).await {
                Ok(_) => {}
                // Deleted since we listed it: nothing to warm.
                Err(e) if matches!(*e, SnapshotError::EnvironmentNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.0.warmed.store(true, Ordering::Release);
        Ok(ids.len())
    }

    /// True once [`SnapshotCache::warm`] has succeeded; otherwise tries to warm now.
    pub async fn ready(&self) -> bool {
        if self.0.warmed.load(Ordering::Acquire) {
            return true;
        }
        match self.warm().await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "snapshot cache is not warm");
                false
            }
        }
    }

    /// Number of cached environments (for the metrics gauge).
    pub async fn cached_environments(&self) -> u64 {
        // moka counts lazily; settle pending inserts and evictions first.
        self.0.cache.run_pending_tasks().await;
        self.0.cache.entry_count()
    }

    /// Drops one environment (tests, and callers that know it was deleted).
    pub async fn invalidate(&self, environment_id: i64) {
        self.0.cache.invalidate(&environment_id).await;
    }

    /// Keeps the cache in step with `changes` until `shutdown` is cancelled. Subscribe
    /// before spawning so no change committed after start-up is missed.
    pub async fn follow(
        self,
        mut changes: tokio::sync::broadcast::Receiver<EnvChanged>,
        shutdown: CancellationToken,
    ) {
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = changes.recv() => received,
            };
            match received {
                Ok(change) => {
                    if let Err(error) = self.apply(change).await {
                        tracing::warn!(environment_id = change.environment_id, %error,
                            "reloading changed environment failed; dropping it from the cache");
                        self.0.cache.invalidate(&change.environment_id).await;
                    }
                }
                // Changes were dropped: we cannot tell which environments moved, so every
                // cached one is reloaded (mini-redis ignores `Lagged`; we must not).
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "snapshot cache lagged behind the change feed; reloading all"
                    );
                    self.refresh_all().await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Subscribes to `feed` and spawns [`SnapshotCache::follow`] on `tasks`.
    pub fn spawn_follower(
        &self,
        feed: &ChangeFeed,
        tasks: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
    ) {
        let receiver = feed.subscribe();
        tasks.spawn(self.clone().follow(receiver, shutdown));
    }
}

impl Inner {
    async fn load(&self, environment_id: i64) -> Result<Arc<CompiledEnvironment>, SnapshotError> {
        let env = load_environment(&self.db, environment_id)
            .await?
            .ok_or(SnapshotError::EnvironmentNotFound(environment_id))?;
        // Compiled inline: an environment of a few hundred flags compiles in well under a
        // millisecond, and this runs on a miss or after a write, never per evaluation.
        let mut compiled = CompiledEnvironment::compile(environment_id, &env);
        let Some(counted) = &self.counted else {
            return Ok(Arc::new(compiled));
        };
        compiled.snapshot =
            std::mem::replace(&mut compiled.snapshot, Snapshot::empty()).with_counting();
        let compiled = Arc::new(compiled);
        // Listed even if it never reaches the cache (a load that lost to a newer one):
        // it is then dropped at the next drain, having counted nothing.
        counted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(compiled.clone());
        Ok(compiled)
    }
}
