//! The `alert_mapping` and `alert_firing` tables (migration 0012): per project, which
//! alerts do what, and the firings already acted on.

use serde::Serialize;

use super::{Conn, StoreError, StoreResult, from_text, to_text};
use crate::alerts::{FiringRecord, MappingAction, Matcher};

/// A mapping as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct AlertMapping {
    /// Id, used in URLs.
    pub(crate) id: i64,
    /// The name (`alertname` label) of the alerts it acts on.
    pub(crate) alert: String,
    /// Label matchers that must all hold too.
    pub(crate) matchers: Vec<Matcher>,
    /// What it does.
    pub(crate) action: MappingAction,
    /// Optimistic-concurrency version; an update must name it.
    pub(crate) version: i64,
    /// Who created it.
    pub(crate) created_by: String,
    /// Creation time (epoch ms).
    pub(crate) created_at: i64,
    /// Last change of the mapping itself (epoch ms).
    pub(crate) updated_at: i64,
    /// The last firing it acted on and what it did; `null` until one.
    pub(crate) last_fired: Option<FiringRecord>,
    /// The flag a `flag_off` action names.
    #[serde(skip)]
    pub(crate) flag_id: Option<i64>,
    /// The environment a `flag_off` action names.
    #[serde(skip)]
    pub(crate) environment_id: Option<i64>,
}

type Row = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    String,
    i64,
    i64,
    Option<String>,
);

const SELECT: &str = "select m.id, m.alert_name, m.matchers, m.action, m.flag_id, f.key, \
     m.environment_id, e.key, m.version, m.created_by, m.created_at, m.updated_at, m.last_fired \
     from alert_mapping m left join flag f on f.id = m.flag_id \
     left join environment e on e.id = m.environment_id";

fn to_mapping(row: Row) -> StoreResult<AlertMapping> {
    let (
        id,
        alert,
        matchers,
        action,
        flag_id,
        flag_key,
        environment_id,
        environment_key,
        version,
        created_by,
        created_at,
        updated_at,
        last_fired,
    ) = row;
    let what = |part: &str| format!("alert_mapping {id} {part}");
    let action = match (action.as_str(), flag_key, environment_key) {
        ("flag_off", Some(flag), Some(environment)) => MappingAction::FlagOff { flag, environment },
        (kind, ..) => return Err(StoreError::corrupt(what("action"), format!("`{kind}`"))),
    };
    Ok(AlertMapping {
        id,
        alert,
        matchers: from_text(&what("matchers"), &matchers)?,
        action,
        version,
        created_by,
        created_at,
        updated_at,
        last_fired: last_fired
            .map(|text| from_text(&what("last_fired"), &text))
            .transpose()?,
        flag_id,
        environment_id,
    })
}

/// The project's mappings, oldest first.
pub(crate) async fn list(conn: &mut Conn, project_id: i64) -> StoreResult<Vec<AlertMapping>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where m.project_id = $1 order by m.id"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(to_mapping).collect()
}

/// Mapping `id` of the project.
pub(crate) async fn by_id(
    conn: &mut Conn,
    project_id: i64,
    id: i64,
) -> StoreResult<Option<AlertMapping>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where m.project_id = $1 and m.id = $2"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(to_mapping).transpose()
}

/// A mapping's fields as a create or update writes them.
#[derive(Debug)]
pub(crate) struct MappingFields<'a> {
    pub(crate) alert: &'a str,
    pub(crate) matchers: &'a [Matcher],
    /// `MappingAction::kind`.
    pub(crate) action: &'static str,
    pub(crate) flag_id: Option<i64>,
    pub(crate) environment_id: Option<i64>,
}

/// Inserts a mapping; its id.
pub(crate) async fn insert(
    conn: &mut Conn,
    project_id: i64,
    fields: &MappingFields<'_>,
    created_by: &str,
    now: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "insert into alert_mapping (project_id, alert_name, matchers, action, flag_id, \
         environment_id, version, created_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, 1, $7, $8, $8) returning id",
    )
    .bind(project_id)
    .bind(fields.alert)
    .bind(to_text(&fields.matchers)?)
    .bind(fields.action)
    .bind(fields.flag_id)
    .bind(fields.environment_id)
    .bind(created_by)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Replaces mapping `id`'s fields if its version still is `expected`; false on a
/// mismatch (or if it is gone).
pub(crate) async fn update(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    fields: &MappingFields<'_>,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update alert_mapping set alert_name = $1, matchers = $2, action = $3, flag_id = $4, \
         environment_id = $5, version = version + 1, updated_at = $6 \
         where id = $7 and version = $8",
    )
    .bind(fields.alert)
    .bind(to_text(&fields.matchers)?)
    .bind(fields.action)
    .bind(fields.flag_id)
    .bind(fields.environment_id)
    .bind(now)
    .bind(id)
    .bind(expected)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes mapping `id` (and its firings).
pub(crate) async fn delete(conn: &mut Conn, id: i64) -> StoreResult<()> {
    sqlx::query("delete from alert_mapping where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Claims the firing (`fingerprint`, `starts_at`) for mapping `id`: true if this is the
/// first time, false if it was claimed before. On Postgres a concurrent claim of the same
/// firing waits for this transaction and then finds it claimed; SQLite's write lock
/// serialises them.
pub(crate) async fn claim_firing(
    conn: &mut Conn,
    mapping_id: i64,
    fingerprint: &str,
    starts_at: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "insert into alert_firing (mapping_id, fingerprint, starts_at, received_at) \
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(mapping_id)
    .bind(fingerprint)
    .bind(starts_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what mapping `id` did last.
pub(crate) async fn set_last_fired(
    conn: &mut Conn,
    id: i64,
    record: &FiringRecord,
) -> StoreResult<()> {
    sqlx::query("update alert_mapping set last_fired = $1 where id = $2")
        .bind(to_text(record)?)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
