//! The HTTP surface: every area exports its own `router()`, merged here with the OpenAPI
//! document they describe.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

mod alerts;
mod audit;
mod auth;
mod credentials;
mod dashboard;
mod docs;
mod domain_common;
mod environments;
mod evaluate;
mod events;
mod experiments;
mod extract;
mod flag_configs;
mod flags;
mod health;
mod history;
mod insights;
mod lifecycle;
mod ofrep;
mod ops;
mod projects;
mod scheduled_changes;
mod sdk_events;
mod sdk_keys;
mod segments;
mod session_cookie;
mod stream;
mod tokens;
mod upgrade;
mod users;

/// The OpenAPI document's root; paths and schemas are added by each area's router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flagpole API",
        description = "Feature flags: management REST API, OFREP evaluation and SDK endpoints."
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorDetail,
        crate::error::FieldError
    ))
)]
pub(crate) struct ApiDoc;

/// Every route with its OpenAPI description, before state is attached.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(projects::router())
        .merge(lifecycle::router())
        .merge(environments::router())
        .merge(flags::router())
        .merge(flag_configs::router())
        .merge(segments::router())
        .merge(history::router())
        .merge(audit::router())
        .merge(ofrep::router())
        .merge(ops::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(sdk_keys::router())
        .merge(stream::router())
        .merge(sdk_events::router())
        .merge(insights::router())
        .merge(evaluate::router())
        .merge(events::router())
        .merge(alerts::router())
        .merge(experiments::router())
        .merge(scheduled_changes::router())
}

/// The OpenAPI document (what `cargo xtask codegen` writes to openapi/openapi.json).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The complete application router.
pub(crate) fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    // Install the metrics recorder before anything records.
    crate::telemetry::prometheus();
    let (routes, openapi) = api().split_for_parts();
    let routes = routes
        .merge(docs::router(openapi))
        .fallback(dashboard::fallback)
        .layer(DefaultBodyLimit::max(body_limit));
    crate::telemetry::instrument(routes).with_state(state)
}
