//! Flag history: what each version changed, and reverting to an earlier version, either
//! the whole flag or one environment. A revert writes the old state as a new version,
//! validated and audited like any other write; history itself is never rewritten. A
//! preview says, before anything is written, what a revert would change in each
//! environment and whether it turns a critical environment on.
//!
//! Restoring one environment exists because a whole-flag revert restores every
//! environment at once: reverting to v3 turned Production back on after it had been
//! killed in v5.

use flagpole_core::model::FlagConfig;
use serde::Serialize;
use serde_json::json;

use super::diff::{Change, diff};
use super::flag_write::{FlagAudit, FlagView, finish};
use super::flags::{lock_for_write, refuse_if_required};
use super::publish;
use super::validate::{FlagShape, Written, flag_scope, validate_scope};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::environment::{self, Environment};
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version::{self, FlagVersionState, VersionSummary};
use crate::store::project::Project;
use crate::store::project_data::ProjectData;

/// A history entry: who, when, why, and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct HistoryEntry {
    #[serde(flatten)]
    pub summary: VersionSummary,
    /// Keys of the environments whose config this version changed (for the first
    /// version, every environment the flag was created in).
    pub environments: Vec<String>,
    /// Whether the definition (name, variants, salt...) or the archived state changed.
    pub definition_changed: bool,
}

/// History entries from versions newest first, as `flag_version::list` returns them with
/// one extra, older row when there is one: each entry is compared with the next row, and
/// the extra row only serves as the last entry's predecessor.
pub(crate) fn entries(
    rows: Vec<(VersionSummary, FlagVersionState)>,
    limit: usize,
) -> Vec<HistoryEntry> {
    let mut out = Vec::with_capacity(limit.min(rows.len()));
    for (i, (summary, state)) in rows.iter().enumerate().take(limit) {
        let previous = rows
            .get(i + 1)
            .filter(|(older, _)| older.version == summary.version - 1)
            .map(|(_, s)| s);
        let (environments, definition_changed) = match previous {
            Some(before) => (
                state
                    .environments
                    .iter()
                    .filter(|(key, config)| before.environments.get(*key) != Some(config))
                    .map(|(key, _)| key.clone())
                    .collect(),
                before.flag != state.flag || before.archived != state.archived,
            ),
            None => (state.environments.keys().cloned().collect(), true),
        };
        out.push(HistoryEntry {
            summary: summary.clone(),
            environments,
            definition_changed,
        });
    }
    out
}

/// What to revert to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RevertTarget<'a> {
    /// The version whose state to restore.
    pub(crate) to_version: i64,
    /// Restore only this environment's config (looked up by the caller); `None` restores
    /// the whole flag.
    pub(crate) environment: Option<&'a Environment>,
}

/// One environment as a revert would change it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct EnvironmentChange {
    /// Environment key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Whether it is critical.
    pub critical: bool,
    /// Whether the flag is served there now (enabled and not archived).
    pub on_before: bool,
    /// Whether it would be served there after the revert.
    pub on_after: bool,
    /// Changes to its config, paths relative to the config (`rules[0].serve`).
    pub changes: Vec<Change>,
}

/// What a revert would do, computed without writing anything.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct RevertPreview {
    /// The flag's current version: send it as `version` with the revert.
    pub version: i64,
    /// The version whose state would be restored.
    pub to_version: i64,
    /// The one environment restored; absent for a whole-flag revert.
    pub environment: Option<String>,
    /// Changes to the definition and archived state (`flag.variants[1].value`,
    /// `archived`); always empty for a one-environment revert.
    pub definition: Vec<Change>,
    /// Every environment whose config or served state would change.
    pub environments: Vec<EnvironmentChange>,
    /// Environments a whole-flag revert leaves as they are: they did not exist then.
    pub kept: Vec<String>,
    /// In plain words, each critical environment the revert turns on or off.
    pub warnings: Vec<String>,
    /// Why the revert would be refused (the 422 it would get); empty if it is valid.
    pub problems: Vec<FieldError>,
    /// Whether the project requires a comment for this revert.
    pub comment_required: bool,
}

/// A revert applied to the project's data in memory.
struct Plan {
    preview: RevertPreview,
    /// Environments whose config is written.
    config_envs: Vec<i64>,
    /// Environments whose served values may change (for the comment requirement).
    touched: Vec<Environment>,
}

