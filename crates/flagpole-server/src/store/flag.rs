//! The `flag`, `flag_config` and `flag_tag` tables.

use flagpole_core::lifecycle::FlagType;
use flagpole_core::model::{Flag, FlagConfig};

use super::{Conn, StoreError, StoreResult, from_text, like_contains, placeholders, to_text};

/// A flag row with its definition parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRow {
    /// Database id.
    pub id: i64,
    /// The project.
    pub project_id: i64,
    /// Key (equal to `definition.key`).
    pub key: String,
    /// Identity, kind, variants.
    pub definition: Flag,
    /// When it was archived; `None` for a live flag.
    pub archived_at: Option<i64>,
    /// One version across the definition and every environment's config.
    pub version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
    /// What the flag is for (lifecycle; not part of the definition SDKs receive).
    pub flag_type: FlagType,
    /// Marked to stay: never potentially stale.
    pub permanent: bool,
}

type RawRow = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    String,
    i64,
);

const COLUMNS: &str = "id, project_id, key, definition, archived_at, version, created_at, \
                       updated_at, flag_type, permanent";

fn parse(row: RawRow) -> StoreResult<FlagRow> {
    let (
        id,
        project_id,
        key,
        definition,
        archived_at,
        version,
        created_at,
        updated_at,
        flag_type,
        permanent,
    ) = row;
    Ok(FlagRow {
        definition: from_text("flag definition", &definition)?,
        flag_type: FlagType::parse(&flag_type)
            .ok_or_else(|| StoreError::corrupt(format!("flag {id} type"), &flag_type))?,
        permanent: permanent != 0,
        id,
        project_id,
        key,
        archived_at,
        version,
        created_at,
        updated_at,
    })
}

/// The flag with this key.
pub async fn by_key(conn: &mut Conn, project_id: i64, key: &str) -> StoreResult<Option<FlagRow>> {
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from flag where project_id = $1 and key = $2"
    )))
    .bind(project_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// Like [`by_key`], but first takes the row's write lock (a no-op update), so the flag's
/// configs read afterwards in the same transaction cannot change under the writer. Callers
/// have already locked the environments they bump (lock order: environments, then flag).
pub async fn lock(conn: &mut Conn, project_id: i64, key: &str) -> StoreResult<Option<FlagRow>> {
    let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update flag set updated_at = updated_at where project_id = $1 and key = $2 \
         returning {COLUMNS}"
    )))
    .bind(project_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}

/// Every environment's config of a flag: (environment id, environment key, config), in
/// environment display order.
pub async fn configs(conn: &mut Conn, flag_id: i64) -> StoreResult<Vec<(i64, String, FlagConfig)>> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "select e.id, e.key, c.config from flag_config c join environment e \
         on e.id = c.environment_id where c.flag_id = $1 order by e.sort_order, e.key",
    )
    .bind(flag_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, key, text)| Ok((id, key, from_text("flag config", &text)?)))
        .collect()
}

/// A flag's lifecycle attributes, as stored next to its definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// What the flag is for.
    pub flag_type: FlagType,
    /// Never potentially stale.
    pub permanent: bool,
}

/// Inserts a flag (version 1) and its tags.
pub async fn insert(
    conn: &mut Conn,
    project_id: i64,
    definition: &Flag,
    lifecycle: Lifecycle,
    now: i64,
) -> StoreResult<FlagRow> {
    let row: RawRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into flag (project_id, key, definition, name, description, version, created_at, \
         updated_at, flag_type, permanent) values ($1, $2, $3, $4, $5, 1, $6, $6, $7, $8) \
         returning {COLUMNS}"
    )))
    .bind(project_id)
    .bind(&definition.key)
    .bind(to_text(definition)?)
    .bind(&definition.name)
    .bind(&definition.description)
    .bind(now)
    .bind(lifecycle.flag_type.as_str())
    .bind(i64::from(lifecycle.permanent))
    .fetch_one(&mut *conn)
    .await?;
    let row = parse(row)?;
    set_tags(conn, row.id, &definition.tags).await?;
    Ok(row)
}

/// Bumps the version of a flag whose definition did not change (a config write); returns
/// the new version. The caller checked the expected version while holding the lock from
/// [`lock`].
pub async fn bump_version(conn: &mut Conn, id: i64, now: i64) -> StoreResult<i64> {
    let version: i64 = sqlx::query_scalar(
        "update flag set version = version + 1, updated_at = $1 where id = $2 returning version",
    )
    .bind(now)
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(version)
}

/// Writes a new definition and archived state and bumps the version; returns the new
/// version. The caller checked the expected version while holding the lock from [`lock`].
pub async fn update(
    conn: &mut Conn,
    id: i64,
    definition: &Flag,
    archived_at: Option<i64>,
    now: i64,
) -> StoreResult<i64> {
    let version: i64 = sqlx::query_scalar(
        "update flag set definition = $1, name = $2, description = $3, archived_at = $4, \
         version = version + 1, updated_at = $5 where id = $6 returning version",
    )
    .bind(to_text(definition)?)
    .bind(&definition.name)
    .bind(&definition.description)
    .bind(archived_at)
    .bind(now)
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    set_tags(conn, id, &definition.tags).await?;
    Ok(version)
}

