//! Keeping `env_change` bounded.
//!
//! Every write records which keys changed at its new version, and a hub builds each patch
//! from the rows after the version it holds (`store::snapshot::load_patch`). Hubs are at
//! most a periodic check (seconds) behind their database, so only recent rows are ever
//! read; left alone the table would grow with every write forever (at 500 writes a second,
//! 43 million rows a day). Each environment keeps the history of its last
//! [`KEEP_VERSIONS`] versions, and `environment.history_from` records where that history
//! starts: a hub holding an older version is sent the whole environment as one patch.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::store::change_log;

/// Versions of change history each environment keeps.
pub const KEEP_VERSIONS: u64 = 10_000;

/// How often the history is pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Prunes every [`PRUNE_INTERVAL`] until shutdown. Every replica runs one: pruning is
/// idempotent, and a replica that loses a race prunes nothing.
pub(crate) async fn prune_periodically(db: Db, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match prune(&db, KEEP_VERSIONS).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "pruned change history"),
            Err(error) => tracing::warn!(%error, "pruning change history failed; will retry"),
        }
    }
}

/// Versions whose rows one delete statement removes: a backlog (a database from before
/// pruning) goes in many short statements rather than one long one.
const DELETE_BATCH: i64 = 1_000;

/// Drops each environment's change history except its last `keep` versions. Returns the
/// number of rows deleted.
///
/// The start of the history (`history_from`) moves first, in a short transaction of its
/// own; only then are the rows below it deleted, in batches and outside any transaction
/// that holds an environment's row (writes to the environment never wait for a delete).
/// That order is what makes it safe: a patch read checks `history_from` in the same
/// snapshot as the rows it reads, so once the start has moved nothing reads the rows below
/// it, and a read that began before still sees them in its snapshot.
pub async fn prune(db: &Db, keep: u64) -> Result<u64, sqlx::Error> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let mut deleted = 0;
    for environment_id in change_log::environments_to_prune(db, keep).await? {
        let Some(history_from) = change_log::move_history_from(db, environment_id, keep).await?
        else {
            continue; // another replica moved it first, and deletes the rows
        };
        // From the oldest row left, not from the previous start: a prune interrupted
        // between moving the start and deleting leaves rows below it, collected here.
        let oldest = change_log::oldest_change(db, environment_id).await?;
        let mut low = oldest.unwrap_or(history_from + 1) - 1;
        while low < history_from {
            let high = (low + DELETE_BATCH).min(history_from);
            deleted += change_log::delete_changes(db, environment_id, low, high).await?;
            low = high;
        }
    }
    Ok(deleted)
}