/// Loads version `to_version` of the flag in `row`.
async fn old_state(conn: &mut Conn, row: &FlagRow, to_version: i64) -> ApiResult<FlagVersionState> {
    let (_, old) = flag_version::get(conn, row.id, to_version)
        .await?
        .ok_or_else(|| ApiError::not_found("flag version", to_version.to_string()))?;
    if old.flag.key != row.key {
        return Err(
            anyhow::anyhow!("flag_version of {} holds flag {}", row.key, old.flag.key).into(),
        );
    }
    Ok(old)
}

/// Applies the revert to `data` and describes it. `data` must hold the flag of `row`.
fn plan(
    project: &Project,
    data: &mut ProjectData,
    row: &FlagRow,
    old: &FlagVersionState,
    target: RevertTarget<'_>,
) -> ApiResult<Plan> {
    let environments = data.environments.clone();
    let flag = data
        .flag_mut(&row.key)
        .ok_or_else(|| ApiError::not_found("flag", &row.key))?;
    let archived_before = flag.archived;
    let before_configs = flag.configs.clone();
    let mut definition = Vec::new();
    let mut kept = Vec::new();
    let mut config_envs = Vec::new();
    match target.environment {
        Some(env) => {
            let config = old.environments.get(&env.key).ok_or_else(|| {
                ApiError::invalid(
                    "environment",
                    format!(
                        "environment `{}` did not exist at version {}",
                        env.key, target.to_version
                    ),
                )
            })?;
            flag.configs.insert(env.id, config.clone());
            config_envs.push(env.id);
        }
        None => {
            definition = diff(
                &json!({"flag": flag.definition, "archived": flag.archived}),
                &json!({"flag": old.flag, "archived": old.archived}),
            );
            flag.definition = old.flag.clone();
            flag.archived = old.archived;
            for env in &environments {
                match old.environments.get(&env.key) {
                    Some(config) => {
                        flag.configs.insert(env.id, config.clone());
                        config_envs.push(env.id);
                    }
                    None => kept.push(env.key.clone()),
                }
            }
        }
    }
    // Variants, salt or archived state change what every environment serves.
    let serves_differently = row.definition.variants != flag.definition.variants
        || row.definition.salt != flag.definition.salt
        || archived_before != flag.archived;
    let on = |config: Option<&FlagConfig>, archived: bool| {
        !archived && config.is_some_and(|c| c.enabled)
    };
    let mut changed = Vec::new();
    let mut touched = Vec::new();
    let mut warnings = Vec::new();
    for env in &environments {
        let before = before_configs.get(&env.id);
        let after = flag.configs.get(&env.id);
        let changes = diff(&json!(before), &json!(after));
        let (on_before, on_after) = (on(before, archived_before), on(after, flag.archived));
        if changes.is_empty() && on_before == on_after {
            if serves_differently {
                touched.push(env.clone());
            }
            continue;
        }
        let name = if env.name.is_empty() {
            &env.key
        } else {
            &env.name
        };
        if env.critical && on_before != on_after {
            warnings.push(if on_after {
                format!(
                    "This turns `{}` ON in {name}, a critical environment: its users start \
                     getting the rules of version {}.",
                    row.key, target.to_version
                )
            } else {
                format!(
                    "This turns `{}` OFF in {name}, a critical environment: its users get \
                     the off variant.",
                    row.key
                )
            });
        }
        touched.push(env.clone());
        changed.push(EnvironmentChange {
            key: env.key.clone(),
            name: name.clone(),
            critical: env.critical,
            on_before,
            on_after,
            changes,
        });
    }
    let comment_required = project.require_critical_comment && touched.iter().any(|e| e.critical);
    Ok(Plan {
        preview: RevertPreview {
            version: row.version,
            to_version: target.to_version,
            environment: target.environment.map(|e| e.key.clone()),
            definition,
            environments: changed,
            kept,
            warnings,
            problems: Vec::new(),
            comment_required,
        },
        config_envs,
        touched,
    })
}

