//! Validation of a write: compile every affected environment with the change applied and
//! report each problem at the path of the request body that caused it.
//!
//! Only the part of the project a write can affect is loaded and compiled: the written
//! flag or segment, what reaches it through prerequisites or segment references (found
//! through the dependency index, `store::dependency`), and what all of those name. By
//! flagpole-core's `scope` contract, the errors of that part are exactly those a compile of
//! the whole project reports for it, and nothing outside it can be broken by the write; so
//! a write costs what its neighbourhood holds, not what the project holds.

use flagpole_core::{CompileError, Snapshot, Subject};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::store::Conn;
use crate::store::dependency;
use crate::store::project_data::ProjectData;

/// The part of the project a write to flag `key` can affect, before the write: the flag
/// (if it exists) and the live flags that reach it through prerequisites in environment
/// `only` (or in any). Apply the change, then call [`validate_scope`].
pub(crate) async fn flag_scope(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
    only: Option<i64>,
) -> ApiResult<ProjectData> {
    let mut keys = vec![key.to_owned()];
    keys.extend(dependency::flag_dependents(&mut *conn, project_id, key, only).await?);
    Ok(ProjectData::load_scope(conn, project_id, &keys, &[]).await?)
}

/// The part of the project a write to segment `key` can affect: the segment (if it
/// exists) and the segments that reach it, and when the write creates or deletes it
/// (`existence`) the live flags that name it and their dependents. A flag's validity
/// depends only on whether the segments it names exist, so changing one in place affects
/// no flag.
pub(crate) async fn segment_scope(
    conn: &mut Conn,
    project_id: i64,
    key: &str,
    existence: bool,
) -> ApiResult<ProjectData> {
    let mut keys = vec![key.to_owned()];
    keys.extend(dependency::segment_dependents(&mut *conn, project_id, key).await?);
    let mut flags = Vec::new();
    if existence {
        // Normally none: a live flag cannot name a segment that does not exist.
        for user in dependency::segment_users(&mut *conn, project_id, key)
            .await?
            .0
        {
            flags.extend(dependency::flag_dependents(&mut *conn, project_id, &user, None).await?);
            flags.push(user);
        }
    }
    Ok(ProjectData::load_scope(conn, project_id, &flags, &keys).await?)
}

/// [`validate`] of a scope with the change applied, after loading what it now names.
pub(crate) async fn validate_scope(
    conn: &mut Conn,
    project_id: i64,
    data: &mut ProjectData,
    env_ids: Option<&[i64]>,
    written: Written<'_>,
) -> ApiResult<()> {
    data.load_references(conn, project_id).await?;
    validate(data, env_ids, written)
}

/// How the request body of a flag write is shaped, so core paths (relative to a
/// `FlagState`: `flag.variants[1].value`, `config.rules[0].serve.variant`) can be turned
/// into paths in that body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagShape {
    /// Definition fields at the top level, configs under `environments.<env>` (create and
    /// definition update): `variants[1].value`, `environments.production.rules[0]...`.
    Definition,
    /// One environment's config under `config` (config update, toggle): core paths as-is.
    Config,
    /// A stored [`crate::store::flag_version::FlagVersionState`] (revert): `flag.*` as-is,
    /// configs under `environments.<env>`.
    State,
}

/// What the request wrote.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Written<'a> {
    /// A flag, with the shape of the body.
    Flag(&'a str, FlagShape),
    /// A segment (body fields are the segment's own).
    Segment(&'a str),
}

/// Compiles the environments `env_ids` of `data` (all if `None`) strictly: the whole
/// project, or a scope closed under references. Errors in the
/// written subject point into the body; errors the change causes in OTHER flags or
/// segments (a removed variant another flag's prerequisite needs) reject the write too,
/// named `flags.<key>.<path>` / `segments.<key>.<path>`.
pub(crate) fn validate(
    data: &ProjectData,
    env_ids: Option<&[i64]>,
    written: Written<'_>,
) -> ApiResult<()> {
    let mut problems: Vec<FieldError> = Vec::new();
    for env in &data.environments {
        if env_ids.is_some_and(|ids| !ids.contains(&env.id)) {
            continue;
        }
        let snapshot = data.snapshot(env.id, u64::try_from(env.data_version).unwrap_or(0));
        if let Err(errors) = Snapshot::compile_strict(&snapshot) {
            for error in &errors.0 {
                let problem = field_error(error, &env.key, written);
                // A definition error shows up once per environment; report it once.
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(problems))
    }
}

fn field_error(error: &CompileError, env: &str, written: Written<'_>) -> FieldError {
    let in_config = error.path == "config" || error.path.starts_with("config.");
    let config_rest = error
        .path
        .strip_prefix("config")
        .unwrap_or("")
        .trim_start_matches('.');
    let under_env = || {
        if config_rest.is_empty() {
            format!("environments.{env}")
        } else {
            format!("environments.{env}.{config_rest}")
        }
    };
    let written_field = match (&error.subject, written) {
        (Subject::Flag(k), Written::Flag(key, shape)) if k == key => Some(match shape {
            FlagShape::Config => error.path.clone(),
            FlagShape::Definition | FlagShape::State if in_config => under_env(),
            FlagShape::Definition => {
                let rest = error.path.strip_prefix("flag").unwrap_or(&error.path);
                rest.trim_start_matches('.').to_owned()
            }
            FlagShape::State => error.path.clone(),
        }),
        (Subject::Segment(k), Written::Segment(key)) if k == key => Some(error.path.clone()),
        _ => None,
    };
    match written_field {
        Some(field) => FieldError {
            field,
            message: error.message.clone(),
        },
        // Another flag or segment broken by this change: its path cannot point into the
        // body, so it is named, with the environment when the problem is in a config.
        None => {
            let (kind, key) = match &error.subject {
                Subject::Flag(k) => ("flags", k),
                Subject::Segment(k) => ("segments", k),
            };
            FieldError {
                field: format!("{kind}.{key}.{}", error.path),
                message: if in_config {
                    format!("in environment `{env}`: {}", error.message)
                } else {
                    error.message.clone()
                },
            }
        }
    }
}
