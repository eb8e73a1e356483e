//! OFREP, the OpenFeature Remote Evaluation Protocol (0.3.0): single and bulk evaluation
//! for any OpenFeature SDK's OFREP provider, authenticated by an SDK key.
//!
//! Evaluation reads only the compiled snapshot cache ([`crate::snapshots`]) and the SDK key
//! cache: the database is never on this path. Flagpole's reasons map to OpenFeature's:
//!
//! | Flagpole | OFREP |
//! |---|---|
//! | `OFF` | `DISABLED` (a success serving the off variant, not an error) |
//! | `TARGET_MATCH` | `TARGETING_MATCH` |
//! | `RULE_MATCH` | `SPLIT` if the rule served a rollout, else `TARGETING_MATCH` |
//! | `FALLTHROUGH` | `SPLIT` for a rollout; `STATIC` for a flag without targets, rules or prerequisites; else `DEFAULT` |
//! | `PREREQUISITE_FAILED` | `DEFAULT` (the off variant is the fallback; not `DISABLED`, since the flag itself is on) |
//!
//! Flagpole's own reason, rule id/index and prerequisite are in `metadata`, so nothing is
//! lost in translation.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flagpole_core::Context;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiPath;
use crate::auth::SdkClient;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

mod mapping;
mod wire;

use mapping::{Outcome, REASON_LABELS, count, map_evaluation};

use wire::{
    BulkEvaluationFailure, BulkEvaluationSuccess, BulkMetadata, EvaluationFailure,
    EvaluationRequest, EvaluationSuccess, parse_request,
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(OfrepDoc::openapi())
        .routes(routes!(evaluate_flag))
        .routes(routes!(evaluate_flags))
}

/// The OFREP tag and the SDK-key security schemes, merged into the API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&SdkKeySecurity),
    tags((name = "ofrep", description = "OpenFeature Remote Evaluation Protocol 0.3.0, for OpenFeature SDKs' OFREP providers. Authenticated by an SDK key."))
)]
struct OfrepDoc;

struct SdkKeySecurity;

impl utoipa::Modify for SdkKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "sdk_key",
            utoipa::openapi::security::SecurityScheme::ApiKey(ApiKey::Header(
                ApiKeyValue::with_description("X-API-Key", "An SDK key (fp_sdk_...)"),
            )),
        );
        components.add_security_scheme(
            "sdk_key_bearer",
            utoipa::openapi::security::SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An SDK key (fp_sdk_...) as a bearer token"))
                    .build(),
            ),
        );
    }
}

/// Evaluate one flag for a context (server-side providers).
#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "ofrep",
    params(("key" = String, Path, description = "The flag key")),
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "Evaluated (a disabled flag is a success with reason DISABLED)", body = EvaluationSuccess<'_>),
        (status = 400, description = "Malformed body or context (PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING), or a flag this server cannot evaluate (PARSE_ERROR)", body = EvaluationFailure),
        (status = 401, description = "Missing, unknown or revoked SDK key", body = ErrorBody),
        (status = 404, description = "No such flag in the SDK key's environment (FLAG_NOT_FOUND)", body = EvaluationFailure),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "Unexpected failure (GENERAL)", body = EvaluationFailure),
    ),
    security(("sdk_key" = []), ("sdk_key_bearer" = []))
)]
async fn evaluate_flag(
    client: SdkClient,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match read_context(body) {
        Ok(ctx) => ctx,
        Err(failure) => return failure.with_key(&key).into_response(),
    };
    let env = match state.snapshots.get(client.environment_id).await {
        Ok(env) => env,
        Err(error) => {
            tracing::error!(%error, environment_id = client.environment_id, "no snapshot for OFREP");
            return Failure::general().with_key(&key).into_response();
        }
    };
    let evaluation = env.snapshot.evaluate(&key, &ctx);
    let outcome = map_evaluation(&env, &key, &ctx, evaluation);
    count(outcome.reason_index(), 1);
    match outcome {
        Outcome::Success(success) => axum::Json(success).into_response(),
        Outcome::Failure(failure) => failure.with_key(&key).into_response(),
    }
}

