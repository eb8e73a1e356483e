//! Building a patch from the database: what changed in one environment after version V.
//!
//! Every write records `(environment, data_version, kind, key)` rows in `env_change` in
//! the same transaction that bumps the version, so the keys changed in (V, V'] are a
//! range read; their current states are then read in the SAME read-only transaction as
//! V' itself. A write that commits while we read is either wholly in that snapshot (and in
//! `to`) or wholly outside it, so the patch's content is exactly the environment at `to`.

use crate::db::Db;
use flagpole_core::model::{Flag, FlagConfig, FlagState, Segment};
use flagpole_core::wire::Patch;

/// The outcome of [`build_patch`].
#[derive(Debug)]
pub(crate) enum Built {
    /// The database holds no version after `from`.
    UpToDate,
    /// The changes from `from` to the database's current version.
    Patch(Patch),
    /// The environment no longer exists.
    Gone,
    /// The history after `from` was pruned (see [`super::history`]): only the whole
    /// environment can bring a holder of `from` up to date.
    Pruned,
}

/// Reads the changes of environment `environment_id` after version `from`.
pub(crate) async fn build_patch(
    db: &Db,
    environment_id: i64,
    from: u64,
) -> Result<Built, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut tx = db.begin_consistent_read().await?;
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "select project_id, data_version, history_from from environment where id = $1",
    )
    .bind(environment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((project_id, to, history_from)) = row else {
        tx.rollback().await?;
        return Ok(Built::Gone);
    };
    let to = u64::try_from(to).unwrap_or(0);
    if to <= from {
        tx.rollback().await?;
        return Ok(Built::UpToDate);
    }
    if from < u64::try_from(history_from).unwrap_or(0) {
        tx.rollback().await?;
        return Ok(Built::Pruned);
    }
    let (low, high) = (as_i64(from), as_i64(to));
    let changed: Vec<(String, String)> = sqlx::query_as(
        "select distinct kind, key from env_change \
         where environment_id = $1 and data_version > $2 and data_version <= $3",
    )
    .bind(environment_id)
    .bind(low)
    .bind(high)
    .fetch_all(&mut *tx)
    .await?;
    // Same filter as `store::snapshot::load_environment`: live flags with a config row in
    // this environment. Anything else among the changed keys is removed.
    let flag_rows: Vec<(String, String, String)> = sqlx::query_as(
        "select f.key, f.definition, c.config from flag f \
         join flag_config c on c.flag_id = f.id and c.environment_id = $1 \
         where f.project_id = $2 and f.archived_at is null and f.key in \
           (select key from env_change where environment_id = $1 and kind = 'flag' \
            and data_version > $3 and data_version <= $4) \
         order by f.key",
    )
    .bind(environment_id)
    .bind(project_id)
    .bind(low)
    .bind(high)
    .fetch_all(&mut *tx)
    .await?;
    let segment_rows: Vec<(String, String)> = sqlx::query_as(
        "select key, definition from segment where project_id = $1 and key in \
           (select key from env_change where environment_id = $2 and kind = 'segment' \
            and data_version > $3 and data_version <= $4) \
         order by key",
    )
    .bind(project_id)
    .bind(environment_id)
    .bind(low)
    .bind(high)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::histogram!("stream_patch_read_seconds").record(started.elapsed().as_secs_f64());

    let flags: Vec<FlagState> = flag_rows
        .into_iter()
        .filter_map(|(key, definition, config)| {
            let flag: Flag = parse(environment_id, "flag", &key, &definition)?;
            let config: FlagConfig = parse(environment_id, "flag config", &key, &config)?;
            Some(FlagState { flag, config })
        })
        .collect();
    let segments: Vec<Segment> = segment_rows
        .into_iter()
        .filter_map(|(key, definition)| parse(environment_id, "segment", &key, &definition))
        .collect();
    let mut removed_flags = Vec::new();
    let mut removed_segments = Vec::new();
    for (kind, key) in changed {
        match kind.as_str() {
            "flag" if !flags.iter().any(|f| f.flag.key == key) => removed_flags.push(key),
            "segment" if !segments.iter().any(|s| s.key == key) => removed_segments.push(key),
            _ => {}
        }
    }
    removed_flags.sort();
    removed_segments.sort();
    Ok(Built::Patch(Patch {
        from,
        to,
        flags,
        removed_flags,
        segments,
        removed_segments,
    }))
}

/// `data_version` of each of `ids` that still exists, in one query.
pub(crate) async fn data_versions(db: &Db, ids: &[i64]) -> Result<Vec<(i64, u64)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select id, data_version from environment where id in ({})",
        crate::store::placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&db.pool).await?;
    Ok(rows
        .into_iter()
        .map(|(id, v)| (id, u64::try_from(v).unwrap_or(0)))
        .collect())
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored document this server cannot read is treated like `load_environment` treats
/// it: left out (so here: removed), with a warning.
fn parse<T: serde::de::DeserializeOwned>(
    environment_id: i64,
    what: &str,
    key: &str,
    json: &str,
) -> Option<T> {
    match serde_json::from_str(json) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(environment_id, key, %error, "skipping unreadable stored {what}");
            None
        }
    }
}
