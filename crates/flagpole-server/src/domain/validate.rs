//! Validation of a write: compile every affected environment with the change applied and
//! report each problem at the path of the request body that caused it.

use flagpole_core::{CompileError, Snapshot, Subject};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::store::project_data::ProjectData;

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

/// Compiles the environments `env_ids` of `data` (all if `None`) strictly. Errors in the
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
