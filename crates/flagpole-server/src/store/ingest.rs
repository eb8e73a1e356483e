//! Writing what SDKs report (migration 0006): one transaction per group of batches, which
//! claims the batches' ids, upserts the counters, appends exposures and events, adds them
//! to the running experiments' per-unit aggregates (`store::experiment`), and updates the
//! applications. The caller ([`crate::ingest`]) decides what the rows are;
//! this module only writes them.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use super::{Conn, StoreResult};
use crate::db::{Backend, Db};

/// Milliseconds in an hour and a day: counters and partitions are cut on UTC boundaries.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// One hourly counter increment, already summed over every batch of the commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    /// `environment.id`.
    pub environment_id: i64,
    /// Flag key as evaluated (may name no flag, within the caller's cap).
    pub flag_key: String,
    /// The flag's version.
    pub flag_version: i64,
    /// Served variant, `''` on error.
    pub variant: String,
    /// Reason code.
    pub reason: String,
    /// Rule id, `''` when none.
    pub rule: String,
    /// Error code, `''` when none.
    pub error: String,
    /// Start of the UTC hour (epoch ms).
    pub hour: i64,
}

/// How much to add to a [`CountKey`]'s row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountAdd {
    /// Evaluations.
    pub n: i64,
    /// End of the latest window (epoch ms).
    pub last_at: i64,
}

/// One exposure row.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRow {
    /// `environment.id`.
    pub environment_id: i64,
    /// Flag key.
    pub flag_key: String,
    /// Flag version.
    pub flag_version: i64,
    /// Variant seen.
    pub variant: String,
    /// The context's key.
    pub context_key: String,
    /// When (epoch ms).
    pub at_ms: i64,
}

/// One tracked event row.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// `environment.id`.
    pub environment_id: i64,
    /// Event name.
    pub name: String,
    /// The context's key.
    pub context_key: String,
    /// Its value, if any (finite).
    pub value: Option<f64>,
    /// Properties as a JSON object.
    pub properties: String,
    /// When (epoch ms).
    pub at_ms: i64,
}

/// An application's identity in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppKey {
    /// `environment.id`.
    pub environment_id: i64,
    /// Application name (may be empty).
    pub app: String,
    /// Application version (may be empty).
    pub app_version: String,
    /// SDK name and version.
    pub sdk: String,
}

/// What to add to an application's row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppAdd {
    /// Batches received.
    pub batches: i64,
    /// Evaluations counted.
    pub evaluations: i64,
    /// Events its SDK dropped.
    pub dropped: i64,
}

/// Everything one commit writes besides the batch ids.
#[derive(Debug, Default)]
pub struct Rows {
    /// Counter increments, one per distinct key.
    pub counts: Vec<(CountKey, CountAdd)>,
    /// Exposures.
    pub exposures: Vec<ExposureRow>,
    /// Tracked events.
    pub events: Vec<EventRow>,
    /// Application increments, one per distinct application.
    pub apps: Vec<(AppKey, AppAdd)>,
    /// Outcome increments of `guard` and `shadow` (migration 0016), one per distinct key.
    pub outcomes: Vec<(super::outcomes::OutcomeKey, super::outcomes::OutcomeAdd)>,
}

/// Most bound parameters per statement: under Postgres's 65,535 and SQLite's 32,766.
const MAX_PARAMS: usize = 30_000;

