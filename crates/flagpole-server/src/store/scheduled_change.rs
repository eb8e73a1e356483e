//! The `scheduled_change` table (migration 0013): flag changes waiting for their time, the
//! claim that hands each due one to exactly one replica, and the Postgres notification
//! that wakes the replicas' schedulers when one is created.

use flagpole_core::model::FlagConfig;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;

use super::{Conn, StoreError, StoreResult, from_text, to_text};

/// The Postgres channel a new (or rebased) change is announced on; the payload is unused.
const CHANNEL: &str = "flagpole_scheduled";

/// What a scheduled change does: the JSON body of the REST edit it stands for, without
/// the version (the change's `base_version` takes its place).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScheduledEdit {
    /// The whole config, as `PUT .../flags/{flag}/environments/{env}` takes it.
    Config {
        /// The config to write.
        config: FlagConfig,
    },
    /// The kill switch, as `POST .../environments/{env}/toggle` takes it.
    Toggle {
        /// On or off.
        enabled: bool,
    },
}

/// Where a scheduled change is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScheduledState {
    /// Waiting for its time.
    Scheduled,
    /// Written by the scheduler.
    Applied,
    /// Not applied: the flag changed after it was scheduled; rebase or cancel it.
    Conflict,
    /// Cancelled by a person.
    Cancelled,
    /// Not applied: the write refused it (`error` says why).
    Failed,
}

impl ScheduledState {
    /// The stored name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ScheduledState::Scheduled => "scheduled",
            ScheduledState::Applied => "applied",
            ScheduledState::Conflict => "conflict",
            ScheduledState::Cancelled => "cancelled",
            ScheduledState::Failed => "failed",
        }
    }

    /// The state a stored name stands for.
    pub(crate) fn parse(name: &str) -> Option<ScheduledState> {
        Some(match name {
            "scheduled" => ScheduledState::Scheduled,
            "applied" => ScheduledState::Applied,
            "conflict" => ScheduledState::Conflict,
            "cancelled" => ScheduledState::Cancelled,
            "failed" => ScheduledState::Failed,
            _ => return None,
        })
    }
}

/// A stored scheduled change with the keys of what it names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScheduledChange {
    pub(crate) id: i64,
    pub(crate) project_id: i64,
    pub(crate) project_key: String,
    pub(crate) environment_id: i64,
    pub(crate) environment_key: String,
    pub(crate) flag_id: i64,
    pub(crate) flag_key: String,
    pub(crate) edit: ScheduledEdit,
    pub(crate) comment: String,
    /// Due time, epoch ms.
    pub(crate) at: i64,
    pub(crate) base_version: i64,
    pub(crate) state: ScheduledState,
    pub(crate) scheduled_by: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) applied_at: Option<i64>,
    pub(crate) applied_by: Option<String>,
    pub(crate) applied_version: Option<i64>,
    pub(crate) cancelled_by: Option<String>,
    pub(crate) error: Option<String>,
}

/// Columns in [`RawRow`]'s order; `c` is the change, `p`, `e`, `f` what it names.
const SELECT: &str = "select c.id, c.project_id, p.key as project_key, c.environment_id, \
     e.key as environment_key, c.flag_id, f.key as flag_key, c.change, c.comment, c.at, c.base_version, c.state, c.scheduled_by, c.created_at, \
     c.updated_at, c.applied_at, c.applied_by, c.applied_version, c.cancelled_by, c.error \
     from scheduled_change c join project p on p.id = c.project_id \
     join environment e on e.id = c.environment_id join flag f on f.id = c.flag_id";

/// A row as selected (sqlx decodes tuples of at most 16 columns).
#[derive(sqlx::FromRow)]
struct RawRow {
    id: i64,
    project_id: i64,
    project_key: String,
    environment_id: i64,
    environment_key: String,
    flag_id: i64,
    flag_key: String,
    change: String,
    comment: String,
    at: i64,
    base_version: i64,
    state: String,
    scheduled_by: String,
    created_at: i64,
    updated_at: i64,
    applied_at: Option<i64>,
    applied_by: Option<String>,
    applied_version: Option<i64>,
    cancelled_by: Option<String>,
    error: Option<String>,
}

fn parse(row: RawRow) -> StoreResult<ScheduledChange> {
    let what = |part: &str| format!("scheduled_change {} {part}", row.id);
    let state = ScheduledState::parse(&row.state)
        .ok_or_else(|| StoreError::corrupt(what("state"), format!("`{}`", row.state)))?;
    Ok(ScheduledChange {
        edit: from_text(&what("change"), &row.change)?,
        id: row.id,
        project_id: row.project_id,
        project_key: row.project_key,
        environment_id: row.environment_id,
        environment_key: row.environment_key,
        flag_id: row.flag_id,
        flag_key: row.flag_key,
        comment: row.comment,
        at: row.at,
        base_version: row.base_version,
        state,
        scheduled_by: row.scheduled_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        applied_at: row.applied_at,
        applied_by: row.applied_by,
        applied_version: row.applied_version,
        cancelled_by: row.cancelled_by,
        error: row.error,
    })
}

fn is_postgres(conn: &Conn) -> bool {
    conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME
}

/// A change as scheduled.
#[derive(Debug)]
pub(crate) struct NewScheduledChange<'a> {
    pub(crate) project_id: i64,
    pub(crate) environment_id: i64,
    pub(crate) flag_id: i64,
    pub(crate) edit: &'a ScheduledEdit,
    pub(crate) comment: &'a str,
    pub(crate) at: i64,
    pub(crate) base_version: i64,
    pub(crate) scheduled_by: &'a str,
}

