//! Reverting a flag to an earlier version: the old state is written as a new version,
//! validated and audited like any other write. History itself is never rewritten.

use super::flag_write::{FlagAudit, FlagView, finish};
use super::flags::{lock_for_write, refuse_if_required};
use super::publish;
use super::validate::{FlagShape, Written, flag_scope, validate_scope};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::environment;
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version;
use crate::store::project::Project;

/// Writes version `to_version`'s definition, archived state and configs as a new version.
/// Environments created since keep their current config; deleted ones are ignored.
pub(crate) async fn revert(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    to_version: i64,
    expected: i64,
    comment: &str,
) -> ApiResult<FlagView> {
    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    let (row, before) = lock_for_write(&mut tx, project.id, key, Some(expected), true).await?;
    let (_, old) = flag_version::get(&mut tx, row.id, to_version)
        .await?
        .ok_or_else(|| ApiError::not_found("flag version", to_version.to_string()))?;
    if old.flag.key != key {
        return Err(anyhow::anyhow!("flag_version of {key} holds flag {}", old.flag.key).into());
    }
    let mut data = flag_scope(&mut tx, project.id, key, None).await?;
    if old.archived && row.archived_at.is_none() {
        refuse_if_required(&data, key, &before)?;
    }
    // Restores every environment's config, so it touches every critical environment.
    super::critical::require_comment(project, &data.environments, comment)?;
    let env_keys: Vec<(i64, String)> = data
        .environments
        .iter()
        .map(|e| (e.id, e.key.clone()))
        .collect();
    let flag = data
        .flag_mut(key)
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    flag.definition = old.flag.clone();
    flag.archived = old.archived;
    let mut touched = Vec::new();
    for (id, env_key) in &env_keys {
        if let Some(config) = old.environments.get(env_key) {
            flag.configs.insert(*id, config.clone());
            touched.push(*id);
        }
    }
    let written = Written::Flag(key, FlagShape::State);
    validate_scope(&mut tx, project.id, &mut data, None, written).await?;

    let now = now_ms();
    let archived_at = if old.archived {
        row.archived_at.or(Some(now))
    } else {
        None
    };
    let version = flag::update(&mut tx, row.id, &old.flag, archived_at, now).await?;
    let row = FlagRow {
        definition: old.flag,
        archived_at,
        version,
        updated_at: now,
        ..row
    };
    let default_comment = format!("revert to version {to_version}");
    let audit = FlagAudit {
        actor,
        action: "flag.revert",
        environment_id: None,
        before: Some(serde_json::to_value(&before)?),
        after: None,
        comment: if comment.is_empty() {
            &default_comment
        } else {
            comment
        },
    };
    let view = finish(&mut tx, &data, &row, &touched, &bumped, audit, now).await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(view)
}
