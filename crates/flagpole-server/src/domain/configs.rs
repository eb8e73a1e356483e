//! Per-environment flag configuration: the full config write and the kill switch.

use flagpole_core::model::{FlagConfig, FlagState};
use flagpole_core::wire::Patch;
use serde_json::json;

use super::flag_write::{FlagAudit, FlagView, record, version_state};
use super::flags::lock_row_for_write;
use super::validate::{FlagShape, Written, flag_scope, validate_scope};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::push::Push;
use crate::push::local::LocalWrite;
use crate::state::{AppState, EnvChanged};
use crate::store::Conn;
use crate::store::environment::{self, Environment};
use crate::store::experiment;
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version::FlagVersionState;
use crate::store::project::Project;

/// What a per-environment write changes.
#[derive(Debug, Clone)]
pub(crate) enum ConfigChange {
    /// Replace the whole config.
    Replace(FlagConfig),
    /// Only flip the kill switch.
    Toggle(bool),
    /// Replace the whole config to serve an experiment's split (`domain::experiments`,
    /// starting or restarting it): the one write allowed to change the default serve of a
    /// flag whose experiment is running.
    Experiment(FlagConfig),
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
    let applied = apply(
        &mut tx,
        &state.push,
        actor,
        project,
        flag_key,
        env,
        expected,
        change,
        comment,
    )
    .await?;
    if !applied.changed() {
        // Dropping the transaction undoes the data-version bump.
        return Ok(applied.view);
    }
    tx.commit().await?;
    Ok(applied.publish(state))
}

/// A config write done in the caller's transaction, to be published once it commits.
pub(crate) struct Applied {
    /// The flag after the write.
    pub(crate) view: FlagView,
    /// What to announce after the commit; `None` if nothing changed.
    publication: Option<Publication>,
}

struct Publication {
    bumped: Vec<EnvChanged>,
    local: Option<(LocalWrite, Patch)>,
}

impl Applied {
    /// False when a toggle found the flag already in the requested state: nothing was
    /// written but the data-version bump, which the caller must roll back (drop the
    /// transaction or savepoint) so no version without a change reaches SDKs.
    pub(crate) fn changed(&self) -> bool {
        self.publication.is_some()
    }

    /// Announces the write. Call only after the commit succeeded.
    pub(crate) fn publish(self, state: &AppState) -> FlagView {
        if let Some(Publication { bumped, local }) = self.publication {
            // On a task of its own: the response goes out first (the fan-out to this
            // replica's SDKs would otherwise run ahead of it on the same threads), then
            // this replica's SDKs get the patch, then everyone else hears of the version.
            let changes = state.changes.clone();
            state.tasks.spawn(async move {
                if let Some((local, patch)) = local {
                    local.publish(patch);
                }
                for change in bumped {
                    changes.publish(change);
                }
            });
        }
        self.view
    }
}

