//! The `project` table.

use std::collections::BTreeMap;

use flagpole_core::lifecycle::FlagType;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, StoreResult, from_text, to_text};

/// A project as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Project {
    /// Database id.
    pub id: i64,
    /// Unique key, used in URLs.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Every write that touches a critical environment must carry a comment.
    pub require_critical_comment: bool,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, key, name, description, require_critical_comment, version, created_at, updated_at";

// By hand because `require_critical_comment` is stored as 0/1 (migration 0005 says why).
impl sqlx::FromRow<'_, AnyRow> for Project {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Project {
            id: row.try_get("id")?,
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            require_critical_comment: row.try_get::<i64, _>("require_critical_comment")? != 0,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Every project, by key; only `only` when the caller is scoped to one project.
pub async fn list(conn: &mut Conn, only: Option<i64>) -> StoreResult<Vec<Project>> {
    let rows = match only {
        Some(id) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select {COLUMNS} from project where id = $1 order by key"
            )))
            .bind(id)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select {COLUMNS} from project order by key"
            )))
            .fetch_all(conn)
            .await?
        }
    };
    Ok(rows)
}

/// The project with this key.
pub async fn by_key(conn: &mut Conn, key: &str) -> StoreResult<Option<Project>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from project where key = $1"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

/// Inserts a project.
pub async fn insert(
    conn: &mut Conn,
    key: &str,
    name: &str,
    description: &str,
    now: i64,
) -> StoreResult<Project> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into project (key, name, description, version, created_at, updated_at) \
         values ($1, $2, $3, 1, $4, $4) returning {COLUMNS}"
    )))
    .bind(key)
    .bind(name)
    .bind(description)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// A project's own fields as an update sets them.
#[derive(Debug, Clone)]
pub struct ProjectFields<'a> {
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: &'a str,
    /// Whether writes touching a critical environment need a comment.
    pub require_critical_comment: bool,
}

/// Updates the project's own fields if the version still is `expected`; `None` on a
/// mismatch.
pub async fn update(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    fields: &ProjectFields<'_>,
    now: i64,
) -> StoreResult<Option<Project>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update project set name = $1, description = $2, require_critical_comment = $3, \
         version = version + 1, updated_at = $4 where id = $5 and version = $6 \
         returning {COLUMNS}"
    )))
    .bind(fields.name)
    .bind(fields.description)
    .bind(i64::from(fields.require_critical_comment))
    .bind(now)
    .bind(id)
    .bind(expected)
    .fetch_optional(conn)
    .await?)
}

/// Deletes a project; environments, flags, segments, keys and tokens go with it (cascade).
pub async fn delete(conn: &mut Conn, id: i64) -> StoreResult<()> {
    sqlx::query("delete from project where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A project's overrides of the expected flag lifetimes (migration 0009): days per type,
/// `None` for "never expires"; a type absent keeps its default.
pub type LifetimeOverrides = BTreeMap<FlagType, Option<u32>>;

/// The project's lifetime overrides (empty when it never set any).
pub async fn lifetimes(conn: &mut Conn, id: i64) -> StoreResult<LifetimeOverrides> {
    let text: Option<String> =
        sqlx::query_scalar("select flag_lifetimes from project where id = $1")
            .bind(id)
            .fetch_one(conn)
            .await?;
    match text {
        Some(text) => from_text("project flag_lifetimes", &text),
        None => Ok(LifetimeOverrides::new()),
    }
}

/// Replaces the project's lifetime overrides if the version still is `expected`, bumping
/// it; the new version, `None` on a mismatch.
pub async fn set_lifetimes(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    overrides: &LifetimeOverrides,
    now: i64,
) -> StoreResult<Option<i64>> {
    // An empty map is stored as null: "the defaults", as for a project that never chose.
    let text = if overrides.is_empty() {
        None
    } else {
        Some(to_text(overrides)?)
    };
    Ok(sqlx::query_scalar(
        "update project set flag_lifetimes = $1, version = version + 1, updated_at = $2 \
         where id = $3 and version = $4 returning version",
    )
    .bind(text)
    .bind(now)
    .bind(id)
    .bind(expected)
    .fetch_optional(conn)
    .await?)
}
