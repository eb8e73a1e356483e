//! `POST /sdk/v1/events`: telemetry batches (docs/protocol.md, "Telemetry") for SDKs that
//! do not report on the stream. Authenticated by an SDK key; answered 202 once the batch
//! is committed (or was before: a redelivery), never earlier.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use flagpole_core::wire::{BatchError, MAX_BATCH_BYTES, TelemetryBatch};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::parse_json;
use crate::auth::SdkClient;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::ingest::{RETRY_AFTER, Refused, Stored, check_storable};
use crate::state::AppState;

/// How long a request waits for its batch's commit before it answers 503 and lets the SDK
/// resend (the batch may still be stored; its id makes the resend harmless).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn router() -> OpenApiRouter<AppState> {
    // The batch limit, whatever the server's general body limit: over it is a 413 before
    // anything is parsed.
    OpenApiRouter::new()
        .routes(routes!(post_events))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BYTES))
}

/// What a stored batch's acknowledgement says.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    /// The batch's id.
    id: String,
    /// True when the batch had been stored before (a redelivery): it was not counted again.
    duplicate: bool,
}

/// The telemetry batch schema, for the document (flagpole-core's `TelemetryBatch`).
#[derive(utoipa::ToSchema)]
#[schema(as = TelemetryBatch)]
#[allow(dead_code)]
struct BatchSchema {
    /// Idempotency id (a UUID; SDKs use v7).
    id: String,
    /// SDK name and version.
    sdk: Option<String>,
    /// Application name.
    app: Option<String>,
    /// Application version.
    app_version: Option<String>,
    /// Evaluation counters: `{flag, flag_version, variant?, reason, rule?, error?, start_ms, end_ms, count}`.
    #[schema(value_type = Option<Vec<Object>>)]
    counts: Option<Vec<serde_json::Value>>,
    /// Exposures: `{flag, flag_version, variant, context_key, at_ms}`.
    #[schema(value_type = Option<Vec<Object>>)]
    exposures: Option<Vec<serde_json::Value>>,
    /// Tracked events: `{name, context_key, value?, properties?, at_ms}`.
    #[schema(value_type = Option<Vec<Object>>)]
    events: Option<Vec<serde_json::Value>>,
    /// Exposures and events the SDK dropped since its last acknowledged batch.
    dropped: Option<u64>,
}

/// Report evaluation counts, exposures and tracked events (docs/protocol.md, "Telemetry").
#[utoipa::path(
    post,
    path = "/sdk/v1/events",
    tag = "sdk",
    request_body = BatchSchema,
    responses(
        (status = 202, description = "Stored (committed), or stored before under this id and not counted again", body = Accepted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked SDK key", body = ErrorBody),
        (status = 413, description = "Over 1 MiB or 5,000 items", body = ErrorBody),
        (status = 422, description = "An invalid field; `field` names it (`events[3].at_ms`)", body = ErrorBody),
        (status = 429, description = "The ingestion queue is full; retry after `Retry-After` seconds, keeping the batch", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "Shutting down, or not committed in time; resend the same batch", body = ErrorBody),
    ),
    security(("sdk_key" = []), ("sdk_key_bearer" = []))
)]
async fn post_events(
    client: SdkClient,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest {
                message: rejection.body_text(),
                field: None,
            }
        }
    })?;
    let batch: TelemetryBatch = parse_json(&body)?;
    batch
        .validate(now_ms())
        .and_then(|()| check_storable(&batch))
        .map_err(refusal)?;
    let id = batch.id.clone();
    let receipt = state
        .ingest
        .submit(client.environment_id, batch, body.len())
        .map_err(refused)?;
    let stored = match tokio::time::timeout(ACK_TIMEOUT, receipt).await {
        Ok(Ok(outcome)) => outcome.map_err(refused)?,
        Ok(Err(_)) => return Err(refused(Refused::Stopping)),
        Err(_) => {
            return Err(ApiError::Unavailable(
                "the batch was not committed in time; resend it (it will count once)".into(),
            ));
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id,
            duplicate: stored == Stored::Duplicate,
        }),
    ))
}

/// A batch the rules refuse: 413 when too large, else 422 naming the field.
fn refusal(error: BatchError) -> ApiError {
    if error.too_large {
        return ApiError::TooMany {
            message: error.message,
            field: error.field,
        };
    }
    ApiError::invalid(error.field, error.message)
}

fn refused(refused: Refused) -> ApiError {
    match refused {
        Refused::Busy => ApiError::TooManyRequests {
            retry_after_secs: RETRY_AFTER.as_secs().max(1),
        },
        Refused::Stopping => ApiError::Unavailable(refused.to_string()),
        Refused::Failed => ApiError::Internal(anyhow::anyhow!("telemetry batch not stored")),
    }
}
