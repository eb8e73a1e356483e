//! Flag definition writes: create, update, archive, unarchive.

use std::collections::{BTreeMap, HashMap};

use flagpole_core::lifecycle::FlagType;
use flagpole_core::model::{Flag, FlagConfig, FlagKind, Variant};

use super::flag_write::{FlagAudit, FlagView, boolean_variants, default_config, finish};
use super::validate::{FlagShape, Written, flag_scope, validate_scope};
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, Problems, check_version, publish};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::environment;
use crate::store::flag::{self, FlagRow, Lifecycle};
use crate::store::project::Project;
use crate::store::project_data::{ProjectData, ProjectFlag};

/// A new flag as the API receives it.
#[derive(Debug, Clone)]
pub(crate) struct NewFlag {
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) tags: Vec<String>,
    pub(crate) kind: FlagKind,
    pub(crate) variants: Option<Vec<Variant>>,
    pub(crate) salt: String,
    /// Type and permanent mark.
    pub(crate) lifecycle: Lifecycle,
    /// Configs for some environments (by key); the others get [`default_config`].
    pub(crate) environments: BTreeMap<String, FlagConfig>,
    pub(crate) comment: String,
}

fn check_definition(problems: &mut Problems, d: &Flag) {
    problems.text("name", &d.name, MAX_NAME_LEN);
    problems.text("description", &d.description, MAX_TEXT_LEN);
    problems.tags("tags", &d.tags);
    problems.text("salt", &d.salt, MAX_NAME_LEN);
}

/// Creates a flag with a config in every environment.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    input: NewFlag,
) -> ApiResult<FlagView> {
    let variants = match (input.variants, input.kind) {
        (Some(v), _) if !v.is_empty() => v,
        (_, FlagKind::Boolean) => boolean_variants(),
        _ => {
            return Err(ApiError::invalid(
                "variants",
                "required for this kind of flag",
            ));
        }
    };
    let definition = Flag {
        name: if input.name.trim().is_empty() {
            input.key.clone()
        } else {
            input.name
        },
        key: input.key,
        description: input.description,
        tags: input.tags,
        kind: input.kind,
        variants,
        salt: input.salt,
    };
    let mut problems = Problems::default();
    problems.key("key", &definition.key);
    check_definition(&mut problems, &definition);
    problems.finish()?;

    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    if let Some(existing) = flag::by_key(&mut tx, project.id, &definition.key).await? {
        return Err(ApiError::Conflict {
            message: format!("flag `{}` already exists", definition.key),
            current: crate::error::current_of(&FlagView::load(&mut tx, &existing).await?),
        });
    }
    let mut data = flag_scope(&mut tx, project.id, &definition.key, None).await?;
    let configured = data
        .environments
        .iter()
        .filter(|e| input.environments.contains_key(&e.key));
    super::critical::require_comment(project, configured, &input.comment)?;
    let mut configs = HashMap::new();
    let mut given = input.environments;
    for env in &data.environments {
        let config = given
            .remove(&env.key)
            .unwrap_or_else(|| default_config(&definition));
        configs.insert(env.id, config);
    }
    if let Some(unknown) = given.keys().next() {
        return Err(ApiError::invalid(
            format!("environments.{unknown}"),
            "no such environment in this project",
        ));
    }
    data.put_flag(ProjectFlag {
        id: 0,
        definition: definition.clone(),
        archived: false,
        configs,
        version: 0,
    });
    validate_scope(
        &mut tx,
        project.id,
        &mut data,
        None,
        Written::Flag(&definition.key, FlagShape::Definition),
    )
    .await?;

    let now = now_ms();
    let row = flag::insert(&mut tx, project.id, &definition, input.lifecycle, now).await?;
    let env_ids: Vec<i64> = data.environments.iter().map(|e| e.id).collect();
    let audit = FlagAudit {
        actor,
        action: "flag.create",
        environment_id: None,
        before: None,
        after: None,
        comment: &input.comment,
    };
    let view = finish(&mut tx, &data, &row, &env_ids, &bumped, audit, now).await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(view)
}

/// Changes to a flag's definition; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlagPatch {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) variants: Option<Vec<Variant>>,
    pub(crate) salt: Option<String>,
    pub(crate) flag_type: Option<FlagType>,
    pub(crate) permanent: Option<bool>,
}

/// Locks the flag for a write after the environments were locked; 404 if missing, 409 if
/// the version is stale or (unless `allow_archived`) the flag is archived. Returns the flag
/// as it was, for writes that record it.
pub(crate) async fn lock_for_write(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
    expected: Option<i64>,
    allow_archived: bool,
) -> ApiResult<(FlagRow, FlagView)> {
    let row = lock_row_for_write(&mut *conn, project_id, key, expected, allow_archived).await?;
    let view = FlagView::load(conn, &row).await?;
    Ok((row, view))
}