/// [`write`] inside the caller's transaction `tx`, which the caller commits and then
/// publishes ([`Applied::publish`]): the one place a config write is made, whether a
/// person or an alert (`domain::alert_receive`) makes it. Checks the comment a critical
/// environment may require.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply(
    tx: &mut Conn,
    push: &Push,
    actor: &Actor,
    project: &Project,
    flag_key: &str,
    env: &Environment,
    expected: Option<i64>,
    change: ConfigChange,
    comment: &str,
) -> ApiResult<Applied> {
    super::critical::require_comment(project, [env], comment)?;
    let bumped = environment::bump_data_versions(&mut *tx, project.id, Some(env.id)).await?;
    if bumped.is_empty() {
        // Deleted since the handler looked it up.
        return Err(ApiError::not_found("environment", &env.key));
    }
    let row = lock_row_for_write(&mut *tx, project.id, flag_key, expected, false).await?;
    // While an experiment runs on the flag here, SDKs send exposures for it, and its
    // split may change only through the experiment (a restart).
    let experiment = experiment::running_on(&mut *tx, env.id, row.id).await?;
    let by_experiment = matches!(change, ConfigChange::Experiment(_));
    let (before, after, action, history) = match change {
        ConfigChange::Replace(config) | ConfigChange::Experiment(config) => {
            let mut data = flag_scope(&mut *tx, project.id, flag_key, Some(env.id)).await?;
            let flag = data
                .flag_mut(flag_key)
                .ok_or_else(|| ApiError::not_found("flag", flag_key))?;
            let before = config_in(flag.configs.get(&env.id), flag_key, env)?.clone();
            if let Some(id) = experiment
                && !by_experiment
                && before.default_serve != config.default_serve
            {
                return Err(ApiError::invalid(
                    "config.default_serve",
                    format!(
                        "experiment {id} is running on this flag in `{}` and the default serve \
                         is its split: changing the split while it runs biases its results \
                         (units already exposed keep their old share). Restart the experiment \
                         with the new split, or stop it first",
                        env.key
                    ),
                ));
            }
            flag.configs.insert(env.id, config.clone());
            validate_scope(
                &mut *tx,
                project.id,
                &mut data,
                Some(&[env.id]),
                Written::Flag(flag_key, FlagShape::Config),
            )
            .await?;
            // Validation loaded what the config names, so look the flag up again.
            let flag = data
                .flag(flag_key)
                .ok_or_else(|| ApiError::not_found("flag", flag_key))?;
            let history = version_state(&data, flag);
            (before, config, "flag_config.update", history)
        }
        // The kill switch flips `enabled` alone, and whether a configuration compiles does
        // not depend on it (a disabled flag's rules are compiled and checked all the same),
        // so the project is neither loaded nor validated: only this flag's configurations
        // are read, and pressing it costs the same in a project of ten flags or of ten
        // thousand.
        ConfigChange::Toggle(enabled) => {
            let configs = flag::configs(&mut *tx, row.id).await?;
            let before = config_in(
                configs
                    .iter()
                    .find(|(id, ..)| *id == env.id)
                    .map(|(.., c)| c),
                flag_key,
                env,
            )?
            .clone();
            if before.enabled == enabled {
                // Already in that state: nothing to write, no new version (the caller
                // rolls the data-version bump back, see `Applied::changed`).
                let environments = configs.into_iter().map(|(_, k, c)| (k, c)).collect();
                return Ok(Applied {
                    view: FlagView::new(&row, environments),
                    publication: None,
                });
            }
            let after = FlagConfig {
                enabled,
                ..before.clone()
            };
            let history = FlagVersionState {
                flag: row.definition.clone(),
                archived: false, // `lock_row_for_write` refused an archived flag
                environments: configs
                    .into_iter()
                    .map(|(id, key, config)| {
                        (key, if id == env.id { after.clone() } else { config })
                    })
                    .collect(),
            };
            (before, after, "flag.toggle", history)
        }
    };
    let now = now_ms();
    let version = flag::bump_version(&mut *tx, row.id, now).await?;
    // This environment at its new version differs from the previous one in this flag
    // alone (see `local_patch`), which SDKs now count against its new version.
    let changed = FlagState {
        version: u64::try_from(version).unwrap_or(0),
        exposures: experiment.is_some(),
        ..FlagState::new(row.definition.clone(), after.clone())
    };
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
    let view = record(
        &mut *tx,
        &row,
        &[(env.id, &after)],
        history,
        &bumped,
        audit,
        now,
    )
    .await?;
    let local = local_patch(push, &bumped, changed);
    Ok(Applied {
        view,
        publication: Some(Publication { bumped, local }),
    })
}

/// The flag's config in `env`: every flag has one in every environment of its project.
fn config_in<'a>(
    config: Option<&'a FlagConfig>,
    flag_key: &str,
    env: &Environment,
) -> ApiResult<&'a FlagConfig> {
    config.ok_or_else(|| anyhow::anyhow!("flag {flag_key} has no config in env {}", env.id).into())
}

/// The patch this write makes to its one environment, announced to that environment's hub
/// on this replica (`push::local`): a config write changes one flag in one environment, at
/// one new version.
fn local_patch(
    push: &Push,
    bumped: &[EnvChanged],
    changed: FlagState,
) -> Option<(LocalWrite, Patch)> {
    let [change] = bumped else {
        return None;
    };
    let to = u64::try_from(change.data_version).ok()?;
    let patch = Patch {
        from: to.checked_sub(1)?,
        to,
        flags: vec![changed],
        ..Patch::default()
    };
    Some((push.begin_local(change.environment_id, to), patch))
}
