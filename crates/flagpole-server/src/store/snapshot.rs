//! Reading one environment as the `EnvironmentSnapshot` that SDKs and OFREP evaluate.
//!
//! The environment's `data_version`, its live flags with their configs and the project's
//! segments are read in one read-only transaction, so the version always describes exactly
//! the content returned: a cache keyed by version can never hold new data under an old
//! version or the reverse. Patches (what changed after a version) are read the same way.

use std::sync::Arc;

use sqlx::AssertSqlSafe;

use super::experiment::EXPOSURES_MARK;
use crate::db::Db;
use flagpole_core::model::{EnvironmentSnapshot, Flag, FlagConfig, FlagState, Segment};
use flagpole_core::wire::Patch;

/// Loads environment `environment_id` at its current `data_version`; `None` if there is no
/// such environment.
///
/// A stored document that this server cannot read (written by a newer server with a
/// shape it does not know) is left out with a warning rather than failing the whole
/// environment: SDK-side loading is lenient (ARCHITECTURE.md, "Lenient for SDKs").
pub async fn load_environment(
    db: &Db,
    environment_id: i64,
) -> Result<Option<EnvironmentSnapshot>, sqlx::Error> {
    let mut tx = db.begin_consistent_read().await?;
    let env: Option<(i64, i64)> =
        sqlx::query_as("select project_id, data_version from environment where id = $1")
            .bind(environment_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((project_id, data_version)) = env else {
        tx.rollback().await?;
        return Ok(None);
    };
    // Flags without a config row in this environment are left out: every flag gets one
    // row per environment when it (or the environment) is created.
    let flag_rows: Vec<FlagRow> = sqlx::query_as(AssertSqlSafe(format!(
        "select f.key, f.definition, c.config, f.version, {EXPOSURES_MARK} from flag f \
             join flag_config c on c.flag_id = f.id and c.environment_id = $1 \
             where f.project_id = $2 and f.archived_at is null order by f.key"
    )))
    .bind(environment_id)
    .bind(project_id)
    .fetch_all(&mut *tx)
    .await?;
    let segment_rows: Vec<(String, String)> =
        sqlx::query_as("select key, definition from segment where project_id = $1 order by key")
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;

    let flags = flag_rows
        .into_iter()
        .filter_map(|row| flag_state(environment_id, &row).map(Arc::new))
        .collect();
    let segments = segment_rows
        .into_iter()
        .filter_map(|(key, definition)| segment(environment_id, &key, &definition).map(Arc::new))
        .collect();
    Ok(Some(EnvironmentSnapshot {
        // data_version starts at 0 and only grows.
        version: u64::try_from(data_version).unwrap_or(0),
        flags,
        segments,
    }))
}

/// The outcome of [`load_patch`].
#[derive(Debug)]
pub(crate) enum PatchRead {
    /// The database holds no version after `from`.
    UpToDate,
    /// The changes from `from` to the database's current version.
    Patch(Patch),
    /// The environment no longer exists.
    Gone,
    /// The history after `from` was pruned (see `push::history`): only the whole
    /// environment can bring a holder of `from` up to date.
    Pruned,
}

/// Reads the changes of environment `environment_id` after version `from`.
///
/// Every write records `(environment, data_version, kind, key)` rows in `env_change` in
/// the same transaction that bumps the version, so the keys changed in (V, V'] are a
/// range read; their current states are then read in the SAME read-only transaction as
/// V' itself. A write that commits while we read is either wholly in that snapshot (and in
/// `to`) or wholly outside it, so the patch's content is exactly the environment at `to`.
pub(crate) async fn load_patch(
    db: &Db,
    environment_id: i64,
    from: u64,
) -> Result<PatchRead, sqlx::Error> {
    let mut tx = db.begin_consistent_read().await?;
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "select project_id, data_version, history_from from environment where id = $1",
    )
    .bind(environment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((project_id, to, history_from)) = row else {
        tx.rollback().await?;
        return Ok(PatchRead::Gone);
    };
    let to = u64::try_from(to).unwrap_or(0);
    if to <= from {
        tx.rollback().await?;
        return Ok(PatchRead::UpToDate);
    }
    if from < u64::try_from(history_from).unwrap_or(0) {
        tx.rollback().await?;
        return Ok(PatchRead::Pruned);
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
    // Same filter as [`load_environment`]: live flags with a config row in
    // this environment. Anything else among the changed keys is removed.
    let flag_rows: Vec<FlagRow> = sqlx::query_as(AssertSqlSafe(format!(
        "select f.key, f.definition, c.config, f.version, {EXPOSURES_MARK} from flag f \
             join flag_config c on c.flag_id = f.id and c.environment_id = $1 \
             where f.project_id = $2 and f.archived_at is null and f.key in \
               (select key from env_change where environment_id = $1 and kind = 'flag' \
                and data_version > $3 and data_version <= $4) \
             order by f.key"
    )))
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

    let flags: Vec<FlagState> = flag_rows
        .into_iter()
        .filter_map(|row| flag_state(environment_id, &row))
        .collect();
    let segments: Vec<Segment> = segment_rows
        .into_iter()
        .filter_map(|(key, definition)| segment(environment_id, &key, &definition))
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
    Ok(PatchRead::Patch(Patch {
        from,
        to,
        flags,
        removed_flags,
        segments,
        removed_segments,
    }))
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Ids of every environment, for warming caches at start.
pub async fn environment_ids(db: &Db) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("select id from environment order by id")
        .fetch_all(&db.pool)
        .await
}

/// A live flag with its config in one environment: key, definition, config, version, and
/// whether SDKs must send exposures for it (0/1: a running experiment).
type FlagRow = (String, String, String, i64, i64);

/// A stored flag with its config, as SDKs get it; `None` (logged) if either does not parse.
/// It carries the flag's version, which SDKs report evaluation counts against.
fn flag_state(environment_id: i64, row: &FlagRow) -> Option<FlagState> {
    let (key, definition, config, version, exposures) = row;
    let flag: Flag = parse_document(environment_id, "flag", key, definition)?;
    let config: FlagConfig = parse_document(environment_id, "flag config", key, config)?;
    Some(FlagState {
        version: u64::try_from(*version).unwrap_or(0),
        exposures: *exposures != 0,
        ..FlagState::new(flag, config)
    })
}

/// A stored segment; `None` (logged) if it does not parse.
fn segment(environment_id: i64, key: &str, definition: &str) -> Option<Segment> {
    parse_document(environment_id, "segment", key, definition)
}

/// The one parser of stored documents for SDK-side reads (snapshots and patches): a
/// document this server cannot read is left out with a warning, never an error (see
/// [`load_environment`]).
fn parse_document<T: serde::de::DeserializeOwned>(
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
