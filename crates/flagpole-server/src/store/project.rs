//! The `project` table.

use serde::Serialize;

use super::{Conn, StoreResult};

/// A project as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Project {
    /// Database id.
    pub id: i64,
    /// Unique key, used in URLs.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, key, name, description, version, created_at, updated_at";

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

/// Updates name and description if the version still is `expected`; `None` on a mismatch.
pub async fn update(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    name: &str,
    description: &str,
    now: i64,
) -> StoreResult<Option<Project>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update project set name = $1, description = $2, version = version + 1, updated_at = $3 \
         where id = $4 and version = $5 returning {COLUMNS}"
    )))
    .bind(name)
    .bind(description)
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
