//! API documentation: the OpenAPI document at `/openapi.json` and Swagger UI at `/docs`.
//!
//! Swagger UI's assets are compiled into the binary (utoipa-swagger-ui's `vendored`
//! feature), so the page works with no network; Redoc, RapiDoc and Scalar load their
//! JavaScript from CDNs and were rejected for that reason.

use axum::Router;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

/// Routes serving `openapi` as JSON and the UI that renders it.
pub(crate) fn router(openapi: utoipa::openapi::OpenApi) -> Router<AppState> {
    SwaggerUi::new("/docs").url("/openapi.json", openapi).into()
}
