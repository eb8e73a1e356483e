//! Upkeep of the telemetry tables (migration 0006): rolling hourly counters up into daily
//! rows, creating raw partitions ahead, and retention: dropping raw partitions on
//! Postgres, deleting rows everywhere else. Run by `crate::ingest::upkeep`.

use sqlx::AssertSqlSafe;

use super::StoreResult;
use super::ingest::{DAY_MS, RAW_TABLES, ensure_partitions, partition_day};
use crate::db::{Backend, Db};

/// Days marked for rollup handled per call, so one call stays short.
const ROLLUP_BATCH: i64 = 200;

/// Recomputes the daily rows of days whose hours changed; how many days were rolled up.
/// Each day is one transaction that locks its mark, replaces the day's rows by the sums
/// of its hours and deletes the mark (see the migration for why no write is lost).
pub async fn roll_up(db: &Db) -> StoreResult<usize> {
    let marked: Vec<(i64, i64)> =
        sqlx::query_as("select environment_id, day from eval_rollup_pending order by day limit $1")
            .bind(ROLLUP_BATCH)
            .fetch_all(&db.pool)
            .await?;
    let lock = match db.backend {
        // skip locked: another replica is rolling this day up right now.
        Backend::Postgres => " for update skip locked",
        // SQLite's `begin immediate` already holds the one write lock.
        Backend::Sqlite => "",
    };
    let mut done = 0;
    for (environment_id, day) in marked {
        let mut tx = db.begin_write().await?;
        let still: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "select day from eval_rollup_pending where environment_id = $1 and day = $2{lock}"
        )))
        .bind(environment_id)
        .bind(day)
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            continue;
        }
        sqlx::query("delete from eval_count_day where environment_id = $1 and day = $2")
            .bind(environment_id)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "insert into eval_count_day (environment_id, flag_key, flag_version, variant, reason, \
             rule, error, day, n, last_at) \
             select environment_id, flag_key, flag_version, variant, reason, rule, error, $2, \
             sum(n), max(last_at) from eval_count_hour \
             where environment_id = $1 and hour >= $2 and hour < $3 \
             group by environment_id, flag_key, flag_version, variant, reason, rule, error",
        )
        .bind(environment_id)
        .bind(day)
        .bind(day + DAY_MS)
        .execute(&mut *tx)
        .await?;
        super::outcomes::roll_up_day(&mut tx, environment_id, day).await?;
        sqlx::query("delete from eval_rollup_pending where environment_id = $1 and day = $2")
            .bind(environment_id)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        done += 1;
    }
    Ok(done)
}

/// How long each kind of row is kept, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Exposures and tracked events.
    pub raw_ms: i64,
    /// Hourly counters.
    pub hourly_ms: i64,
    /// Daily counters.
    pub daily_ms: i64,
    /// Batch ids (at least 24 h: the SDK's redelivery promise).
    pub batch_ids_ms: i64,
}

/// What [`apply_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Names of dropped partitions (Postgres).
    pub partitions: Vec<String>,
    /// Rows deleted.
    pub rows: u64,
}

/// Removes what is older than `retention` allows at `now`.
pub async fn apply_retention(db: &Db, retention: &Retention, now: i64) -> StoreResult<Removed> {
    let mut removed = Removed::default();
    let raw_cutoff = now - retention.raw_ms;
    match db.backend {
        Backend::Postgres => {
            // A partition goes once all of its day is older than the cutoff.
            for (table, name, day) in raw_partitions(db).await? {
                if day + DAY_MS <= raw_cutoff {
                    sqlx::raw_sql(AssertSqlSafe(format!("drop table if exists {name}")))
                        .execute(&db.pool)
                        .await?;
                    tracing::info!(table, partition = %name, "dropped raw telemetry partition");
                    removed.partitions.push(name);
                }
            }
        }
        Backend::Sqlite => {
            for table in RAW_TABLES {
                removed.rows += delete_before(db, table, "at_ms", raw_cutoff).await?;
            }
        }
    }
    removed.rows += delete_before(db, "eval_count_hour", "hour", now - retention.hourly_ms).await?;
    removed.rows += delete_before(db, "eval_count_day", "day", now - retention.daily_ms).await?;
    for (table, column, hourly) in super::outcomes::TABLES {
        let keep = if hourly {
            retention.hourly_ms
        } else {
            retention.daily_ms
        };
        removed.rows += delete_before(db, table, column, now - keep).await?;
    }
    removed.rows += delete_before(
        db,
        "telemetry_batch",
        "received_at",
        now - retention.batch_ids_ms,
    )
    .await?;
    // Events held for an exposure that did not come within their metric's window
    // (migration 0015).
    removed.rows += delete_before(db, "experiment_pending_event", "expires_at", now).await?;
    // Applications silent for as long as hourly counters are kept are no longer connected.
    removed.rows += delete_before(db, "sdk_app", "last_seen", now - retention.hourly_ms).await?;
    Ok(removed)
}

async fn delete_before(db: &Db, table: &str, column: &str, cutoff: i64) -> StoreResult<u64> {
    let sql = format!("delete from {table} where {column} < $1");
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(cutoff)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected())
}

/// The raw tables' daily partitions: (table, partition, day).
pub async fn raw_partitions(db: &Db) -> StoreResult<Vec<(&'static str, String, i64)>> {
    if db.backend != Backend::Postgres {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for table in RAW_TABLES {
        let names: Vec<String> = sqlx::query_scalar(
            "select c.relname::text from pg_inherits i \
             join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent \
             where p.relname = $1 order by c.relname",
        )
        .bind(table)
        .fetch_all(&db.pool)
        .await?;
        for name in names {
            if let Some(day) = partition_day(table, &name) {
                out.push((table, name, day));
            }
        }
    }
    Ok(out)
}

/// Creates the raw partitions from `back` days before `now`'s day to `ahead` days after.
pub async fn create_partitions(db: &Db, now: i64, back: i64, ahead: i64) -> StoreResult<()> {
    let today = now - now.rem_euclid(DAY_MS);
    let days: Vec<i64> = (-back..=ahead).map(|d| today + d * DAY_MS).collect();
    ensure_partitions(db, &days).await
}
