//! Alerts that act: `/api/v1/projects/{project}/alert-mappings` (which alert does what,
//! and what it last did) and `/api/v1/projects/{project}/alerts/alertmanager`, the
//! webhook Prometheus Alertmanager posts its notifications to, authenticated with an
//! `alerts:trigger` token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::credentials::AlertsTrigger;
use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, required_version};
use crate::alerts::payload::AlertStatus;
use crate::alerts::{MappingAction, Matcher, Notification};
use crate::auth::{Actor, Role};
use crate::domain::alert_mappings::{self as domain, MappingInput};
use crate::domain::alert_receive::{self, Handled};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::alert_mapping::{self as store, AlertMapping};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(AlertsDoc::openapi())
        .routes(routes!(list_alert_mappings, create_alert_mapping))
        .routes(routes!(
            get_alert_mapping,
            update_alert_mapping,
            delete_alert_mapping
        ))
        .routes(routes!(alertmanager_webhook))
}

#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "alerts", description = "Kill switches from alerts: a project's alert \
    mappings say which Prometheus Alertmanager alerts turn which flag off in which \
    environment; Alertmanager posts to the project's webhook with an `alerts:trigger` token \
    (docs/alerts.md).")))]
struct AlertsDoc;

/// Body of create and update.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = AlertMappingBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingBody {
    /// The alert's name: its `alertname` label, the name of the Prometheus alerting rule.
    alert: String,
    /// Further label matchers that must all hold, as in Alertmanager's routes.
    #[serde(default)]
    matchers: Vec<Matcher>,
    /// What to do when a matching alert fires.
    action: MappingAction,
    /// Update only: the version being replaced (or send `If-Match`).
    version: Option<i64>,
}

impl MappingBody {
    fn input(self) -> MappingInput {
        MappingInput {
            alert: self.alert,
            matchers: self.matchers,
            action: self.action,
        }
    }
}

/// The project's alert mappings, oldest first, each with the last firing it acted on.
#[utoipa::path(get, path = "/api/v1/projects/{project}/alert-mappings", tag = "alerts",
    params(("project" = String, Path, description = "Project key")),
    responses((status = 200, body = Vec<AlertMapping>), (status = 404, body = ErrorBody)))]
async fn list_alert_mappings(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Vec<AlertMapping>>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(store::list(&mut conn, project.id).await?))
}

/// Creates an alert mapping (writer). The flag and environment must exist in the project
/// (422 naming `action.flag` or `action.environment`); regexes must compile.
#[utoipa::path(post, path = "/api/v1/projects/{project}/alert-mappings", tag = "alerts",
    params(("project" = String, Path, description = "Project key")),
    request_body = MappingBody,
    responses((status = 201, body = AlertMapping), (status = 404, body = ErrorBody),
        (status = 422, description = "Invalid; `field` is e.g. `action.flag` or `matchers[0].value`",
            body = ErrorBody)))]
async fn create_alert_mapping(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<MappingBody>,
) -> ApiResult<(StatusCode, Json<AlertMapping>)> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    if body.version.is_some() {
        return Err(ApiError::invalid(
            "version",
            "only an update names a version",
        ));
    }
    let created = domain::create(&state, &actor, &project, &body.input()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One alert mapping.
#[utoipa::path(get, path = "/api/v1/projects/{project}/alert-mappings/{mapping}", tag = "alerts",
    params(("project" = String, Path, description = "Project key"),
        ("mapping" = i64, Path, description = "Mapping id")),
    responses((status = 200, body = AlertMapping), (status = 404, body = ErrorBody)))]
async fn get_alert_mapping(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<AlertMapping>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let mapping = store::by_id(&mut conn, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert_mapping", id.to_string()))?;
    Ok(Json(mapping))
}

/// Replaces an alert mapping's alert, matchers and action (writer); needs the version.
#[utoipa::path(put, path = "/api/v1/projects/{project}/alert-mappings/{mapping}", tag = "alerts",
    params(("project" = String, Path, description = "Project key"),
        ("mapping" = i64, Path, description = "Mapping id"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = MappingBody,
    responses((status = 200, body = AlertMapping), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_alert_mapping(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MappingBody>,
) -> ApiResult<Json<AlertMapping>> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    let expected = required_version(&headers, body.version)?;
    let updated = domain::update(&state, &actor, &project, id, expected, &body.input()).await?;
    Ok(Json(updated))
}

/// Deletes an alert mapping (writer).
#[utoipa::path(delete, path = "/api/v1/projects/{project}/alert-mappings/{mapping}", tag = "alerts",
    params(("project" = String, Path, description = "Project key"),
        ("mapping" = i64, Path, description = "Mapping id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_alert_mapping(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    domain::delete(&state, &actor, &project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the webhook did with a notification.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AlertmanagerReceipt)]
pub(crate) struct Receipt {
    /// Firing alerts in the notification.
    firing: usize,
    /// Resolved alerts in it (they do nothing).
    resolved: usize,
    /// One entry per firing alert and mapping that matched it.
    handled: Vec<Handled>,
}

/// Prometheus Alertmanager's webhook (`webhook_configs`, notification version 4). Each
/// firing alert that a mapping of the project matches is acted on once per fingerprint
/// and `startsAt`; resolved alerts do nothing. Only an `alerts:trigger` token with the
/// writer role in the project may call it (`http_config.authorization` in Alertmanager's
/// configuration). A notification that is not Alertmanager's is 400, naming the field.
#[utoipa::path(post, path = "/api/v1/projects/{project}/alerts/alertmanager", tag = "alerts",
    security(("api_token" = [])),
    params(("project" = String, Path, description = "Project key")),
    request_body = Notification,
    responses((status = 200, body = Receipt),
        (status = 400, description = "Not an Alertmanager notification; `field` says where", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an `alerts:trigger` token, or not for this project", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn alertmanager_webhook(
    State(state): State<AppState>,
    AlertsTrigger(caller): AlertsTrigger,
    ApiPath(key): ApiPath<String>,
    body: Result<ApiJson<Notification>, ApiError>,
) -> ApiResult<Json<Receipt>> {
    let project = project(&state, &caller, &key, Role::Writer).await?;
    let notification = body.map_err(malformed)?.0;
    let firing = notification
        .firing()
        .map_err(|invalid| ApiError::BadRequest {
            message: format!("{}: {}", invalid.field, invalid.message),
            field: Some(invalid.field),
        })?;
    let resolved = notification
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Resolved)
        .count();
    let receiver = notification.receiver.trim();
    let handled = alert_receive::act(&state, &caller, &project, receiver, &firing).await?;
    Ok(Json(Receipt {
        firing: firing.len(),
        resolved,
        handled,
    }))
}

/// A body of the wrong shape is a 400 here, not the 422 of resources: Alertmanager sends
/// it, nobody edited it, and it is not a notification.
fn malformed(err: ApiError) -> ApiError {
    match err {
        ApiError::Validation(mut problems) if !problems.is_empty() => {
            let first = problems.swap_remove(0);
            ApiError::BadRequest {
                message: format!(
                    "not an Alertmanager notification: {}: {}",
                    first.field, first.message
                ),
                field: Some(first.field),
            }
        }
        other => other,
    }
}
