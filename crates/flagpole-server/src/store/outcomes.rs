//! Outcomes of flag-controlled code paths (migration 0016): writing what `guard` and
//! `shadow` report, rolling the hours up into days, and reading them back. Kept apart from
//! [`super::ingest`]'s statements; [`super::ingest::commit`] calls [`upsert`] in its
//! transaction.

use std::collections::BTreeMap;

use sqlx::AssertSqlSafe;

use super::ingest::{DAY_MS, HOUR_MS};
use super::insights::Granularity;
use super::{Conn, StoreResult};

/// One hourly outcome increment's identity, already summed over every batch of the commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutcomeKey {
    /// `environment.id`.
    pub environment_id: i64,
    /// Flag key (may name no flag, within the caller's cap).
    pub flag_key: String,
    /// The flag's version.
    pub flag_version: i64,
    /// The variant evaluated (`''` when the evaluation failed).
    pub variant: String,
    /// `guard`, `shadow_current` or `shadow_new`.
    pub kind: String,
    /// Start of the UTC hour (epoch ms).
    pub hour: i64,
}

/// What to add to an [`OutcomeKey`]'s rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeAdd {
    /// Runs.
    pub calls: i64,
    /// Runs that failed.
    pub errors: i64,
    /// Candidate runs that disagreed.
    pub mismatches: i64,
    /// Candidate runs stopped at the time limit.
    pub timeouts: i64,
    /// Candidates not run (bound full).
    pub skipped: i64,
    /// Sum of durations, µs.
    pub duration_us: i64,
    /// End of the latest window (epoch ms).
    pub last_at: i64,
    /// Latency histogram: bucket → runs.
    pub latency: BTreeMap<u32, i64>,
}

/// Most bound parameters per statement (as in [`super::ingest`]).
const MAX_PARAMS: usize = 30_000;

fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..cols)
                .map(|c| format!("${}", r * cols + c + 1))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds `outcomes` (sorted by key, so concurrent writers lock rows in one order) to the
