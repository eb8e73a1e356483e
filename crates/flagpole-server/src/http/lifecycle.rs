//! `/api/v1/projects/{project}/lifecycle`: how long each type of flag is expected to live
//! in a project, past which its flags are "potentially stale".

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use flagpole_core::lifecycle::FlagType;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, expected_version};
use crate::auth::{Actor, Role};
use crate::domain::comment;
use crate::domain::lifetimes::{self as domain, LifecycleSettings, LifetimesInput};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_lifecycle, update_lifecycle))
}

/// Body of `PUT .../lifecycle`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateLifecycle {
    /// The project's lifetimes; replaces what it set before.
    lifetimes: LifetimesBody,
    /// The project version being edited (or send `If-Match`; optional).
    version: Option<i64>,
    /// Recorded in the audit log.
    comment: Option<String>,
}

/// Expected lifetime per flag type: days (1 to 36,500) or null for "never expires". A type
/// left out gets its default (release 40, experiment 40, operational 7, kill switch and
/// permission never).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifetimesBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    release: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    experiment: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    operational: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    kill_switch: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    permission: Option<Value>,
}

/// A field that is present, null included: `Some(Value::Null)` is "never", while an
/// absent field (serde's `default`) is `None`, "the default". The domain checks the value,
/// so every wrong one gets the same message naming its field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl LifetimesBody {
    fn into_input(self) -> LifetimesInput {
        [
            (FlagType::Release, self.release),
            (FlagType::Experiment, self.experiment),
            (FlagType::Operational, self.operational),
            (FlagType::KillSwitch, self.kill_switch),
            (FlagType::Permission, self.permission),
        ]
        .into_iter()
        .filter_map(|(t, v)| v.map(|v| (t, v)))
        .collect()
    }
}

/// The project's expected flag lifetimes per type, and the defaults.
#[utoipa::path(get, path = "/api/v1/projects/{project}/lifecycle", tag = "projects",
    params(("project" = String, Path, description = "Project key")),
    responses((status = 200, body = LifecycleSettings), (status = 404, body = ErrorBody)))]
async fn get_lifecycle(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<LifecycleSettings>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(LifecycleSettings::load(&mut conn, &project).await?))
}

/// Sets the project's expected flag lifetimes (admin). Flags older than their type's
/// lifetime are potentially stale.
#[utoipa::path(put, path = "/api/v1/projects/{project}/lifecycle", tag = "projects",
    params(("project" = String, Path, description = "Project key"),
        ("If-Match" = Option<String>, Header, description = "Expected project version")),
    request_body = UpdateLifecycle,
    responses((status = 200, body = LifecycleSettings), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Stale version; `current` holds the stored settings", body = ErrorBody),
        (status = 422, description = "`field` names the lifetime that is not valid", body = ErrorBody)))]
async fn update_lifecycle(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateLifecycle>,
) -> ApiResult<Json<LifecycleSettings>> {
    project(&state, &actor, &key, Role::Admin).await?;
    let expected = expected_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let input = body.lifetimes.into_input();
    let settings =
        domain::update_lifetimes(&state, &actor, &key, expected, &input, &comment).await?;
    Ok(Json(settings))
}
