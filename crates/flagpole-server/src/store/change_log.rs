//! The change log of environments: the Postgres notification that announces new versions
//! to other replicas (both ends of it: the NOTIFY a write sends, the LISTEN and payload
//! format its receivers use), the versions themselves, and pruning of `env_change` (the
//! rows [`super::snapshot::load_patch`] builds patches from).

use sqlx::postgres::PgListener;

use super::Conn;
use crate::changes::EnvChanged;
use crate::db::Db;

/// The Postgres channel; payloads are `<environment id>:<data version>`.
const CHANNEL: &str = "flagpole_env";

/// Subscribes `listener`'s connection to [`notify_committed`]'s announcements (`LISTEN`).
/// The caller owns the connection and reconnects it (`push::notify`).
pub(crate) async fn listen(listener: &mut PgListener) -> Result<(), sqlx::Error> {
    listener.listen(CHANNEL).await
}

/// Parses a notification payload.
pub(crate) fn parse_payload(payload: &str) -> Option<EnvChanged> {
    let (env, version) = payload.split_once(':')?;
    Some(EnvChanged {
        environment_id: env.parse().ok()?,
        data_version: version.parse().ok()?,
    })
}

/// Announces `bumped` to every replica's listener. Call INSIDE the write's transaction:
/// Postgres delivers notifications only when (and if) it commits. One statement per
/// transaction whatever the number of environments, so a project-wide write costs one
/// round trip; Postgres queues them at commit (which serialises committers briefly, hence
/// once per transaction, never once per statement). A no-op on SQLite (one process).
pub(crate) async fn notify_committed(
    conn: &mut Conn,
    bumped: &[EnvChanged],
) -> Result<(), sqlx::Error> {
    if bumped.is_empty() || conn.backend_name() != <sqlx::Postgres as sqlx::Database>::NAME {
        return Ok(());
    }
    let payloads = bumped
        .iter()
        .map(|c| format!("{}:{}", c.environment_id, c.data_version))
        .collect::<Vec<_>>()
        .join(",");
    // `pg_notify` returns void, which sqlx's Any driver cannot decode; counting the rows
    // keeps the result an integer (a volatile call in a subquery is never optimised away).
    sqlx::query_scalar::<_, i64>(
        "select count(*) from (select pg_notify($1, p) \
         from unnest(string_to_array($2, ',')) as p) as n",
    )
    .bind(CHANNEL)
    .bind(payloads)
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// `data_version` of each of `ids` that still exists, in one query.
pub(crate) async fn data_versions(db: &Db, ids: &[i64]) -> Result<Vec<(i64, u64)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select id, data_version from environment where id in ({})",
        super::placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&db.pool).await?;
    Ok(as_versions(rows))
}

/// `data_version` of every environment.
pub(crate) async fn all_data_versions(db: &Db) -> Result<Vec<(i64, u64)>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as("select id, data_version from environment")
        .fetch_all(&db.pool)
        .await?;
    Ok(as_versions(rows))
}

fn as_versions(rows: Vec<(i64, i64)>) -> Vec<(i64, u64)> {
    // data_version starts at 0 and only grows.
    rows.into_iter()
        .map(|(id, v)| (id, u64::try_from(v).unwrap_or(0)))
        .collect()
}

/// Environments holding more than `keep` versions of history.
pub(crate) async fn environments_to_prune(db: &Db, keep: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("select id from environment where data_version - $1 > history_from")
        .bind(keep)
        .fetch_all(&db.pool)
        .await
}

/// Moves environment `environment_id`'s history start so it keeps `keep` versions, in a
/// short transaction of its own. Returns the new start, or `None` if another replica
/// moved it first.
pub(crate) async fn move_history_from(
    db: &Db,
    environment_id: i64,
    keep: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let moved: Option<i64> = sqlx::query_scalar(
        "update environment set history_from = data_version - $1 \
         where id = $2 and data_version - $1 > history_from returning history_from",
    )
    .bind(keep)
    .bind(environment_id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(moved)
}

/// The oldest version with change rows in environment `environment_id`.
pub(crate) async fn oldest_change(
    db: &Db,
    environment_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select min(data_version) from env_change where environment_id = $1")
        .bind(environment_id)
        .fetch_one(&db.pool)
        .await
}

/// Deletes environment `environment_id`'s change rows of versions in `(low, high]`,
/// outside any transaction; returns how many.
pub(crate) async fn delete_changes(
    db: &Db,
    environment_id: i64,
    low: i64,
    high: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from env_change where environment_id = $1 \
         and data_version > $2 and data_version <= $3",
    )
    .bind(environment_id)
    .bind(low)
    .bind(high)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(
            parse_payload("12:345"),
            Some(EnvChanged {
                environment_id: 12,
                data_version: 345
            })
        );
        assert_eq!(parse_payload("12"), None);
        assert_eq!(parse_payload("a:1"), None);
    }
}
