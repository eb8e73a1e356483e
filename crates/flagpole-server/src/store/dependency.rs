//! The reverse references of a project: which flags name a flag or segment, which segments
//! name a segment. The `flag_dependency` and `segment_dependency` tables are kept by
//! triggers (migration 0004), so this module only reads them.

use super::{Conn, StoreResult};

/// Keys of the live flags other than `key` that reach flag `key` through prerequisites,
/// in environment `only` or in any environment of the project; a prerequisite counts only
/// within its own environment.
pub async fn flag_dependents(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
    only: Option<i64>,
) -> StoreResult<Vec<String>> {
    // `union` (not `union all`) drops rows already found, so a cycle ends the recursion.
    let environments = match only {
        Some(_) => "select id from environment where project_id = $1 and id = $3",
        None => "select id from environment where project_id = $1",
    };
    let sql = format!(
        "with recursive dependent (environment_id, key) as ( \
           select e.id, cast($2 as text) from ({environments}) as e \
           union \
           select d.environment_id, f.key from dependent as r \
           join flag_dependency as d on d.environment_id = r.environment_id \
             and d.kind = 'flag' and d.target_key = r.key \
           join flag as f on f.id = d.flag_id \
           where f.archived_at is null \
         ) \
         select distinct key from dependent where key <> $2 order by key"
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .bind(key);
    if let Some(env) = only {
        query = query.bind(env);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Keys of the segments other than `key` that reach segment `key` through the segments
/// their clauses name.
pub async fn segment_dependents(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "with recursive dependent (key) as ( \
           select cast($2 as text) \
           union \
           select s.key from dependent as r \
           join segment_dependency as d on d.project_id = $1 and d.target_key = r.key \
           join segment as s on s.id = d.segment_id \
         ) \
         select key from dependent where key <> $2 order by key",
    )
    .bind(project_id)
    .bind(key)
    .fetch_all(conn)
    .await?)
}

/// Live flags and segments (other than `key`) whose clauses name segment `key`:
/// (flag keys, segment keys).
pub async fn segment_users(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
) -> StoreResult<(Vec<String>, Vec<String>)> {
    let flags = sqlx::query_scalar(
        "select distinct f.key from flag_dependency as d \
         join environment as e on e.id = d.environment_id \
         join flag as f on f.id = d.flag_id \
         where e.project_id = $1 and d.kind = 'segment' and d.target_key = $2 \
           and f.archived_at is null \
         order by f.key",
    )
    .bind(project_id)
    .bind(key)
    .fetch_all(&mut *conn)
    .await?;
    let segments = sqlx::query_scalar(
        "select s.key from segment_dependency as d join segment as s on s.id = d.segment_id \
         where d.project_id = $1 and d.target_key = $2 and s.key <> $2 order by s.key",
    )
    .bind(project_id)
    .bind(key)
    .fetch_all(conn)
    .await?;
    Ok((flags, segments))
}

/// Ids of the environments where a live flag's rules name segment `key`.
pub async fn segment_environments(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
) -> StoreResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "select distinct d.environment_id from flag_dependency as d \
         join environment as e on e.id = d.environment_id \
         join flag as f on f.id = d.flag_id \
         where e.project_id = $1 and d.kind = 'segment' and d.target_key = $2 \
           and f.archived_at is null \
         order by d.environment_id",
    )
    .bind(project_id)
    .bind(key)
    .fetch_all(conn)
    .await?)
}

/// For each segment of the project that live flags name, how many distinct live flags
/// name it in their rules (in any environment): (segment key, flag count), by key.
/// Segments named only through other segments are not counted here.
pub async fn segment_flag_counts(
    conn: &mut Conn,
    project_id: i64,
) -> StoreResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select d.target_key, count(distinct d.flag_id) from flag_dependency as d \
         join environment as e on e.id = d.environment_id \
         join flag as f on f.id = d.flag_id \
         where e.project_id = $1 and d.kind = 'segment' and f.archived_at is null \
         group by d.target_key order by d.target_key",
    )
    .bind(project_id)
    .fetch_all(conn)
    .await?)
}
