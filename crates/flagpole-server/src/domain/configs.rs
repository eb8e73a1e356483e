//! Per-environment flag configuration: the full config write and the kill switch.

use flagpole_core::model::{FlagConfig, FlagState};
use flagpole_core::wire::Patch;
use serde_json::json;

use super::flag_write::{FlagAudit, FlagView, finish};
use super::flags::lock_for_write;
use super::validate::{FlagShape, Written, validate};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::push::Push;
use crate::state::{AppState, EnvChanged};
use crate::store::environment::{self, Environment};
use crate::store::flag::{self, FlagRow};
use crate::store::project::Project;
use crate::store::project_data::ProjectData;

/// What a per-environment write changes.
#[derive(Debug, Clone)]
pub(crate) enum ConfigChange {
    /// Replace the whole config.
    Replace(FlagConfig),
    /// Only flip the kill switch.
    Toggle(bool),
}

/// Writes one environment's config of a flag. `expected` is required for a replace (the
/// HTTP layer enforces it) and optional for a toggle: the kill switch must work from a
/// stale page during an incident, and flipping `enabled` cannot silently undo someone
/// else's targeting change the way a full replace could.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    flag_key: &str,
    env: &Environment,
    expected: Option<i64>,
    change: ConfigChange,
    comment: &str,
) -> ApiResult<FlagView> {
    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, Some(env.id)).await?;
    if bumped.is_empty() {
        // Deleted since the handler looked it up.
        return Err(ApiError::not_found("environment", &env.key));
    }
    let (row, view) = lock_for_write(&mut tx, project.id, flag_key, expected, false).await?;
    let mut data = ProjectData::load(&mut tx, project.id).await?;
    let flag = data
        .flag_mut(flag_key)
        .ok_or_else(|| ApiError::not_found("flag", flag_key))?;
    let before = flag
        .configs
        .get(&env.id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("flag {flag_key} has no config in env {}", env.id))?;
    let (after, action) = match change {
        ConfigChange::Replace(config) => (config, "flag_config.update"),
        ConfigChange::Toggle(enabled) => {
            if before.enabled == enabled {
                // Already in that state: nothing to write, no new version. Dropping the
                // transaction undoes the data-version bump.
                return Ok(view);
            }
            (
                FlagConfig {
                    enabled,
                    ..before.clone()
                },
                "flag.toggle",
            )
        }
    };
    flag.configs.insert(env.id, after.clone());
    // This environment at its new version differs from the previous one in this flag
    // alone (see `publish_local`).
    let changed = FlagState {
        flag: flag.definition.clone(),
        config: after.clone(),
    };
    validate(
        &data,
        Some(&[env.id]),
        Written::Flag(flag_key, FlagShape::Config),
    )?;

    let now = now_ms();
    let version = flag::update(&mut tx, row.id, &row.definition, row.archived_at, now).await?;
    let row = FlagRow {
        version,
        updated_at: now,
        ..row
    };
    let audit = FlagAudit {
        actor,
        action,
        environment_id: Some(env.id),
        before: Some(json!({"environment": env.key, "config": before})),
        after: Some(json!({"environment": env.key, "config": after})),
        comment,
    };
    let view = finish(&mut tx, &data, &row, &[env.id], &bumped, audit, now).await?;
    tx.commit().await?;
    // On a task of its own: the response goes out first (the fan-out to this replica's
    // SDKs would otherwise run ahead of it on the same threads), then this replica's
    // SDKs get the patch, then everyone else hears of the version.
    let (push, changes) = (state.push.clone(), state.changes.clone());
    state.tasks.spawn(async move {
        publish_local(&push, &bumped, changed);
        for change in bumped {
            changes.publish(change);
        }
    });
    Ok(view)
}

/// Hands the change straight to this replica's hub of the environment, so its SDKs get it
/// without the hub reading back from the database what this write just wrote (that read
/// was ~1 ms at the median under load, and sat between every commit and its fan-out).
///
/// Exact because every write bumps each environment it touches once, first in its
/// transaction and under the environment row's lock: version N is N-1 with this write
/// applied, and a config write changes one flag in one environment. The hub takes the
/// patch only if it holds exactly N-1; otherwise (it moved on, or is behind) the change
/// feed, announced next, makes it read from the database as before.
fn publish_local(push: &Push, bumped: &[EnvChanged], changed: FlagState) {
    let [change] = bumped else {
        return;
    };
    let Ok(to) = u64::try_from(change.data_version) else {
        return;
    };
    push.publish_local(
        change.environment_id,
        Patch {
            from: to - 1,
            to,
            flags: vec![changed],
            ..Patch::default()
        },
    );
}
