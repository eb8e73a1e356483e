//! The `environment` table, including the data-version bump every data write makes.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, StoreResult};
use crate::changes::EnvChanged;

/// An environment as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Environment {
    /// Database id.
    pub id: i64,
    /// The project it belongs to.
    pub project_id: i64,
    /// Unique within the project, used in URLs.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Display order (ascending).
    pub sort_order: i64,
    /// Changes here go through a review (diff and comment) in the dashboard, and the
    /// project can require a comment on every write that touches it.
    pub critical: bool,
    /// Optimistic-concurrency version of the environment's own fields.
    pub version: i64,
    /// Version of what SDKs of this environment see; bumped by every flag or segment write.
    pub data_version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change to the environment's own fields (epoch ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, project_id, key, name, description, sort_order, critical, version, \
                       data_version, created_at, updated_at";

// By hand because `critical` is stored as 0/1 (migration 0005 says why).
impl sqlx::FromRow<'_, AnyRow> for Environment {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Environment {
            id: row.try_get("id")?,
            project_id: row.try_get("project_id")?,
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            sort_order: row.try_get("sort_order")?,
            critical: row.try_get::<i64, _>("critical")? != 0,
            version: row.try_get("version")?,
            data_version: row.try_get("data_version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// The environments of a project, in display order.
pub async fn list(conn: &mut Conn, project_id: i64) -> StoreResult<Vec<Environment>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from environment where project_id = $1 order by sort_order, key"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}

/// One environment of a project by key.
pub async fn by_key(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
) -> StoreResult<Option<Environment>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from environment where project_id = $1 and key = $2"
    )))
    .bind(project_id)
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

/// What a new environment is made of.
#[derive(Debug, Clone)]
pub struct NewEnvironment<'a> {
    /// Key.
    pub key: &'a str,
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: &'a str,
    /// Display order.
    pub sort_order: i64,
    /// Whether changes need a review.
    pub critical: bool,
}

/// Inserts an environment at data version 0.
pub async fn insert(
    conn: &mut Conn,
    project_id: i64,
    env: &NewEnvironment<'_>,
    now: i64,
) -> StoreResult<Environment> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into environment (project_id, key, name, description, sort_order, critical, \
         version, data_version, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, 1, 0, $7, $7) returning {COLUMNS}"
    )))
    .bind(project_id)
    .bind(env.key)
    .bind(env.name)
    .bind(env.description)
    .bind(env.sort_order)
    .bind(i64::from(env.critical))
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// An environment's own fields as an update sets them.
#[derive(Debug, Clone)]
pub struct EnvironmentFields<'a> {
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: &'a str,
    /// Display order.
    pub sort_order: i64,
    /// Whether changes need a review.
    pub critical: bool,
}

/// Updates the environment's own fields if its version still is `expected`.
pub async fn update(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    fields: &EnvironmentFields<'_>,
    now: i64,
) -> StoreResult<Option<Environment>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update environment set name = $1, description = $2, sort_order = $3, critical = $4, \
         version = version + 1, updated_at = $5 where id = $6 and version = $7 \
         returning {COLUMNS}"
    )))
    .bind(fields.name)
    .bind(fields.description)
    .bind(fields.sort_order)
    .bind(i64::from(fields.critical))
    .bind(now)
    .bind(id)
    .bind(expected)
    .fetch_optional(conn)
    .await?)
}

/// Deletes an environment with its configs, changes and SDK keys (cascade).
pub async fn delete(conn: &mut Conn, id: i64) -> StoreResult<()> {
    sqlx::query("delete from environment where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Bumps `data_version` of one environment (`Some`) or of every environment of the project
/// (`None`), returning the new versions in id order.
///
/// Writes call this FIRST in their transaction: on Postgres the update takes the rows'
/// locks, so two writes that could together produce an invalid environment (one removes a
/// variant while another starts requiring it as a prerequisite) are serialised, and each
/// validates against the other's committed result. SQLite's `begin immediate` already
/// serialises all writers.
pub async fn bump_data_versions(
    conn: &mut Conn,
    project_id: i64,
    only: Option<i64>,
) -> StoreResult<Vec<EnvChanged>> {
    let rows: Vec<(i64, i64)> = match only {
        Some(env_id) => {
            sqlx::query_as(
                "update environment set data_version = data_version + 1 \
                 where project_id = $1 and id = $2 returning id, data_version",
            )
            .bind(project_id)
            .bind(env_id)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            // One row at a time, in id order. A single multi-row update locks the rows in
            // the order its scan meets them, which changes as updates move tuples, so two
            // writes to one project could each hold a row the other waits for: Postgres
            // then aborted one as deadlocked (500s when a script created flags in
            // parallel). A fixed order makes them queue instead. `for update` would say
            // the same in one statement but SQLite has no such clause, and its
            // `begin immediate` serialises writers anyway.
            let ids: Vec<i64> =
                sqlx::query_scalar("select id from environment where project_id = $1 order by id")
                    .bind(project_id)
                    .fetch_all(&mut *conn)
                    .await?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "update environment set data_version = data_version + 1 \
                     where id = $1 returning id, data_version",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                // Deleted since the select: nothing to bump.
                rows.extend(row);
            }
            rows
        }
    };
    let mut changes: Vec<EnvChanged> = rows
        .into_iter()
        .map(|(environment_id, data_version)| EnvChanged {
            environment_id,
            data_version,
        })
        .collect();
    changes.sort_by_key(|c| c.environment_id);
    // Every write bumps once per transaction, here: announcing the new versions to other
    // replicas here (delivered by Postgres only if the transaction commits) covers them all.
    super::change_log::notify_committed(conn, &changes).await?;
    Ok(changes)
}

/// Kind of a changed item in `env_change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A flag (definition, config or archived state).
    Flag,
    /// A segment.
    Segment,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Flag => "flag",
            ChangeKind::Segment => "segment",
        }
    }
}

/// Records that `key` changed at each environment's new data version.
pub async fn record_changes(
    conn: &mut Conn,
    bumped: &[EnvChanged],
    kind: ChangeKind,
    key: &str,
) -> StoreResult<()> {
    for change in bumped {
        sqlx::query(
            "insert into env_change (environment_id, data_version, kind, key) \
             values ($1, $2, $3, $4)",
        )
        .bind(change.environment_id)
        .bind(change.data_version)
        .bind(kind.as_str())
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
