//! `/api/v1/projects/{project}/segments`: reusable audiences shared by every environment.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use flagpole_core::model::{Segment, SegmentRule};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, MaybeJson, expected_version, required_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::segments::{self as domain, SegmentChange, SegmentView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::dependency;
use crate::store::segment as store;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(get_segment, update_segment, delete_segment))
}

/// Body of create and update. Error paths are the segment's own (`rules[0].clauses[1]`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SegmentBody {
    /// Key: required on create; on update it may be omitted or must match the URL.
    key: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Context keys that are always members.
    #[serde(default)]
    included: Vec<String>,
    /// Context keys that are never members.
    #[serde(default)]
    excluded: Vec<String>,
    /// Rules; a context matching all clauses of any rule is a member.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    rules: Vec<SegmentRule>,
    /// Update only: the version being edited (or send `If-Match`).
    version: Option<i64>,
    comment: Option<String>,
}

impl SegmentBody {
    fn into_segment(self, key: String) -> Segment {
        Segment {
            key,
            name: self.name,
            description: self.description,
            included: self.included,
            excluded: self.excluded,
            rules: self.rules,
        }
    }
}

/// Body of delete (optional).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteSegment {
    version: Option<i64>,
    comment: Option<String>,
}

/// A segment in the list, with how much it is used.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SegmentListItem {
    #[serde(flatten)]
    segment: SegmentView,
    /// Live flags whose rules name this segment, in any environment.
    used_by_flags: i64,
}

/// The project's segments, by key, each with the number of live flags using it.
#[utoipa::path(get, path = "/api/v1/projects/{project}/segments", tag = "segments",
    params(("project" = String, Path, description = "Project key")),
    responses((status = 200, body = Vec<SegmentListItem>), (status = 404, body = ErrorBody)))]
async fn list_segments(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Vec<SegmentListItem>>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let rows = store::list(&mut conn, project.id).await?;
    let counts: HashMap<String, i64> = dependency::segment_flag_counts(&mut conn, project.id)
        .await?
        .into_iter()
        .collect();
    Ok(Json(
        rows.into_iter()
            .map(|row| {
                let used_by_flags = counts.get(&row.definition.key).copied().unwrap_or(0);
                SegmentListItem {
                    segment: SegmentView::from(row),
                    used_by_flags,
                }
            })
            .collect(),
    ))
}

/// Creates a segment (writer); validated in every environment.
#[utoipa::path(post, path = "/api/v1/projects/{project}/segments", tag = "segments",
    params(("project" = String, Path, description = "Project key")),
    request_body = SegmentBody,
    responses((status = 201, body = SegmentView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_segment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(project_key): ApiPath<String>,
    ApiJson(body): ApiJson<SegmentBody>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let key = body
        .key
        .clone()
        .ok_or_else(|| ApiError::invalid("key", "required"))?;
    let comment = comment(body.comment.as_deref())?;
    let segment = body.into_segment(key.clone());
    let view = domain::write(
        &state,
        &actor,
        &project,
        &key,
        SegmentChange::Create(segment),
        &comment,
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("segment create returned nothing"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One segment.
#[utoipa::path(get, path = "/api/v1/projects/{project}/segments/{segment}", tag = "segments",
    params(("project" = String, Path, description = "Project key"),
        ("segment" = String, Path, description = "Segment key")),
    responses((status = 200, body = SegmentView), (status = 404, body = ErrorBody)))]
async fn get_segment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<SegmentView>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let row = store::by_key(&mut conn, project.id, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("segment", &key))?;
    Ok(Json(row.into()))
}

/// Replaces a segment (writer); validated in every environment.
#[utoipa::path(put, path = "/api/v1/projects/{project}/segments/{segment}", tag = "segments",
    params(("project" = String, Path, description = "Project key"),
        ("segment" = String, Path, description = "Segment key"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = SegmentBody,
    responses((status = 200, body = SegmentView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_segment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SegmentBody>,
) -> ApiResult<Json<SegmentView>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    if body.key.as_ref().is_some_and(|k| *k != key) {
        return Err(ApiError::invalid("key", "a segment's key cannot change"));
    }
    let expected = required_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let segment = body.into_segment(key.clone());
    let change = SegmentChange::Update(segment, expected);
    let view = domain::write(&state, &actor, &project, &key, change, &comment)
        .await?
        .ok_or_else(|| anyhow::anyhow!("segment update returned nothing"))?;
    Ok(Json(view))
}

/// Deletes a segment (writer); refused (409) while a live flag or another segment uses it.
#[utoipa::path(delete, path = "/api/v1/projects/{project}/segments/{segment}", tag = "segments",
    params(("project" = String, Path, description = "Project key"),
        ("segment" = String, Path, description = "Segment key"),
        ("If-Match" = Option<String>, Header, description = "Expected version (optional)")),
    request_body(content = Option<DeleteSegment>),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_segment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<DeleteSegment>,
) -> ApiResult<StatusCode> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let (version, comment_text) = body.map(|b| (b.version, b.comment)).unwrap_or_default();
    let expected = expected_version(&headers, version)?;
    let comment = comment(comment_text.as_deref())?;
    domain::write(
        &state,
        &actor,
        &project,
        &key,
        SegmentChange::Delete(expected),
        &comment,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
