//! `GET /sdk/v1/stream`: the SDK's WebSocket (docs/protocol.md), authenticated by its SDK
//! key before the upgrade.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use flagpole_core::wire::{MAX_CLIENT_FRAME, TELEMETRY_HEADER};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::credentials::presented_key;
use super::upgrade::{NotAnUpgrade, Upgrade};
use crate::auth::{SdkClient, hash_secret};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::push::HubError;
use crate::push::connection::{self, Settings};
use crate::push::reports::Reports;
use crate::state::AppState;

/// Read buffer per connection. tungstenite's default is 128 KiB, which at 10k idle
/// sockets is over a gigabyte. Client frames (hello, resync, ping) are tens of bytes; a
/// telemetry batch (up to `MAX_CLIENT_FRAME`) grows the buffer as it arrives.
const READ_BUFFER: usize = 1024;
/// The goodbye's reconnect hint; clients add jitter.
const RECONNECT_AFTER_MS: u64 = 1000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The SDK stream: a WebSocket carrying snapshots and patches of the SDK key's
/// environment as they commit (protocol: docs/protocol.md).
#[utoipa::path(
    get,
    path = "/sdk/v1/stream",
    tag = "sdk",
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket of docs/protocol.md. The client sends `hello {version}`; the server answers with a snapshot or patches, then sends every change as it commits. The `flagpole-telemetry: v1` header says the stream also takes `telemetry` batches.",
            headers(("flagpole-telemetry" = String, description = "`v1`: `telemetry` frames are answered with `telemetry_ack`/`telemetry_nack`"))),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked SDK key", body = ErrorBody),
        (status = 503, description = "The environment could not be loaded; retry", body = ErrorBody),
    ),
    security(("sdk_key" = []), ("sdk_key_bearer" = []))
)]
async fn stream(
    client: SdkClient,
    headers: HeaderMap,
    State(state): State<AppState>,
    upgrade: Result<Upgrade, NotAnUpgrade>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // Loaded before upgrading, so a database outage is a 503 the SDK retries, not a
    // socket that opens and then says nothing.
    let lease = match state.push.lease(client.environment_id).await {
        Ok(lease) => lease,
        // The key's environment was deleted since the key was cached.
        Err(HubError::Gone(_)) => return ApiError::Unauthenticated.into_response(),
        Err(HubError::Source(error)) => {
            tracing::warn!(%error, environment_id = client.environment_id, "cannot load environment for a stream");
            return ApiError::Unavailable(
                "the environment cannot be loaded right now; retry".into(),
            )
            .into_response();
        }
    };
    let settings = Settings {
        heartbeat: state.push.heartbeat(),
        reconnect_after_ms: RECONNECT_AFTER_MS,
    };
    // The extractor has checked the key; registering it lets a revocation close the stream.
    let key = presented_key(&headers).map(hash_secret).unwrap_or_default();
    let key_lease = state.push.stream_keys().register(key);
    let shutdown = state.push.shutdown().clone();
    let tasks = state.push.tasks().clone();
    let source = state.push.source().clone();
    let reports = Reports::new(state.ingest.clone(), client.environment_id);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Every send flushes; nothing is gained by letting writes accumulate.
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_FRAME))
        .max_frame_size(Some(MAX_CLIENT_FRAME));
    // Tracked, so App::serve waits for every goodbye before returning.
    let mut response = upgrade.on_upgrade(config, &tasks, move |socket| async move {
        let hub = lease.hub().clone();
        let revoked = key_lease.revoked.clone();
        let end = connection::serve(
            socket,
            hub,
            Some(source),
            Some(reports),
            settings,
            shutdown,
            revoked,
        )
        .await;
        tracing::debug!(
            environment_id = client.environment_id,
            ?end,
            "stream closed"
        );
        drop((lease, key_lease));
    });
    response
        .headers_mut()
        .insert(TELEMETRY_HEADER, HeaderValue::from_static("v1"));
    response
}

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: "websocket_upgrade_required".into(),
                message: format!(
                    "this endpoint is a WebSocket (docs/protocol.md): {}",
                    self.reason
                ),
                field: None,
                details: Vec::new(),
            },
            current: None,
        };
        (self.status, Json(body)).into_response()
    }
}