/// Sets a flag's type and permanent mark, as part of an update that bumped its version with
/// [`update`].
pub async fn set_lifecycle(conn: &mut Conn, id: i64, lifecycle: Lifecycle) -> StoreResult<()> {
    sqlx::query("update flag set flag_type = $1, permanent = $2 where id = $3")
        .bind(lifecycle.flag_type.as_str())
        .bind(i64::from(lifecycle.permanent))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn set_tags(conn: &mut Conn, flag_id: i64, tags: &[String]) -> StoreResult<()> {
    sqlx::query("delete from flag_tag where flag_id = $1")
        .bind(flag_id)
        .execute(&mut *conn)
        .await?;
    let mut seen = std::collections::HashSet::new();
    for tag in tags.iter().filter(|t| seen.insert(t.as_str())) {
        sqlx::query("insert into flag_tag (flag_id, tag) values ($1, $2)")
            .bind(flag_id)
            .bind(tag)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Writes one environment's config of a flag (insert or replace).
pub async fn put_config(
    conn: &mut Conn,
    flag_id: i64,
    environment_id: i64,
    config: &FlagConfig,
) -> StoreResult<()> {
    sqlx::query(
        "insert into flag_config (flag_id, environment_id, config) values ($1, $2, $3) \
         on conflict (flag_id, environment_id) do update set config = excluded.config",
    )
    .bind(flag_id)
    .bind(environment_id)
    .bind(to_text(config)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters of the flag list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Case-insensitive substring of key, name or description.
    pub q: Option<String>,
    /// Exact tag.
    pub tag: Option<String>,
    /// Archived flags instead of live ones.
    pub archived: bool,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// The where clause of a list query and its bind values after the project id (`$1`).
/// It is assembled from fixed fragments; user input only ever goes through bind
/// parameters.
fn list_where(filter: &ListFilter) -> (String, Vec<String>) {
    let mut clauses = vec![
        "f.project_id = $1".to_owned(),
        if filter.archived {
            "f.archived_at is not null".to_owned()
        } else {
            "f.archived_at is null".to_owned()
        },
    ];
    let mut binds: Vec<String> = Vec::new();
    if let Some(q) = &filter.q {
        binds.push(like_contains(q));
        let n = binds.len() + 1;
        clauses.push(format!(
            "(lower(f.key) like lower(${n}) escape '\\' or lower(f.name) like lower(${n}) \
             escape '\\' or lower(f.description) like lower(${n}) escape '\\')"
        ));
    }
    if let Some(tag) = &filter.tag {
        binds.push(tag.clone());
        let n = binds.len() + 1;
        clauses.push(format!(
            "exists (select 1 from flag_tag t where t.flag_id = f.id and t.tag = ${n})"
        ));
    }
    (clauses.join(" and "), binds)
}

/// One page of flags matching `filter` (by key) and the total number that match.
pub async fn list(
    conn: &mut Conn,
    project_id: i64,
    filter: &ListFilter,
) -> StoreResult<(Vec<FlagRow>, i64)> {
    let (where_sql, binds) = list_where(filter);
    let count_sql = format!("select count(*) from flag f where {where_sql}");
    let mut count = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql)).bind(project_id);
    for b in &binds {
        count = count.bind(b.clone());
    }
    let total: i64 = count.fetch_one(&mut *conn).await?;

    let n = binds.len() + 2;
    let page_sql = format!(
        "select {COLUMNS} from flag f where {where_sql} order by f.key limit ${n} offset ${}",
        n + 1
    );
    let mut page = sqlx::query_as::<_, RawRow>(sqlx::AssertSqlSafe(page_sql)).bind(project_id);
    for b in &binds {
        page = page.bind(b.clone());
    }
    let rows = page
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&mut *conn)
        .await?;
    let rows = rows
        .into_iter()
        .map(parse)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((rows, total))
}

/// Every flag matching `filter` (by key), ignoring its limit and offset: for a filter
/// decided outside SQL (lifecycle), which must see every candidate before it can page.
pub async fn list_all(
    conn: &mut Conn,
    project_id: i64,
    filter: &ListFilter,
) -> StoreResult<Vec<FlagRow>> {
    let (where_sql, binds) = list_where(filter);
    let sql = format!("select {COLUMNS} from flag f where {where_sql} order by f.key");
    let mut query = sqlx::query_as::<_, RawRow>(sqlx::AssertSqlSafe(sql)).bind(project_id);
    for b in &binds {
        query = query.bind(b.clone());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.into_iter().map(parse).collect()
}

/// Every config of the given flags: (flag id, environment id, config), in environment
/// display order.
pub async fn configs_of(
    conn: &mut Conn,
    flag_ids: &[i64],
) -> StoreResult<Vec<(i64, i64, FlagConfig)>> {
    if flag_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select c.flag_id, c.environment_id, c.config from flag_config c join environment e \
         on e.id = c.environment_id where c.flag_id in ({}) order by e.sort_order, e.key, c.flag_id",
        placeholders(1, flag_ids.len())
    );
    let mut query = sqlx::query_as::<_, (i64, i64, String)>(sqlx::AssertSqlSafe(sql));
    for id in flag_ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(conn).await?;
    rows.into_iter()
        .map(|(flag, env, text)| Ok((flag, env, from_text("flag config", &text)?)))
        .collect()
}

/// Every config of the project's live flags (archived ones with `archived`): (flag id,
/// environment id, config), in environment display order. [`configs_of`] for a whole
/// project, which an `in` list of every flag id could not bind (SQLite allows 32,766
/// parameters).
pub async fn configs_in_project(
    conn: &mut Conn,
    project_id: i64,
    archived: bool,
) -> StoreResult<Vec<(i64, i64, FlagConfig)>> {
    let archived_sql = if archived {
        "f.archived_at is not null"
    } else {
        "f.archived_at is null"
    };
    let sql = format!(
        "select c.flag_id, c.environment_id, c.config from flag_config c \
         join flag f on f.id = c.flag_id join environment e on e.id = c.environment_id \
         where f.project_id = $1 and {archived_sql} order by e.sort_order, e.key, c.flag_id"
    );
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|(flag, env, text)| Ok((flag, env, from_text("flag config", &text)?)))
        .collect()
}