/// The part of the project a revert can affect: the flag and what reaches it, in the
/// one environment of a one-environment revert.
async fn revert_scope(
    conn: &mut Conn,
    project: &Project,
    key: &str,
    target: RevertTarget<'_>,
) -> ApiResult<ProjectData> {
    flag_scope(conn, project.id, key, target.environment.map(|e| e.id)).await
}

/// Validates a planned revert: only its environment for a one-environment revert.
async fn validate_plan(
    conn: &mut Conn,
    project: &Project,
    data: &mut ProjectData,
    key: &str,
    target: RevertTarget<'_>,
) -> ApiResult<()> {
    let only = target.environment.map(|e| [e.id]);
    let written = Written::Flag(key, FlagShape::State);
    validate_scope(
        conn,
        project.id,
        data,
        only.as_ref().map(|ids| &ids[..]),
        written,
    )
    .await
}

/// What reverting flag `key` to `target` would change, without writing it.
pub(crate) async fn preview(
    state: &AppState,
    project: &Project,
    key: &str,
    target: RevertTarget<'_>,
) -> ApiResult<RevertPreview> {
    let mut conn = state.db.pool.acquire().await?;
    let row = flag::by_key(&mut conn, project.id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    let old = old_state(&mut conn, &row, target.to_version).await?;
    let mut data = revert_scope(&mut conn, project, key, target).await?;
    let mut plan = plan(project, &mut data, &row, &old, target)?;
    match validate_plan(&mut conn, project, &mut data, key, target).await {
        Ok(()) => {}
        Err(ApiError::Validation(problems)) => plan.preview.problems = problems,
        Err(other) => return Err(other),
    }
    Ok(plan.preview)
}

/// Writes version `to_version`'s state as a new version: for one environment, only its
/// config; for the whole flag, the definition, archived state and every environment's
/// config (environments created since keep their current config; deleted ones are
/// ignored).
pub(crate) async fn revert(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    target: RevertTarget<'_>,
    expected: i64,
    comment: &str,
) -> ApiResult<FlagView> {
    let mut tx = state.db.begin_write().await?;
    let only = target.environment.map(|e| e.id);
    let bumped = environment::bump_data_versions(&mut tx, project.id, only).await?;
    if let (Some(env), true) = (target.environment, bumped.is_empty()) {
        // Deleted since the handler looked it up.
        return Err(ApiError::not_found("environment", &env.key));
    }
    // A one-environment revert is a config write, refused on an archived flag like one.
    let (row, before) =
        lock_for_write(&mut tx, project.id, key, Some(expected), only.is_none()).await?;
    let old = old_state(&mut tx, &row, target.to_version).await?;
    let mut data = revert_scope(&mut tx, project, key, target).await?;
    // Archiving again (a whole-flag revert only) must not break a live dependent.
    if only.is_none() && old.archived && row.archived_at.is_none() {
        refuse_if_required(&data, key, &before)?;
    }
    let plan = plan(project, &mut data, &row, &old, target)?;
    super::critical::require_comment(project, &plan.touched, comment)?;
    validate_plan(&mut tx, project, &mut data, key, target).await?;

    let now = now_ms();
    let (row, default_comment, audit_env, audit_states) = match target.environment {
        Some(env) => {
            let version = flag::bump_version(&mut tx, row.id, now).await?;
            let config_of = |view: &FlagView| view.environments.get(&env.key).cloned();
            let after = data
                .flag_mut(key)
                .and_then(|f| f.configs.get(&env.id).cloned());
            let states = (
                json!({"environment": env.key, "config": config_of(&before)}),
                Some(json!({"environment": env.key, "config": after})),
            );
            let row = FlagRow {
                version,
                updated_at: now,
                ..row
            };
            let comment = format!(
                "revert environment {} to version {}",
                env.key, target.to_version
            );
            (row, comment, Some(env.id), states)
        }
        None => {
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
            let comment = format!("revert to version {}", target.to_version);
            (row, comment, None, (serde_json::to_value(&before)?, None))
        }
    };
    let audit = FlagAudit {
        actor,
        action: "flag.revert",
        environment_id: audit_env,
        before: Some(audit_states.0),
        after: audit_states.1,
        comment: if comment.is_empty() {
            &default_comment
        } else {
            comment
        },
    };
    let view = finish(&mut tx, &data, &row, &plan.config_envs, &bumped, audit, now).await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(view)
}
