//! The `flag_version` table: the full state of a flag after each of its versions.

use std::collections::BTreeMap;

use flagpole_core::model::{Flag, FlagConfig};
use serde::{Deserialize, Serialize};

use super::{Conn, StoreResult, from_text, to_text};

/// Everything about a flag at one version: what history shows, diff compares and revert
/// writes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagVersionState {
    /// The definition.
    #[schema(value_type = Object)]
    pub flag: Flag,
    /// Whether the flag was archived.
    pub archived: bool,
    /// Config by environment key (environments that existed at the time).
    #[schema(value_type = Object)]
    pub environments: BTreeMap<String, FlagConfig>,
}

/// A history entry without the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VersionSummary {
    /// The flag's version.
    pub version: i64,
    /// Who wrote it.
    pub actor: String,
    /// When (epoch ms).
    pub created_at: i64,
    /// The comment given with the change.
    pub comment: String,
}

/// Records the state of a flag at `version`.
pub async fn insert(
    conn: &mut Conn,
    flag_id: i64,
    version: i64,
    state: &FlagVersionState,
    actor: &str,
    comment: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "insert into flag_version (flag_id, version, state, actor, comment, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(flag_id)
    .bind(version)
    .bind(to_text(state)?)
    .bind(actor)
    .bind(comment)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Versions of a flag with their states, newest first.
pub async fn list(
    conn: &mut Conn,
    flag_id: i64,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<(VersionSummary, FlagVersionState)>> {
    let rows: Vec<(i64, String, i64, String, String)> = sqlx::query_as(
        "select version, actor, created_at, comment, state from flag_version where flag_id = $1 \
         order by version desc limit $2 offset $3",
    )
    .bind(flag_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(parse).collect()
}

fn parse(
    (version, actor, created_at, comment, state): (i64, String, i64, String, String),
) -> StoreResult<(VersionSummary, FlagVersionState)> {
    Ok((
        VersionSummary {
            version,
            actor,
            created_at,
            comment,
        },
        from_text("flag version", &state)?,
    ))
}

/// One version with its state.
pub async fn get(
    conn: &mut Conn,
    flag_id: i64,
    version: i64,
) -> StoreResult<Option<(VersionSummary, FlagVersionState)>> {
    let row: Option<(i64, String, i64, String, String)> = sqlx::query_as(
        "select version, actor, created_at, comment, state from flag_version \
         where flag_id = $1 and version = $2",
    )
    .bind(flag_id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    row.map(parse).transpose()
}
