//! What every flag write shares: the API view of a flag and the tail of the transaction
//! (configs, history, change log, audit) once the change has been validated.

use std::collections::BTreeMap;

use flagpole_core::lifecycle::FlagType;
use flagpole_core::model::{Flag, FlagConfig, FlagKind, Serve, Variant};
use serde::Serialize;
use serde_json::Value;

use crate::auth::Actor;
use crate::error::ApiResult;
use crate::state::EnvChanged;
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment::{self, ChangeKind};
use crate::store::flag::{self, FlagRow};
use crate::store::flag_version::{self, FlagVersionState};
use crate::store::project_data::{ProjectData, ProjectFlag};

/// A flag as the API shows it: definition, state, and every environment's config.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct FlagView {
    /// Key, unique in the project.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Labels.
    pub tags: Vec<String>,
    /// `boolean`, `string`, `number` or `json`.
    #[schema(value_type = String)]
    pub kind: FlagKind,
    /// The values the flag can serve.
    #[schema(value_type = Vec<Object>)]
    pub variants: Vec<Variant>,
    /// Bucketing salt (empty: the flag key).
    pub salt: String,
    /// What the flag is for, which sets its expected lifetime: `release`, `experiment`,
    /// `operational`, `kill_switch` or `permission`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub flag_type: FlagType,
    /// Marked to stay: never potentially stale.
    pub permanent: bool,
    /// Archived flags are not served.
    pub archived: bool,
    /// When it was archived (epoch ms).
    pub archived_at: Option<i64>,
    /// One version across the definition and all configs.
    pub version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
    /// Config (`FlagConfig`) by environment key.
    #[schema(value_type = Object)]
    pub environments: BTreeMap<String, FlagConfig>,
}

impl FlagView {
    /// Assembles the view from a row and its configs.
    pub(crate) fn new(row: &FlagRow, environments: BTreeMap<String, FlagConfig>) -> FlagView {
        let d = &row.definition;
        FlagView {
            key: row.key.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            tags: d.tags.clone(),
            kind: d.kind,
            variants: d.variants.clone(),
            salt: d.salt.clone(),
            flag_type: row.flag_type,
            permanent: row.permanent,
            archived: row.archived_at.is_some(),
            archived_at: row.archived_at,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            environments,
        }
    }

    /// The view of a stored flag.
    pub(crate) async fn load(conn: &mut Conn, row: &FlagRow) -> ApiResult<FlagView> {
        let configs = flag::configs(conn, row.id).await?;
        Ok(FlagView::new(
            row,
            configs.into_iter().map(|(_, k, c)| (k, c)).collect(),
        ))
    }
}

/// Variants of a boolean flag created without any.
pub(crate) fn boolean_variants() -> Vec<Variant> {
    [("on", true), ("off", false)]
        .into_iter()
        .map(|(key, value)| Variant {
            key: key.into(),
            value: Value::Bool(value),
            name: String::new(),
            description: String::new(),
        })
        .collect()
}

/// The config a flag gets in an environment nobody configured: off, serving the last
/// variant when off and the first when on (for a boolean flag: `off` / `on`).
pub(crate) fn default_config(flag: &Flag) -> FlagConfig {
    let first = flag
        .variants
        .first()
        .map(|v| v.key.clone())
        .unwrap_or_default();
    let last = flag
        .variants
        .last()
        .map(|v| v.key.clone())
        .unwrap_or_default();
    FlagConfig {
        enabled: false,
        off_variant: last,
        targets: Vec::new(),
        prerequisites: Vec::new(),
        rules: Vec::new(),
        default_serve: Serve::Variant(first),
    }
}

/// The history state of `flag`, configs keyed by environment key.
pub(crate) fn version_state(data: &ProjectData, flag: &ProjectFlag) -> FlagVersionState {
    FlagVersionState {
        flag: flag.definition.clone(),
        archived: flag.archived,
        environments: data
            .environments
            .iter()
            .filter_map(|e| flag.configs.get(&e.id).map(|c| (e.key.clone(), c.clone())))
            .collect(),
    }
}

/// The audit side of a flag write.
pub(crate) struct FlagAudit<'a> {
    pub(crate) actor: &'a Actor,
    /// `flag.create`, `flag.update`, `flag_config.update`...
    pub(crate) action: &'a str,
    /// Set for per-environment writes.
    pub(crate) environment_id: Option<i64>,
    /// State before (the view, or the config for per-environment writes).
    pub(crate) before: Option<Value>,
    /// What to record as "after" instead of the whole view (per-environment writes).
    pub(crate) after: Option<Value>,
    pub(crate) comment: &'a str,
}

/// Finishes a validated flag write whose row is already at its new `version` (inserted or
/// updated by the caller): writes the configs of `config_envs`, the history entry, the
/// change log at the bumped data versions and the audit entry. Returns the new view.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    conn: &mut Conn,
    data: &ProjectData,
    row: &FlagRow,
    config_envs: &[i64],
    bumped: &[EnvChanged],
    audit_info: FlagAudit<'_>,
    now: i64,
) -> ApiResult<FlagView> {
    let flag = data
        .flag(&row.key)
        .ok_or_else(|| anyhow::anyhow!("flag {} vanished from project data", row.key))?;
    let written: Vec<(i64, &FlagConfig)> = config_envs
        .iter()
        .filter_map(|env_id| flag.configs.get(env_id).map(|config| (*env_id, config)))
        .collect();
    let state = version_state(data, flag);
    record(conn, row, &written, state, bumped, audit_info, now).await
}

/// [`finish`] for a caller that has the flag's new state without the project's data (the
/// kill switch): writes the `written` configs, then the history entry (`state`), the change
/// log and the audit entry.
pub(crate) async fn record(
    conn: &mut Conn,
    row: &FlagRow,
    written: &[(i64, &FlagConfig)],
    state: FlagVersionState,
    bumped: &[EnvChanged],
    audit_info: FlagAudit<'_>,
    now: i64,
) -> ApiResult<FlagView> {
    for (env_id, config) in written {
        flag::put_config(&mut *conn, row.id, *env_id, config).await?;
    }
    flag_version::insert(
        &mut *conn,
        row.id,
        row.version,
        &state,
        &audit_info.actor.name,
        audit_info.comment,
        now,
    )
    .await?;
    environment::record_changes(&mut *conn, bumped, ChangeKind::Flag, &row.key).await?;
    let view = FlagView::new(row, state.environments);
    let after = match audit_info.after {
        Some(after) => after,
        None => serde_json::to_value(&view)?,
    };
    audit::insert(
        conn,
        &NewAuditEvent {
            actor: &audit_info.actor.name,
            action: audit_info.action,
            project_id: Some(row.project_id),
            environment_id: audit_info.environment_id,
            resource_type: "flag",
            resource_key: &row.key,
            before: audit_info.before,
            after: Some(after),
            comment: audit_info.comment,
        },
        now,
    )
    .await?;
    Ok(view)
}