/// Evaluate every flag of the SDK key's environment for one context (client-side
/// providers). The response carries an ETag; send it back in `If-None-Match` with the same
/// body to get 304 while nothing changed.
#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "ofrep",
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a previous response to the same request body")),
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "Every flag, each a success or a per-flag failure", body = BulkEvaluationSuccess<'_>,
            headers(("ETag" = String, description = "Changes when any flag of the environment changes or the request body differs"))),
        (status = 304, description = "Not modified: same environment version and request body as the ETag"),
        (status = 400, description = "Malformed body or context", body = BulkEvaluationFailure),
        (status = 401, description = "Missing, unknown or revoked SDK key", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "Unexpected failure (GENERAL)", body = BulkEvaluationFailure),
    ),
    security(("sdk_key" = []), ("sdk_key_bearer" = []))
)]
async fn evaluate_flags(
    client: SdkClient,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let env = match state.snapshots.get(client.environment_id).await {
        Ok(env) => env,
        Err(error) => {
            tracing::error!(%error, environment_id = client.environment_id, "no snapshot for OFREP");
            return Failure::general().bulk().into_response();
        }
    };
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => return body_rejection(rejection).bulk().into_response(),
    };
    // The response depends on the environment version and on the context, so both go
    // into the ETag: a client whose context changed must not get a 304.
    let etag = format!(
        "\"{}-{}-{:016x}\"",
        env.environment_id,
        env.data_version,
        fnv1a(&bytes)
    );
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let ctx = match parse_request(&bytes) {
        Ok(EvaluationRequest { context }) => context,
        Err(failure) => return failure.bulk().into_response(),
    };
    let mut tally = [0u64; REASON_LABELS.len()];
    let flags: Vec<_> = env
        .snapshot
        .flag_keys()
        .map(|key| {
            let outcome = map_evaluation(&env, key, &ctx, env.snapshot.evaluate(key, &ctx));
            tally[outcome.reason_index()] += 1;
            match outcome {
                Outcome::Success(success) => wire::BulkItem::Success(success),
                Outcome::Failure(failure) => wire::BulkItem::Failure(failure.with_key(key).body),
            }
        })
        .collect();
    for (reason_index, n) in tally.into_iter().enumerate() {
        if n > 0 {
            count(reason_index, n);
        }
    }
    let body = BulkEvaluationSuccess {
        flags,
        metadata: BulkMetadata {
            environment_version: env.data_version,
        },
    };
    ([(header::ETAG, etag)], axum::Json(body)).into_response()
}

/// Reads the body of a single evaluation.
fn read_context(body: Result<Bytes, BytesRejection>) -> Result<Context, Failure> {
    let bytes = body.map_err(body_rejection)?;
    parse_request(&bytes).map(|r| r.context)
}

fn body_rejection(rejection: BytesRejection) -> Failure {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Failure::too_large()
    } else {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "PARSE_ERROR",
            rejection.body_text(),
        )
    }
}

/// A failed evaluation, before it is given the flag key (single) or not (bulk).
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    code: &'static str,
    details: String,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, code: &'static str, details: impl Into<String>) -> Self {
        Failure {
            status,
            code,
            details: details.into(),
        }
    }

    pub(crate) fn general() -> Self {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "GENERAL",
            "the flag could not be evaluated; retry shortly",
        )
    }

    /// Marker for a 413, which keeps Flagpole's own error body.
    fn too_large() -> Self {
        Failure::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "")
    }

    fn with_key(self, key: &str) -> KeyedFailure {
        KeyedFailure {
            status: self.status,
            body: EvaluationFailure {
                key: key.to_owned(),
                error_code: self.code,
                error_details: self.details,
            },
        }
    }

    fn bulk(self) -> BulkFailure {
        BulkFailure(self)
    }
}

/// A single-flag failure response.
struct KeyedFailure {
    status: StatusCode,
    body: EvaluationFailure,
}

impl IntoResponse for KeyedFailure {
    fn into_response(self) -> Response {
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge.into_response();
        }
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A whole-request failure of the bulk endpoint.
struct BulkFailure(Failure);

impl IntoResponse for BulkFailure {
    fn into_response(self) -> Response {
        let Failure {
            status,
            code,
            details,
        } = self.0;
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge.into_response();
        }
        let body = BulkEvaluationFailure {
            error_code: code,
            error_details: details,
        };
        (status, axum::Json(body)).into_response()
    }
}

/// True if `If-None-Match` lists `etag` (or is `*`). Weak comparison, as RFC 9110 asks
/// for `If-None-Match`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// FNV-1a 64: a stable, dependency-free fingerprint of the request body for the ETag
/// (stable across processes and versions, unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
