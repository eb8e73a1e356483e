//! Keeping `env_change` bounded.
//!
//! Every write records which keys changed at its new version, and a hub builds each patch
//! from the rows after the version it holds ([`super::patch::build_patch`]). Hubs are at
//! most a periodic check (seconds) behind their database, so only recent rows are ever
//! read; left alone the table would grow with every write forever (at 500 writes a second,
//! 43 million rows a day). Each environment keeps the history of its last
//! [`KEEP_VERSIONS`] versions, and `environment.history_from` records where that history
//! starts: a hub holding an older version is sent the whole environment as one patch.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::db::Db;

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

/// Drops each environment's change history except its last `keep` versions and moves its
/// `history_from` up to match, in one transaction, so a patch read never sees the rows
/// gone without the new start. Returns the number of rows deleted.
///
/// One short transaction per environment, each taking that environment's row lock only:
/// a write that bumps several environments locks their rows in its own order, and a
/// pruner holding several at once could deadlock with it.
pub async fn prune(db: &Db, keep: u64) -> Result<u64, sqlx::Error> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let due: Vec<(i64,)> =
        sqlx::query_as("select id from environment where data_version - $1 > history_from")
            .bind(keep)
            .fetch_all(&db.pool)
            .await?;
    let mut deleted = 0;
    for (environment_id,) in due {
        let mut tx = db.begin_write().await?;
        let moved: Option<(i64,)> = sqlx::query_as(
            "update environment set history_from = data_version - $1 \
             where id = $2 and data_version - $1 > history_from returning history_from",
        )
        .bind(keep)
        .bind(environment_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((history_from,)) = moved {
            deleted += sqlx::query(
                "delete from env_change where environment_id = $1 and data_version <= $2",
            )
            .bind(environment_id)
            .bind(history_from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
    }
    Ok(deleted)
}
