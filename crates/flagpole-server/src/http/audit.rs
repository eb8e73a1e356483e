//! `/api/v1/audit`: who changed what, newest first.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::ApiQuery;
use crate::auth::{Actor, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::audit::{self as store, ActionFilter, AuditEvent, AuditFilter};
use crate::store::environment;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(query_audit))
}

/// Filters; all optional and combined.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Project key. Credentials scoped to a project only ever see that project.
    project: Option<String>,
    /// Environment key (needs `project`).
    environment: Option<String>,
    /// Flag key (needs `project`).
    flag: Option<String>,
    /// Segment key (needs `project`).
    segment: Option<String>,
    /// Exact actor, e.g. `token:ci` or `user:alice@example.com`.
    actor: Option<String>,
    /// An action (`flag.toggle`) or every action on a kind of resource (`flag`).
    action: Option<String>,
    /// From this time on (epoch ms, inclusive).
    from: Option<i64>,
    /// Before this time (epoch ms, exclusive).
    to: Option<i64>,
    /// Page size (default 50, at most 500).
    limit: Option<i64>,
    /// Entries skipped.
    offset: Option<i64>,
}

/// A page of audit entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    items: Vec<AuditEvent>,
    limit: i64,
    offset: i64,
}

/// Audit entries, newest first (reader).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn query_audit(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let offset = q.offset.unwrap_or(0).max(0);
    if q.from.is_some_and(|from| from < 0) {
        return Err(ApiError::invalid(
            "from",
            "must be a time in epoch milliseconds",
        ));
    }
    if q.to.is_some_and(|to| to < 0) {
        return Err(ApiError::invalid(
            "to",
            "must be a time in epoch milliseconds",
        ));
    }
    if let (Some(from), Some(to)) = (q.from, q.to)
        && to <= from
    {
        return Err(ApiError::invalid("to", "must be after `from`"));
    }
    let action = q
        .action
        .filter(|a| !a.is_empty())
        .map(action_filter)
        .transpose()?;
    let mut filter = AuditFilter {
        actor: q.actor,
        action,
        from: q.from,
        to: q.to,
        limit,
        offset,
        ..Default::default()
    };
    match &q.project {
        Some(key) => {
            let project = project(&state, &actor, key, Role::Reader).await?;
            filter.project_id = Some(project.id);
            if let Some(env) = &q.environment {
                let mut conn = state.db.pool.acquire().await?;
                let env = environment::by_key(&mut conn, project.id, env)
                    .await?
                    .ok_or_else(|| ApiError::not_found("environment", env))?;
                filter.environment_id = Some(env.id);
            }
        }
        None => {
            if q.environment.is_some() || q.flag.is_some() || q.segment.is_some() {
                return Err(ApiError::invalid(
                    "project",
                    "required with environment, flag or segment",
                ));
            }
            // Scoped credentials see only their project's entries; unscoped ones see all.
            actor.require(Role::Reader, actor.project_id)?;
            filter.project_id = actor.project_id;
        }
    }
    filter.resource = match (q.flag, q.segment) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "segment",
                "filter by flag or segment, not both",
            ));
        }
        (Some(f), None) => Some(("flag".into(), f)),
        (None, Some(s)) => Some(("segment".into(), s)),
        (None, None) => None,
    };
    let mut conn = state.db.pool.acquire().await?;
    let items = store::query(&mut conn, &filter).await?;
    Ok(Json(AuditPage {
        items,
        limit,
        offset,
    }))
}

/// `flag.toggle` (one action) or `flag` (all of a resource's actions); anything else is
/// refused, so a typo reports the field instead of an empty page.
fn action_filter(action: String) -> ApiResult<ActionFilter> {
    let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    match action.split_once('.') {
        Some((resource, verb)) if word(resource) && word(verb) => Ok(ActionFilter::Exact(action)),
        None if word(&action) => Ok(ActionFilter::Resource(action)),
        _ => Err(ApiError::invalid(
            "action",
            "must be an action such as `flag.toggle`, or a resource such as `flag`",
        )),
    }
}
