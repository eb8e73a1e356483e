//! The `segment` table.

use flagpole_core::model::Segment;

use super::{Conn, StoreResult, from_text, placeholders, to_text};

/// A segment row with its definition parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    /// Database id.
    pub id: i64,
    /// The project.
    pub project_id: i64,
    /// The definition (its `key` is the row's key).
    pub definition: Segment,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

type RawRow = (i64, i64, String, i64, i64, i64);

const COLUMNS: &str = "id, project_id, definition, version, created_at, updated_at";

fn parse(row: RawRow) -> StoreResult<SegmentRow> {
    let (id, project_id, definition, version, created_at, updated_at) = row;
    Ok(SegmentRow {
        definition: from_text("segment", &definition)?,
        id,
        project_id,
        version,
        created_at,
        updated_at,
    })
}

/// Every segment of a project, by key.
pub async fn list(conn: &mut Conn, project_id: i64) -> StoreResult<Vec<SegmentRow>> {
    let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from segment where project_id = $1 order by key"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(parse).collect()
}

/// The segment with this key.
pub async fn by_key(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
) -> StoreResult<Option<SegmentRow>> {
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from segment where project_id = $1 and key = $2"
    )))
    .bind(project_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// The segments with these keys (those that exist), by key.
pub async fn by_keys(
    conn: &mut Conn,
    project_id: i64,
    keys: &[String],
) -> StoreResult<Vec<SegmentRow>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select {COLUMNS} from segment where project_id = $1 and key in ({}) order by key",
        placeholders(2, keys.len())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project_id);
    for key in keys {
        query = query.bind(key);
    }
    let rows: Vec<RawRow> = query.fetch_all(conn).await?;
    rows.into_iter().map(parse).collect()
}

/// Inserts a segment at version 1.
pub async fn insert(
    conn: &mut Conn,
    project_id: i64,
    definition: &Segment,
    now: i64,
) -> StoreResult<SegmentRow> {
    let row: RawRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into segment (project_id, key, definition, version, created_at, updated_at) \
         values ($1, $2, $3, 1, $4, $4) returning {COLUMNS}"
    )))
    .bind(project_id)
    .bind(&definition.key)
    .bind(to_text(definition)?)
    .bind(now)
    .fetch_one(conn)
    .await?;
    parse(row)
}

/// Replaces a segment's definition if its version still is `expected`; `None` on mismatch.
pub async fn update(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    definition: &Segment,
    now: i64,
) -> StoreResult<Option<SegmentRow>> {
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update segment set definition = $1, version = version + 1, updated_at = $2 \
         where id = $3 and version = $4 returning {COLUMNS}"
    )))
    .bind(to_text(definition)?)
    .bind(now)
    .bind(id)
    .bind(expected)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// Deletes a segment.
pub async fn delete(conn: &mut Conn, id: i64) -> StoreResult<()> {
    sqlx::query("delete from segment where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
