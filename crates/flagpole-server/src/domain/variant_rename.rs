//! Renaming a flag's variant key: one write that rewrites every reference to it, in
//! every environment, including the prerequisites of other flags that require it.
//!
//! Done by a client as separate writes, a rename cannot succeed: the definition without
//! `a` is invalid while any config still serves `a`, and each config serving `b` is
//! invalid while the definition still says `a` (the dashboard reported "6 fields are
//! invalid"). Here it is one transaction: one bump of the flag's version, one history
//! entry and one audit entry for it. A live flag whose prerequisite names the variant gets
//! its config rewritten too, and with it its own version and history entry, because its
//! stored state changed and a stale editor of that flag must see a conflict.

use flagpole_core::model::FlagConfig;

use super::flag_write::{FlagAudit, FlagView, finish, version_state};
use super::flags::{lock_for_write, lock_row_for_write};
use super::validate::{FlagShape, Written, flag_scope, validate_scope};
use super::{Problems, publish};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::environment::{self, ChangeKind};
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version;
use crate::store::project::Project;

/// A rename as the API receives it.
#[derive(Debug, Clone)]
pub(crate) struct VariantRename {
    /// The variant's current key.
    pub(crate) from: String,
    /// Its new key (the body's `to`).
    pub(crate) to: String,
    /// The flag version being edited.
    pub(crate) expected: i64,
    pub(crate) comment: String,
}

/// Renames variant `from` of flag `key` to `to` everywhere it is named.
pub(crate) async fn rename_variant(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    input: VariantRename,
) -> ApiResult<FlagView> {
    let VariantRename {
        from,
        to,
        expected,
        comment,
    } = input;
    let mut problems = Problems::default();
    problems.key("to", &to);
    problems.finish()?;

    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    let (row, before) = lock_for_write(&mut tx, project.id, key, Some(expected), false).await?;
    if !row.definition.variants.iter().any(|v| v.key == from) {
        return Err(ApiError::not_found("variant", from));
    }
    if from == to {
        // Nothing to rename; dropping the transaction undoes the data-version bump.
        return Ok(before);
    }
    if row.definition.variants.iter().any(|v| v.key == to) {
        return Err(ApiError::invalid(
            "to",
            format!("flag `{key}` already has a variant `{to}`"),
        ));
    }

    let mut data = flag_scope(&mut tx, project.id, key, None).await?;
    // The key is visible to SDKs (evaluations report it), so it is a change to every
    // environment, critical ones included.
    super::critical::require_comment(project, &data.environments, &comment)?;
    let mut definition = row.definition.clone();
    definition.rename_variant(&from, &to);
    let flag = data
        .flag_mut(key)
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    flag.definition = definition.clone();
    for config in flag.configs.values_mut() {
        config.rename_variant(&from, &to);
    }
    // Live flags that require this one: rewrite their prerequisites on `from`.
    let mut dependents: Vec<String> = Vec::new();
    for other in data.flags.iter_mut() {
        if other.definition.key == key || other.archived {
            continue;
        }
        let changed: usize = other
            .configs
            .values_mut()
            .map(|c: &mut FlagConfig| c.rename_prerequisite_variant(key, &from, &to))
            .sum();
        if changed > 0 {
            dependents.push(other.definition.key.clone());
        }
    }
    let written = Written::Flag(key, FlagShape::Definition);
    validate_scope(&mut tx, project.id, &mut data, None, written).await?;

    let now = now_ms();
    let env_ids: Vec<i64> = data.environments.iter().map(|e| e.id).collect();
    let dependent_comment = format!("variant `{from}` of `{key}` renamed to `{to}`");
    for dependent in &dependents {
        let dep_row = lock_row_for_write(&mut tx, project.id, dependent, None, false).await?;
        let dep = data
            .flag(dependent)
            .ok_or_else(|| anyhow::anyhow!("dependent {dependent} vanished from project data"))?;
        for (env_id, config) in &dep.configs {
            flag::put_config(&mut tx, dep_row.id, *env_id, config).await?;
        }
        let version = flag::bump_version(&mut tx, dep_row.id, now).await?;
        flag_version::insert(
            &mut tx,
            dep_row.id,
            version,
            &version_state(&data, dep),
            &actor.name,
            &dependent_comment,
            now,
        )
        .await?;
        environment::record_changes(&mut tx, &bumped, ChangeKind::Flag, dependent).await?;
    }

    let version = flag::update(&mut tx, row.id, &definition, row.archived_at, now).await?;
    let row = FlagRow {
        definition,
        version,
        updated_at: now,
        ..row
    };
    let audit = FlagAudit {
        actor,
        action: "flag.variant_rename",
        environment_id: None,
        before: Some(serde_json::to_value(&before)?),
        after: None,
        comment: &comment,
    };
    let view = finish(&mut tx, &data, &row, &env_ids, &bumped, audit, now).await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(view)
}
