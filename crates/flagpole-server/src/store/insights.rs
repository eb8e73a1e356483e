//! Reading what SDKs reported (migration 0006): a flag's evaluations over time, when flags
//! were last evaluated, and the applications connected to an environment.

use serde::Serialize;

use flagpole_core::wire::{MAX_AGE_MS, MAX_SKEW_MS};

use super::ingest::{DAY_MS, HOUR_MS};
use super::{Conn, StoreResult, placeholders};

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Hourly rows (kept 90 days by default).
    Hour,
    /// Daily rows (kept 13 months by default; today's refreshed by the rollup).
    Day,
}

impl Granularity {
    /// Bucket length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }
}

/// Evaluations of one variant with one reason in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// Bucket start (epoch ms, UTC hour or day).
    pub at: i64,
    /// Variant served (`""` for evaluations that errored).
    pub variant: String,
    /// Reason code (`RULE_MATCH`, `FALLTHROUGH`, `ERROR`, ...).
    pub reason: String,
    /// Evaluations.
    pub count: i64,
}

/// The evaluations of flag `flag_key` in environment `environment_id` from `from`
/// (inclusive) to `to` (exclusive), per bucket, variant and reason, oldest first.
pub async fn series(
    conn: &mut Conn,
    environment_id: i64,
    flag_key: &str,
    granularity: Granularity,
    from: i64,
    to: i64,
) -> StoreResult<Vec<SeriesPoint>> {
    let (table, column) = match granularity {
        Granularity::Hour => ("eval_count_hour", "hour"),
        Granularity::Day => ("eval_count_day", "day"),
    };
    let sql = format!(
        "select {column}, variant, reason, cast(sum(n) as bigint) from {table} \
         where environment_id = $1 and flag_key = $2 and {column} >= $3 and {column} < $4 \
         group by {column}, variant, reason order by {column}, variant, reason"
    );
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(environment_id)
        .bind(flag_key)
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(at, variant, reason, count)| SeriesPoint {
            at,
            variant,
            reason,
            count,
        })
        .collect())
}

/// When flag `flag_key` was last evaluated in environment `environment_id` (end of the
/// latest reported window, epoch ms), if ever within the daily retention.
pub async fn last_evaluated(
    conn: &mut Conn,
    environment_id: i64,
    flag_key: &str,
) -> StoreResult<Option<i64>> {
    let last: Option<i64> = sqlx::query_scalar(
        "select max(last_at) from (\
           select max(last_at) as last_at from eval_count_hour \
             where environment_id = $1 and flag_key = $2 \
           union all select max(last_at) from eval_count_day \
             where environment_id = $1 and flag_key = $2) as t",
    )
    .bind(environment_id)
    .bind(flag_key)
    .fetch_one(conn)
    .await?;
    Ok(last)
}

/// When each flag was last evaluated in each environment of project `project_id`, for
/// flag lifecycle ("nothing evaluated it for 7 days"): (environment key, flag key, end of
/// the latest window counted, epoch ms), only where that is at or after `since`; with
/// `keys`, only those flags. One query for a page of flags or a whole project.
///
/// Only counts since `since` are read, so the scan follows the window the rule asks
/// about, not the 90 days of hours kept. A counter's hour (or day) is where its window
/// starts, and windows start at most [`MAX_AGE_MS`] before the batch reached the server,
/// which was at most [`MAX_SKEW_MS`] before `last_at`: rows whose bucket starts before
/// `since` minus those two and one bucket cannot hold a `last_at` at or after `since`.
pub async fn last_evaluated_in_project(
    conn: &mut Conn,
    project_id: i64,
    since: i64,
    keys: Option<&[String]>,
) -> StoreResult<Vec<(String, String, i64)>> {
    let earliest = since - MAX_AGE_MS - MAX_SKEW_MS;
    let keys_sql = match keys {
        Some([]) => return Ok(Vec::new()),
        Some(keys) => format!("and flag_key in ({})", placeholders(5, keys.len())),
        None => String::new(),
    };
    let sql = format!(
        "select e.key, t.flag_key, max(t.last_at) from (\
           select environment_id, flag_key, last_at from eval_count_hour \
             where environment_id in (select id from environment where project_id = $1) \
             and hour >= $2 and last_at >= $4 {keys_sql} \
           union all select environment_id, flag_key, last_at from eval_count_day \
             where environment_id in (select id from environment where project_id = $1) \
             and day >= $3 and last_at >= $4 {keys_sql}\
         ) as t join environment e on e.id = t.environment_id \
         group by e.key, t.flag_key order by e.key, t.flag_key"
    );
    let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(earliest - HOUR_MS)
        .bind(earliest - DAY_MS)
        .bind(since);
    for key in keys.unwrap_or_default() {
        query = query.bind(key.clone());
    }
    Ok(query.fetch_all(conn).await?)
}

