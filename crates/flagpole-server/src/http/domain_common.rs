//! Helpers shared by the domain API areas (projects, environments, flags, segments,
//! history, audit): JSON-error extractors for path and query, the expected version of an
//! update, and resolving the project (or environment) a URL names with the caller's role.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::{Actor, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::environment::{self, Environment};
use crate::store::project::{self, Project};

/// `Query<T>` whose rejection is Flagpole's 400 JSON error, not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rejection| ApiError::BadRequest {
                message: rejection.body_text(),
                field: None,
            })
    }
}

/// `Path<T>` whose rejection is Flagpole's 400 JSON error.
#[derive(Debug, Clone)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|rejection| ApiError::BadRequest {
                message: rejection.body_text(),
                field: None,
            })
    }
}

/// The version an update is based on: the `If-Match` header (`3`, `"3"` or `W/"3"`) or a
/// `version` field of the body. If both are given they must agree.
pub(crate) fn expected_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    let header = match headers.get(axum::http::header::IF_MATCH) {
        None => None,
        Some(value) => {
            let parsed = value.to_str().ok().and_then(|s| {
                let s = s.trim();
                let s = s.strip_prefix("W/").unwrap_or(s);
                s.trim_matches('"').parse::<i64>().ok()
            });
            Some(parsed.ok_or_else(|| ApiError::BadRequest {
                message: "If-Match must be a resource version, e.g. \"3\"".into(),
                field: Some("If-Match".into()),
            })?)
        }
    };
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::invalid(
            "version",
            format!("is {b} but the If-Match header says {h}"),
        )),
        (h, b) => Ok(h.or(b)),
    }
}

/// Like [`expected_version`] but required: updates must say which version they edited so
/// that two people editing never silently overwrite each other.
pub(crate) fn required_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<i64> {
    expected_version(headers, body)?.ok_or_else(|| {
        ApiError::invalid(
            "version",
            "required: send the version you edited (If-Match header or `version` field)",
        )
    })
}

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

/// An optional JSON body: an empty body is `None`; anything else must be JSON of the
/// expected shape, with the same errors as [`crate::error::ApiJson`].
#[derive(Debug, Clone)]
pub(crate) struct MaybeJson<T>(pub(crate) Option<T>);

impl<T, S> axum::extract::FromRequest<S> for MaybeJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = bytes::Bytes::from_request(
            axum::extract::Request::from_parts(parts.clone(), body),
            state,
        )
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    message: rejection.body_text(),
                    field: None,
                }
            }
        })?;
        if bytes.is_empty() {
            return Ok(MaybeJson(None));
        }
        let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
        let crate::error::ApiJson(value) =
            crate::error::ApiJson::<T>::from_request(req, state).await?;
        Ok(MaybeJson(Some(value)))
    }
}