/// Claims `ids` (environment, batch id) and writes what `rows` makes of the claimed ones,
/// in one transaction. `rows` gets, per id, whether it was new (not stored before and not
/// earlier in `ids`); the return value is that same list. Nothing is written if anything
/// fails, so the caller may retry the whole group.
pub async fn commit<F>(db: &Db, ids: &[(i64, &str)], now: i64, rows: F) -> StoreResult<Vec<bool>>
where
    F: FnOnce(&[bool]) -> Rows,
{
    let mut tx = db.begin_write().await?;
    let fresh = claim(&mut tx, ids, now).await?;
    let rows = rows(&fresh);
    upsert_counts(&mut tx, &rows.counts, now).await?;
    insert_exposures(&mut tx, &rows.exposures).await?;
    insert_events(&mut tx, &rows.events).await?;
    // The running experiments' per-unit aggregates, in the same transaction: an
    // acknowledged batch is in the results as soon as it is committed.
    super::experiment::accumulate(&mut tx, &rows.exposures, &rows.events).await?;
    upsert_apps(&mut tx, &rows.apps, now).await?;
    super::outcomes::upsert(&mut tx, &rows.outcomes, now).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// Inserts the ids, skipping stored ones; which were new.
async fn claim(conn: &mut Conn, ids: &[(i64, &str)], now: i64) -> StoreResult<Vec<bool>> {
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<(i64, &str)> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    // One order for every writer: two replicas claiming the same ids in different orders
    // would otherwise wait on each other's uniqueness checks (a deadlock).
    unique.sort_unstable();
    let mut inserted = std::collections::HashSet::new();
    for chunk in unique.chunks(MAX_PARAMS / 3) {
        let sql = format!(
            "insert into telemetry_batch (environment_id, id, received_at) values {} \
             on conflict do nothing returning environment_id, id",
            values(chunk.len(), 3)
        );
        let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql)).persistent(false);
        for (env, id) in chunk {
            query = query.bind(*env).bind(*id).bind(now);
        }
        inserted.extend(query.fetch_all(&mut *conn).await?);
    }
    // The first occurrence of a newly inserted id is new; a repeat in the same group is not.
    Ok(ids
        .iter()
        .map(|(env, id)| inserted.remove(&(*env, (*id).to_owned())))
        .collect())
}

/// `($1, $2, $3), ($4, $5, $6), ...` for `rows` rows of `cols` columns.
pub(crate) fn values(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

fn statement(sql: String) -> Query<'static, Any, AnyArguments> {
    // Statement text varies with the number of rows: not worth a prepared statement each.
    sqlx::query(AssertSqlSafe(sql)).persistent(false)
}