/// hourly rows and marks their days for the rollup. Runs inside the caller's transaction.
pub async fn upsert(
    conn: &mut Conn,
    outcomes: &[(OutcomeKey, OutcomeAdd)],
    now: i64,
) -> StoreResult<()> {
    const COLS: usize = 13;
    for chunk in outcomes.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into outcome_hour (environment_id, flag_key, flag_version, variant, kind, \
             hour, calls, errors, mismatches, timeouts, skipped, duration_us, last_at) values {} \
             on conflict (environment_id, flag_key, hour, flag_version, variant, kind) do update set \
             calls = outcome_hour.calls + excluded.calls, \
             errors = outcome_hour.errors + excluded.errors, \
             mismatches = outcome_hour.mismatches + excluded.mismatches, \
             timeouts = outcome_hour.timeouts + excluded.timeouts, \
             skipped = outcome_hour.skipped + excluded.skipped, \
             duration_us = outcome_hour.duration_us + excluded.duration_us, \
             last_at = case when excluded.last_at > outcome_hour.last_at \
               then excluded.last_at else outcome_hour.last_at end",
            values(chunk.len(), COLS)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for (k, add) in chunk {
            query = query
                .bind(k.environment_id)
                .bind(k.flag_key.clone())
                .bind(k.flag_version)
                .bind(k.variant.clone())
                .bind(k.kind.clone())
                .bind(k.hour)
                .bind(add.calls)
                .bind(add.errors)
                .bind(add.mismatches)
                .bind(add.timeouts)
                .bind(add.skipped)
                .bind(add.duration_us)
                .bind(add.last_at);
        }
        query.execute(&mut *conn).await?;
    }
    let buckets: Vec<(&OutcomeKey, u32, i64)> = outcomes
        .iter()
        .flat_map(|(k, add)| add.latency.iter().map(move |(b, n)| (k, *b, *n)))
        .collect();
    const BCOLS: usize = 8;
    for chunk in buckets.chunks(MAX_PARAMS / BCOLS) {
        let sql = format!(
            "insert into outcome_latency_hour (environment_id, flag_key, flag_version, variant, \
             kind, hour, bucket, n) values {} \
             on conflict (environment_id, flag_key, hour, flag_version, variant, kind, bucket) \
             do update set n = outcome_latency_hour.n + excluded.n",
            values(chunk.len(), BCOLS)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for (k, bucket, n) in chunk {
            query = query
                .bind(k.environment_id)
                .bind(k.flag_key.clone())
                .bind(k.flag_version)
                .bind(k.variant.clone())
                .bind(k.kind.clone())
                .bind(k.hour)
                .bind(i64::from(*bucket))
                .bind(*n);
        }
        query.execute(&mut *conn).await?;
    }
    let mut days: Vec<(i64, i64)> = outcomes
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
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for (env, day) in chunk {
            query = query.bind(*env).bind(*day).bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces one day's outcome rows by the sums of its hours; run by the rollup in the
/// transaction that holds the day's mark.
pub async fn roll_up_day(conn: &mut Conn, environment_id: i64, day: i64) -> StoreResult<()> {
    for table in ["outcome_day", "outcome_latency_day"] {
        sqlx::query(AssertSqlSafe(format!(
            "delete from {table} where environment_id = $1 and day = $2"
        )))
        .bind(environment_id)
        .bind(day)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "insert into outcome_day (environment_id, flag_key, flag_version, variant, kind, day, \
         calls, errors, mismatches, timeouts, skipped, duration_us, last_at) \
         select environment_id, flag_key, flag_version, variant, kind, $2, sum(calls), \
         sum(errors), sum(mismatches), sum(timeouts), sum(skipped), sum(duration_us), \
         max(last_at) from outcome_hour \
         where environment_id = $1 and hour >= $2 and hour < $3 \
         group by environment_id, flag_key, flag_version, variant, kind",
    )
    .bind(environment_id)
    .bind(day)
    .bind(day + DAY_MS)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into outcome_latency_day (environment_id, flag_key, flag_version, variant, kind, \
         day, bucket, n) \
         select environment_id, flag_key, flag_version, variant, kind, $2, bucket, sum(n) \
         from outcome_latency_hour where environment_id = $1 and hour >= $2 and hour < $3 \
         group by environment_id, flag_key, flag_version, variant, kind, bucket",
    )
    .bind(environment_id)
    .bind(day)
    .bind(day + DAY_MS)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The hourly and daily tables with their time column, for retention: (table, column,
/// hourly or not).
pub const TABLES: [(&str, &str, bool); 4] = [
    ("outcome_hour", "hour", true),
    ("outcome_latency_hour", "hour", true),
    ("outcome_day", "day", false),
    ("outcome_latency_day", "day", false),
];

/// One (bucket, variant, kind)'s sums, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomePoint {
    /// Bucket start (epoch ms).
    pub at: i64,
    /// Variant.
    pub variant: String,
    /// Kind.
    pub kind: String,
    /// Runs.
    pub calls: i64,
    /// Failed runs.
    pub errors: i64,
    /// Mismatching candidate runs.
    pub mismatches: i64,
    /// Timed-out candidate runs.
    pub timeouts: i64,
    /// Skipped candidates.
    pub skipped: i64,
    /// Sum of durations, µs.
    pub duration_us: i64,
    /// Latency histogram (bucket, runs), buckets increasing.
    pub latency: Vec<(u32, u64)>,
}

/// (bucket, variant, kind, calls, errors, mismatches, timeouts, skipped, duration_us).
type SumsRow = (i64, String, String, i64, i64, i64, i64, i64, i64);

/// The outcomes of flag `flag_key` in environment `environment_id` in buckets from `from`
/// (inclusive) to `to` (exclusive), per bucket, variant and kind (all flag versions
/// together), oldest first.
pub async fn series(
    conn: &mut Conn,
    environment_id: i64,
    flag_key: &str,
    granularity: Granularity,
    from: i64,
    to: i64,
) -> StoreResult<Vec<OutcomePoint>> {
    let (table, latency, column) = match granularity {
        Granularity::Hour => ("outcome_hour", "outcome_latency_hour", "hour"),
        Granularity::Day => ("outcome_day", "outcome_latency_day", "day"),
    };
    let sums: Vec<SumsRow> = sqlx::query_as(AssertSqlSafe(format!(
        "select {column}, variant, kind, cast(sum(calls) as bigint), \
             cast(sum(errors) as bigint), cast(sum(mismatches) as bigint), \
             cast(sum(timeouts) as bigint), cast(sum(skipped) as bigint), \
             cast(sum(duration_us) as bigint) from {table} \
             where environment_id = $1 and flag_key = $2 and {column} >= $3 and {column} < $4 \
             group by {column}, variant, kind order by {column}, variant, kind"
    )))
    .bind(environment_id)
    .bind(flag_key)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let buckets: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "select {column}, variant, kind, bucket, cast(sum(n) as bigint) from {latency} \
         where environment_id = $1 and flag_key = $2 and {column} >= $3 and {column} < $4 \
         group by {column}, variant, kind, bucket order by {column}, variant, kind, bucket"
    )))
    .bind(environment_id)
    .bind(flag_key)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut histograms: BTreeMap<(i64, String, String), Vec<(u32, u64)>> = BTreeMap::new();
    for (at, variant, kind, bucket, n) in buckets {
        histograms.entry((at, variant, kind)).or_default().push((
            u32::try_from(bucket).unwrap_or(0),
            u64::try_from(n).unwrap_or(0),
        ));
    }
    Ok(sums
        .into_iter()
        .map(
            |(at, variant, kind, calls, errors, mismatches, timeouts, skipped, duration_us)| {
                let latency = histograms
                    .remove(&(at, variant.clone(), kind.clone()))
                    .unwrap_or_default();
                OutcomePoint {
                    at,
                    variant,
                    kind,
                    calls,
                    errors,
                    mismatches,
                    timeouts,
                    skipped,
                    duration_us,
                    latency,
                }
            },
        )
        .collect())
}

/// The hour a window belongs to: the one it starts in.
pub fn hour_of(start_ms: i64) -> i64 {
    start_ms - start_ms.rem_euclid(HOUR_MS)
}