/// An application that reported to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConnectedApp {
    /// Application name as configured in its SDK (may be empty).
    pub app: String,
    /// Application version (may be empty).
    pub app_version: String,
    /// SDK name and version (`flagpole-rust/0.1.0`).
    pub sdk: String,
    /// Evaluations it reported.
    pub evaluations: i64,
    /// Batches it sent.
    pub batches: i64,
    /// Exposures and events its SDK dropped (buffer full).
    pub dropped: i64,
    /// First report (epoch ms).
    pub first_seen: i64,
    /// Latest report (epoch ms).
    pub last_seen: i64,
}

/// Most applications listed.
const APPS_LISTED: i64 = 200;

/// The applications that reported to environment `environment_id`, latest first.
pub async fn apps(conn: &mut Conn, environment_id: i64) -> StoreResult<Vec<ConnectedApp>> {
    type Row = (String, String, String, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "select app, app_version, sdk, evaluations, batches, dropped, first_seen, last_seen \
         from sdk_app where environment_id = $1 order by last_seen desc, app, app_version, sdk \
         limit $2",
    )
    .bind(environment_id)
    .bind(APPS_LISTED)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(app, app_version, sdk, evaluations, batches, dropped, first_seen, last_seen)| {
                ConnectedApp {
                    app,
                    app_version,
                    sdk,
                    evaluations,
                    batches,
                    dropped,
                    first_seen,
                    last_seen,
                }
            },
        )
        .collect())
}

/// Exposures and events dropped by the SDKs of environment `environment_id`, in total.
pub async fn dropped_total(conn: &mut Conn, environment_id: i64) -> StoreResult<i64> {
    let total: Option<i64> = sqlx::query_scalar(
        "select cast(coalesce(sum(dropped), 0) as bigint) from sdk_app where environment_id = $1",
    )
    .bind(environment_id)
    .fetch_one(conn)
    .await?;
    Ok(total.unwrap_or(0))
}

/// Counter totals of environment `environment_id` per (flag, variant, reason) over every
/// hour kept: what tests and the load tool compare with what they sent.
pub async fn totals(
    conn: &mut Conn,
    environment_id: i64,
) -> StoreResult<Vec<(String, String, String, i64)>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select flag_key, variant, reason, cast(sum(n) as bigint) from eval_count_hour \
         where environment_id = $1 group by flag_key, variant, reason \
         order by flag_key, variant, reason",
    )
    .bind(environment_id)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Raw rows stored for environment `environment_id`: (exposures, tracked events).
pub async fn raw_counts(conn: &mut Conn, environment_id: i64) -> StoreResult<(i64, i64)> {
    let exposures: i64 =
        sqlx::query_scalar("select count(*) from exposure where environment_id = $1")
            .bind(environment_id)
            .fetch_one(&mut *conn)
            .await?;
    let events: i64 =
        sqlx::query_scalar("select count(*) from tracked_event where environment_id = $1")
            .bind(environment_id)
            .fetch_one(conn)
            .await?;
    Ok((exposures, events))
}
