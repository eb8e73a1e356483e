//! Reading one environment as the `EnvironmentSnapshot` that SDKs and OFREP evaluate.
//!
//! The environment's `data_version`, its live flags with their configs and the project's
//! segments are read in one read-only transaction, so the version always describes exactly
//! the content returned: a cache keyed by version can never hold new data under an old
//! version or the reverse.

use std::sync::Arc;

use crate::db::Db;
use flagpole_core::model::{EnvironmentSnapshot, Flag, FlagConfig, FlagState, Segment};

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
    let flag_rows: Vec<(String, String, String)> = sqlx::query_as(
        "select f.key, f.definition, c.config from flag f \
         join flag_config c on c.flag_id = f.id and c.environment_id = $1 \
         where f.project_id = $2 and f.archived_at is null order by f.key",
    )
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
        .filter_map(|(key, definition, config)| {
            let flag: Flag = parse_document(environment_id, "flag", &key, &definition)?;
            let config: FlagConfig = parse_document(environment_id, "flag config", &key, &config)?;
            Some(Arc::new(FlagState { flag, config }))
        })
        .collect();
    let segments = segment_rows
        .into_iter()
        .filter_map(|(key, definition)| {
            parse_document::<Segment>(environment_id, "segment", &key, &definition).map(Arc::new)
        })
        .collect();
    Ok(Some(EnvironmentSnapshot {
        // data_version starts at 0 and only grows.
        version: u64::try_from(data_version).unwrap_or(0),
        flags,
        segments,
    }))
}

/// Ids of every environment, for warming caches at start.
pub async fn environment_ids(db: &Db) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("select id from environment order by id")
        .fetch_all(&db.pool)
        .await
}

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
