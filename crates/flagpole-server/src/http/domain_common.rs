//! Helpers shared by the domain API areas (projects, environments, flags, segments,
//! history, audit, SDK keys): resolving the project (or environment) a URL names with the
//! caller's role.

use crate::auth::{Actor, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::environment::{self, Environment};
use crate::store::project::{self, Project};

/// The project named `key` if the actor has `role` in it (404 before 403: a missing
/// project is reported as missing whoever asks).
pub(crate) async fn project(
    state: &AppState,
    actor: &Actor,
    key: &str,
    role: Role,
) -> ApiResult<Project> {
    let mut conn = state.db.pool.acquire().await?;
    let project = project::by_key(&mut conn, key)
        .await?
        .ok_or_else(|| ApiError::not_found("project", key))?;
    actor.require(role, Some(project.id))?;
    Ok(project)
}

/// The project and its environment `env`, checked as in [`project`].
pub(crate) async fn project_env(
    state: &AppState,
    actor: &Actor,
    project_key: &str,
    env: &str,
    role: Role,
) -> ApiResult<(Project, Environment)> {
    let project = project(state, actor, project_key, role).await?;
    let mut conn = state.db.pool.acquire().await?;
    let env = environment::by_key(&mut conn, project.id, env)
        .await?
        .ok_or_else(|| ApiError::not_found("environment", env))?;
    Ok((project, env))
}