async fn upsert_counts(
    conn: &mut Conn,
    counts: &[(CountKey, CountAdd)],
    now: i64,
) -> StoreResult<()> {
    const COLS: usize = 10;
    for chunk in counts.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into eval_count_hour \
             (environment_id, flag_key, flag_version, variant, reason, rule, error, hour, n, last_at) \
             values {} on conflict (environment_id, flag_key, hour, flag_version, variant, reason, rule, error) \
             do update set n = eval_count_hour.n + excluded.n, \
             last_at = case when excluded.last_at > eval_count_hour.last_at \
               then excluded.last_at else eval_count_hour.last_at end",
            values(chunk.len(), COLS)
        );
        let mut query = statement(sql);
        for (k, add) in chunk {
            query = query
                .bind(k.environment_id)
                .bind(k.flag_key.clone())
                .bind(k.flag_version)
                .bind(k.variant.clone())
                .bind(k.reason.clone())
                .bind(k.rule.clone())
                .bind(k.error.clone())
                .bind(k.hour)
                .bind(add.n)
                .bind(add.last_at);
        }
        query.execute(&mut *conn).await?;
    }
    // The days these hours belong to need their daily rows recomputed.
    let mut days: Vec<(i64, i64)> = counts
        .iter()
        .map(|(k, _)| (k.environment_id, k.hour - k.hour.rem_euclid(DAY_MS)))
        .collect();
    days.sort_unstable();
    days.dedup();
    for chunk in days.chunks(MAX_PARAMS / 3) {
        let sql = format!(
            "insert into eval_rollup_pending (environment_id, day, marked_at) values {} \
             on conflict (environment_id, day) do update set marked_at = excluded.marked_at",
            values(chunk.len(), 3)
        );
        let mut query = statement(sql);
        for (env, day) in chunk {
            query = query.bind(*env).bind(*day).bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_exposures(conn: &mut Conn, rows: &[ExposureRow]) -> StoreResult<()> {
    const COLS: usize = 6;
    for chunk in rows.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into exposure \
             (environment_id, flag_key, flag_version, variant, context_key, at_ms) values {}",
            values(chunk.len(), COLS)
        );
        let mut query = statement(sql);
        for r in chunk {
            query = query
                .bind(r.environment_id)
                .bind(r.flag_key.clone())
                .bind(r.flag_version)
                .bind(r.variant.clone())
                .bind(r.context_key.clone())
                .bind(r.at_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_events(conn: &mut Conn, rows: &[EventRow]) -> StoreResult<()> {
    const COLS: usize = 6;
    for chunk in rows.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into tracked_event \
             (environment_id, name, context_key, value, properties, at_ms) values {}",
            values(chunk.len(), COLS)
        );
        let mut query = statement(sql);
        for r in chunk {
            query = query
                .bind(r.environment_id)
                .bind(r.name.clone())
                .bind(r.context_key.clone())
                .bind(r.value)
                .bind(r.properties.clone())
                .bind(r.at_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn upsert_apps(conn: &mut Conn, apps: &[(AppKey, AppAdd)], now: i64) -> StoreResult<()> {
    const COLS: usize = 9;
    for chunk in apps.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into sdk_app (environment_id, app, app_version, sdk, batches, evaluations, \
             dropped, first_seen, last_seen) values {} \
             on conflict (environment_id, app, app_version, sdk) do update set \
             batches = sdk_app.batches + excluded.batches, \
             evaluations = sdk_app.evaluations + excluded.evaluations, \
             dropped = sdk_app.dropped + excluded.dropped, last_seen = excluded.last_seen",
            values(chunk.len(), COLS)
        );
        let mut query = statement(sql);
        for (k, add) in chunk {
            query = query
                .bind(k.environment_id)
                .bind(k.app.clone())
                .bind(k.app_version.clone())
                .bind(k.sdk.clone())
                .bind(add.batches)
                .bind(add.evaluations)
                .bind(add.dropped)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Creates the daily partitions of the raw tables for `days` (starts of UTC days) that do
/// not exist yet. Postgres only: SQLite's raw tables are not partitioned.
pub async fn ensure_partitions(db: &Db, days: &[i64]) -> StoreResult<()> {
    if db.backend != Backend::Postgres {
        return Ok(());
    }
    let mut conn = db.pool.acquire().await?;
    for &day in days {
        for table in RAW_TABLES {
            let sql = format!(
                "create table if not exists {} partition of {table} for values from ({day}) to ({})",
                partition_name(table, day),
                day + DAY_MS
            );
            // Two replicas creating the same partition at once: the loser's `if not exists`
            // can still fail on the catalog's unique index; the partition exists then.
            if let Err(error) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await {
                let exists: bool =
                    sqlx::query_scalar("select count(*) > 0 from pg_class where relname = $1")
                        .bind(partition_name(table, day))
                        .fetch_one(&mut *conn)
                        .await?;
                if !exists {
                    return Err(error.into());
                }
            }
        }
    }
    Ok(())
}

/// The partitioned raw tables.
pub const RAW_TABLES: [&str; 2] = ["exposure", "tracked_event"];

/// `exposure_p20261207` for the day starting at `day` (epoch ms).
pub fn partition_name(table: &str, day: i64) -> String {
    let days = day.div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    format!("{table}_p{y:04}{m:02}{d:02}")
}

/// The day (epoch ms) a partition name stands for, if it is one of ours.
pub fn partition_day(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = digits[..4].parse().ok()?;
    let m: u32 = digits[4..6].parse().ok()?;
    let d: u32 = digits[6..].parse().ok()?;
    Some(days_from_civil(y, m, d) * DAY_MS)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_through_days() {
        // 2026-12-07T00:00:00Z
        let day = 1_796_601_600_000;
        assert_eq!(partition_name("exposure", day), "exposure_p20261207");
        assert_eq!(partition_day("exposure", "exposure_p20261207"), Some(day));
        assert_eq!(partition_name("exposure", 0), "exposure_p19700101");
        for n in [-1000, 0, 59, 60, 10_957, 20_000, 30_000] {
            let name = partition_name("t", n * DAY_MS);
            assert_eq!(partition_day("t", &name), Some(n * DAY_MS), "{name}");
        }
        assert_eq!(partition_day("exposure", "exposure_default"), None);
        assert_eq!(partition_day("exposure", "tracked_event_p20261207"), None);
    }

    #[test]
    fn values_numbers_placeholders_row_by_row() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