/// Inserts a change in state `scheduled` and announces it to every replica's scheduler
/// ([`notify`]); its id.
pub(crate) async fn insert(
    conn: &mut Conn,
    new: &NewScheduledChange<'_>,
    now: i64,
) -> StoreResult<i64> {
    let id = sqlx::query_scalar(
        "insert into scheduled_change (project_id, environment_id, flag_id, change, comment, \
         at, base_version, state, scheduled_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $9, $9) returning id",
    )
    .bind(new.project_id)
    .bind(new.environment_id)
    .bind(new.flag_id)
    .bind(to_text(new.edit)?)
    .bind(new.comment)
    .bind(new.at)
    .bind(new.base_version)
    .bind(new.scheduled_by)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    notify(conn).await?;
    Ok(id)
}

/// Wakes every replica's scheduler when the transaction commits (Postgres delivers
/// notifications only then); a no-op on SQLite, whose one process wakes its own loop.
pub(crate) async fn notify(conn: &mut Conn) -> StoreResult<()> {
    if !is_postgres(conn) {
        return Ok(());
    }
    // `pg_notify` returns void, which the Any driver cannot decode (see change_log).
    sqlx::query_scalar::<_, i64>("select count(*) from (select pg_notify($1, '')) as n")
        .bind(CHANNEL)
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Subscribes `listener` to [`notify`]'s announcements.
pub(crate) async fn listen(listener: &mut PgListener) -> Result<(), sqlx::Error> {
    listener.listen(CHANNEL).await
}

/// Change `id` of the project.
pub(crate) async fn by_id(
    conn: &mut Conn,
    project_id: i64,
    id: i64,
) -> StoreResult<Option<ScheduledChange>> {
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where c.project_id = $1 and c.id = $2"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// Like [`by_id`], holding the row's lock until the transaction ends, so a person's
/// cancel or rebase and the scheduler's claim of the same change take turns.
pub(crate) async fn lock(
    conn: &mut Conn,
    project_id: i64,
    id: i64,
) -> StoreResult<Option<ScheduledChange>> {
    let lock = if is_postgres(conn) {
        " for update of c"
    } else {
        ""
    };
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where c.project_id = $1 and c.id = $2{lock}"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// Which changes a list returns.
#[derive(Debug, Default)]
pub(crate) struct ListFilter {
    /// Only this flag's.
    pub(crate) flag_id: Option<i64>,
    /// Only this environment's.
    pub(crate) environment_id: Option<i64>,
    /// Only in this state.
    pub(crate) state: Option<ScheduledState>,
}

/// The project's changes matching `filter`, by due time, at most `limit`.
pub(crate) async fn list(
    conn: &mut Conn,
    project_id: i64,
    filter: &ListFilter,
    limit: i64,
) -> StoreResult<Vec<ScheduledChange>> {
    let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where c.project_id = $1 and ($2 is null or c.flag_id = $2) \
         and ($3 is null or c.environment_id = $3) and ($4 is null or c.state = $4) \
         order by c.at, c.id limit $5"
    )))
    .bind(project_id)
    .bind(filter.flag_id)
    .bind(filter.environment_id)
    .bind(filter.state.map(ScheduledState::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(parse).collect()
}

/// Claims the earliest change due at `now` that no other transaction holds, locked until
/// the transaction ends. On Postgres `skip locked` lets each replica take a different
/// one; on SQLite the caller's `begin immediate` already excludes every other writer.
pub(crate) async fn claim_due(conn: &mut Conn, now: i64) -> StoreResult<Option<ScheduledChange>> {
    let lock = if is_postgres(conn) {
        " for update of c skip locked"
    } else {
        ""
    };
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where c.state = 'scheduled' and c.at <= $1 order by c.at, c.id limit 1{lock}"
    )))
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// When the earliest waiting change is due (epoch ms), if any.
pub(crate) async fn next_due(conn: &mut Conn) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("select min(at) from scheduled_change where state = 'scheduled'")
            .fetch_one(conn)
            .await?,
    )
}

/// Records that change `id` was applied by `by`, giving the flag `version`.
pub(crate) async fn mark_applied(
    conn: &mut Conn,
    id: i64,
    by: &str,
    version: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "update scheduled_change set state = 'applied', applied_at = $1, applied_by = $2, \
         applied_version = $3, error = null, updated_at = $1 where id = $4",
    )
    .bind(now)
    .bind(by)
    .bind(version)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that change `id` was not applied (`conflict` or `failed`) and why.
pub(crate) async fn mark_not_applied(
    conn: &mut Conn,
    id: i64,
    state: ScheduledState,
    error: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "update scheduled_change set state = $1, error = $2, updated_at = $3 where id = $4",
    )
    .bind(state.as_str())
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels change `id` on behalf of `by`.
pub(crate) async fn cancel(conn: &mut Conn, id: i64, by: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update scheduled_change set state = 'cancelled', cancelled_by = $1, updated_at = $2 \
         where id = $3",
    )
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Schedules change `id` again on the flag's `base_version`, due at `at`, and wakes the
/// schedulers.
pub(crate) async fn rebase(
    conn: &mut Conn,
    id: i64,
    base_version: i64,
    at: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "update scheduled_change set state = 'scheduled', base_version = $1, at = $2, \
         error = null, updated_at = $3 where id = $4",
    )
    .bind(base_version)
    .bind(at)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    notify(conn).await
}
