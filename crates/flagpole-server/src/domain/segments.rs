//! Segment writes. A segment is shared by every environment of its project, so each write
//! validates and bumps all of them.

use flagpole_core::model::Segment;
use serde::Serialize;

use super::validate::{Written, segment_scope, validate_scope};
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, Problems, check_version, publish};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::dependency;
use crate::store::environment::{self, ChangeKind, Environment};
use crate::store::project::Project;
use crate::store::segment::{self, SegmentRow};

/// A segment as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct SegmentView {
    /// Key, unique in the project.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Context keys that are always members.
    pub included: Vec<String>,
    /// Context keys that are never members.
    pub excluded: Vec<String>,
    /// Membership rules (any rule whose clauses all match).
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<flagpole_core::model::SegmentRule>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

impl From<SegmentRow> for SegmentView {
    fn from(row: SegmentRow) -> Self {
        let d = row.definition;
        SegmentView {
            key: d.key,
            name: d.name,
            description: d.description,
            included: d.included,
            excluded: d.excluded,
            rules: d.rules,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn check(segment: &Segment) -> ApiResult<()> {
    let mut problems = Problems::default();
    problems.key("key", &segment.key);
    problems.text("name", &segment.name, MAX_NAME_LEN);
    problems.text("description", &segment.description, MAX_TEXT_LEN);
    problems.finish()
}

/// What a segment write does.
#[derive(Debug, Clone)]
pub(crate) enum SegmentChange {
    /// Create a new segment.
    Create(Segment),
    /// Replace an existing one, if at the expected version.
    Update(Segment, i64),
    /// Delete, if no live flag or other segment uses it.
    Delete(Option<i64>),
}

/// Creates, replaces or deletes segment `key`. Returns the segment after the write
/// (`None` after a delete).
pub(crate) async fn write(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    key: &str,
    change: SegmentChange,
    comment: &str,
) -> ApiResult<Option<SegmentView>> {
    if let SegmentChange::Create(s) | SegmentChange::Update(s, _) = &change {
        check(s)?;
    }
    let mut tx = state.db.begin_write().await?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    let existing = segment::by_key(&mut tx, project.id, key).await?;
    let existence = !matches!(change, SegmentChange::Update(..));
    let mut data = segment_scope(&mut tx, project.id, key, existence).await?;
    let using = environments_using(&mut tx, project.id, key, &data.environments).await?;
    super::critical::require_comment(project, using, comment)?;
    let now = now_ms();
    let (action, before, after): (&str, Option<SegmentView>, Option<SegmentView>) = match change {
        SegmentChange::Create(s) => {
            if let Some(current) = existing {
                return Err(ApiError::Conflict {
                    message: format!("segment `{key}` already exists"),
                    current: crate::error::current_of(&SegmentView::from(current)),
                });
            }
            data.put_segment(key, Some(s.clone()));
            validate_scope(&mut tx, project.id, &mut data, None, Written::Segment(key)).await?;
            let row = segment::insert(&mut tx, project.id, &s, now).await?;
            ("segment.create", None, Some(row.into()))
        }
        SegmentChange::Update(s, expected) => {
            let current = existing.ok_or_else(|| ApiError::not_found("segment", key))?;
            let before = SegmentView::from(current.clone());
            check_version(Some(expected), current.version, || before.clone())?;
            data.put_segment(key, Some(s.clone()));
            validate_scope(&mut tx, project.id, &mut data, None, Written::Segment(key)).await?;
            let row = segment::update(&mut tx, current.id, expected, &s, now)
                .await?
                .ok_or_else(|| super::stale(expected, current.version, &before))?;
            ("segment.update", Some(before), Some(row.into()))
        }
        SegmentChange::Delete(expected) => {
            let current = existing.ok_or_else(|| ApiError::not_found("segment", key))?;
            let before = SegmentView::from(current.clone());
            check_version(expected, current.version, || before.clone())?;
            let users = users_of(&mut tx, project.id, key).await?;
            if !users.is_empty() {
                return Err(ApiError::Conflict {
                    message: format!("segment `{key}` is used by {}", users.join(", ")),
                    current: crate::error::current_of(&before),
                });
            }
            data.put_segment(key, None);
            validate_scope(&mut tx, project.id, &mut data, None, Written::Segment(key)).await?;
            segment::delete(&mut tx, current.id).await?;
            ("segment.delete", Some(before), None)
        }
    };
    environment::record_changes(&mut tx, &bumped, ChangeKind::Segment, key).await?;
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action,
            project_id: Some(project.id),
            environment_id: None,
            resource_type: "segment",
            resource_key: key,
            before: before.as_ref().map(serde_json::to_value).transpose()?,
            after: after.as_ref().map(serde_json::to_value).transpose()?,
            comment,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    publish(state, &bumped);
    Ok(after)
}

/// Environments whose served values depend on segment `key`: those where a live flag's
/// rules name it. When another segment names it, every environment, rather than following
/// the chain: the answer only decides whether a comment is required.
async fn environments_using<'a>(
    conn: &mut crate::store::Conn,
    project_id: i64,
    key: &str,
    environments: &'a [Environment],
) -> ApiResult<Vec<&'a Environment>> {
    if !dependency::segment_users(&mut *conn, project_id, key)
        .await?
        .1
        .is_empty()
    {
        return Ok(environments.iter().collect());
    }
    let ids = dependency::segment_environments(conn, project_id, key).await?;
    Ok(environments
        .iter()
        .filter(|e| ids.contains(&e.id))
        .collect())
}

/// Live flags (`flag `k``) and other segments (`segment `k``) whose rules use `key`.
async fn users_of(
    conn: &mut crate::store::Conn,
    project_id: i64,
    key: &str,
) -> ApiResult<Vec<String>> {
    let (flags, segments) = dependency::segment_users(conn, project_id, key).await?;
    let flags = flags.into_iter().map(|k| format!("flag `{k}`"));
    let segments = segments.into_iter().map(|k| format!("segment `{k}`"));
    Ok(flags.chain(segments).collect())
}