/// [`lock_for_write`] without reading the flag's configs unless a 409 needs them: a config
/// write (the kill switch) does not record the flag as it was, and that read was one of
/// its round trips.
pub(crate) async fn lock_row_for_write(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
    expected: Option<i64>,
    allow_archived: bool,
) -> ApiResult<FlagRow> {
    let row = flag::lock(&mut *conn, project_id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    let stale = expected.is_some_and(|e| e != row.version);
    let archived = row.archived_at.is_some() && !allow_archived;
    if stale || archived {
        let view = FlagView::load(conn, &row).await?;
        check_version(expected, row.version, || view.clone())?;
        return Err(ApiError::Conflict {
            message: format!("flag `{key}` is archived; unarchive it before changing it"),
            current: crate::error::current_of(&view),
        });
    }
    Ok(row)
}

/// Applies `patch` to the definition, validating it against every environment.
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    expected: i64,
    patch: FlagPatch,
    comment: &str,
) -> ApiResult<FlagView> {
    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    let (row, before) = lock_for_write(&mut tx, project.id, key, Some(expected), false).await?;
    let mut definition = row.definition.clone();
    if let Some(name) = patch.name {
        definition.name = name;
    }
    if let Some(d) = patch.description {
        definition.description = d;
    }
    if let Some(tags) = patch.tags {
        definition.tags = tags;
    }
    if let Some(variants) = patch.variants {
        definition.variants = variants;
    }
    if let Some(salt) = patch.salt {
        definition.salt = salt;
    }
    let mut problems = Problems::default();
    check_definition(&mut problems, &definition);
    problems.finish()?;

    let mut data = flag_scope(&mut tx, project.id, key, None).await?;
    // Name, description and tags change no served value; variants and salt change every
    // environment's.
    let serves_differently =
        definition.variants != row.definition.variants || definition.salt != row.definition.salt;
    if serves_differently {
        super::critical::require_comment(project, &data.environments, comment)?;
    }
    let flag = data
        .flag_mut(key)
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    flag.definition = definition.clone();
    let written = Written::Flag(key, FlagShape::Definition);
    validate_scope(&mut tx, project.id, &mut data, None, written).await?;

    let now = now_ms();
    let version = flag::update(&mut tx, row.id, &definition, row.archived_at, now).await?;
    // Type and permanent mark change no served value: no environment is validated or
    // reviewed for them, but they are a change of the flag like its name, with a version,
    // history and audit entry.
    let lifecycle = Lifecycle {
        flag_type: patch.flag_type.unwrap_or(row.flag_type),
        permanent: patch.permanent.unwrap_or(row.permanent),
    };
    if (lifecycle.flag_type, lifecycle.permanent) != (row.flag_type, row.permanent) {
        flag::set_lifecycle(&mut tx, row.id, lifecycle).await?;
    }
    let row = FlagRow {
        definition,
        version,
        updated_at: now,
        flag_type: lifecycle.flag_type,
        permanent: lifecycle.permanent,
        ..row
    };
    let audit = FlagAudit {
        actor,
        action: "flag.update",
        environment_id: None,
        before: Some(serde_json::to_value(&before)?),
        after: None,
        comment,
    };
    let view = finish(&mut tx, &data, &row, &[], &bumped, audit, now).await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(view)
}

/// Archives (`archive = true`) or unarchives a flag. Archiving is refused while a live flag
/// needs this one as a prerequisite; unarchiving validates the flag in every environment.
/// Asking for the state the flag is already in changes nothing.
pub(crate) async fn set_archived(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    expected: Option<i64>,
    archive: bool,
    comment: &str,
) -> ApiResult<FlagView> {
    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    let (row, before) = lock_for_write(&mut tx, project.id, key, expected, true).await?;
    if row.archived_at.is_some() == archive {
        // Dropping the transaction rolls the data-version bump back.
        return Ok(before);
    }
    let mut data = flag_scope(&mut tx, project.id, key, None).await?;
    super::critical::require_comment(project, &data.environments, comment)?;
    if archive {
        refuse_if_required(&data, key, &before)?;
    }
    let flag = data
        .flag_mut(key)
        .ok_or_else(|| ApiError::not_found("flag", key))?;
    flag.archived = archive;
    let written = Written::Flag(key, FlagShape::Definition);
    validate_scope(&mut tx, project.id, &mut data, None, written).await?;

    let now = now_ms();
    let archived_at = archive.then_some(now);
    let version = flag::update(&mut tx, row.id, &row.definition, archived_at, now).await?;
    let row = FlagRow {
        archived_at,
        version,
        updated_at: now,
        ..row
    };
    let audit = FlagAudit {
        actor,
        action: if archive {
            "flag.archive"
        } else {
            "flag.unarchive"
        },
        environment_id: None,
        before: Some(serde_json::to_value(&before)?),
        after: None,
        comment,
    };
    let view = finish(&mut tx, &data, &row, &[], &bumped, audit, now).await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(view)
}

/// 409 if a live flag lists `key` as a prerequisite: archiving it would make that flag
/// fail to evaluate. `data` holds the flag's dependents (see `validate::flag_scope`).
pub(crate) fn refuse_if_required(
    data: &ProjectData,
    key: &str,
    current: &FlagView,
) -> ApiResult<()> {
    let dependents = data.live_dependents(key);
    if dependents.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict {
        message: format!(
            "flag `{key}` is a prerequisite of {}; remove those prerequisites first",
            dependents
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        current: crate::error::current_of(current),
    })
}
