//! The HTTP error boundary: one [`ApiError`] type, one JSON shape for every failure.
//!
//! ```json
//! {"error": {"code": "validation_failed", "message": "...", "field": "config.rules[2].clauses[0].values[1]",
//!            "details": [{"field": "...", "message": "..."}]},
//!  "current": { ...the resource as it is now, on 409... }}
//! ```
//! Internal errors become a bare 500 for the client and a detailed log line for us.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::store::{StoreError, Unique};

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the request body, e.g. `config.rules[0].serve.rollout.weights`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Every way an API call can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, bad query string).
    #[error("{message}")]
    BadRequest {
        /// Explanation.
        message: String,
        /// Offending field, if known.
        field: Option<String>,
    },
    /// 401: no valid credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// 403: credentials valid but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{resource} `{key}` not found")]
    NotFound {
        /// Kind of resource (`flag`, `project`...).
        resource: &'static str,
        /// Its key or id.
        key: String,
    },
    /// 409: a version mismatch or uniqueness conflict; `current` is the resource as stored.
    #[error("{message}")]
    Conflict {
        /// Explanation.
        message: String,
        /// The current state, so the client can show what changed.
        current: Option<Value>,
    },
    /// 413.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// 413 for a part of the body: too many items in a list.
    #[error("{message}")]
    TooMany {
        /// Explanation.
        message: String,
        /// The list that is too long.
        field: String,
    },
    /// 415.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: well-formed but invalid; every problem with its field path.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 429.
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// 503: the database (or another dependency) is unavailable; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure. Details are logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 for one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A 404.
    pub fn not_found(resource: &'static str, key: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource,
            key: key.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge | ApiError::TooMany { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::PayloadTooLarge | ApiError::TooMany { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The JSON error body, for OpenAPI.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
    /// On 409: the resource as currently stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Value>,
}

/// The `error` member of [`ErrorBody`].
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request`, `unauthenticated`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `validation_failed`, `too_many_requests`, `unavailable`, `internal`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The first offending field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, field, details, current) = match &self {
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                ("internal server error".to_owned(), None, Vec::new(), None)
            }
            ApiError::Validation(details) => {
                let message = match details.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields are invalid", many.len()),
                };
                (
                    message,
                    details.first().map(|d| d.field.clone()),
                    details.clone(),
                    None,
                )
            }
            ApiError::BadRequest { message, field } => {
                (message.clone(), field.clone(), Vec::new(), None)
            }
            ApiError::TooMany { message, field } => {
                (message.clone(), Some(field.clone()), Vec::new(), None)
            }
            ApiError::Conflict { message, current } => {
                (message.clone(), None, Vec::new(), current.clone())
            }
            other => (other.to_string(), None, Vec::new(), None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                field,
                details,
            },
            current,
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry shortly".into())
            }
            StoreError::UniqueViolation { constraint, .. } => unique_conflict(&constraint),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Statements outside the store (a transaction's begin and commit) fail the same ways.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::from(err).into()
    }
}

/// A unique violation in the user's terms. Domain writes check these before writing; a
/// violation means a concurrent write got there first.
fn unique_conflict(constraint: &Unique) -> ApiError {
    let message = match constraint {
        Unique::ProjectKey => "a project with this key already exists",
        Unique::EnvironmentKey => "an environment with this key already exists in the project",
        Unique::FlagKey => "a flag with this key already exists in the project",
        Unique::SegmentKey => "a segment with this key already exists in the project",
        Unique::UserEmail => "a user with this email already exists",
        Unique::Other(name) => {
            // Not one a request can cause (random credentials colliding): say what
            // happened, log which constraint.
            tracing::warn!(constraint = name, "unexpected unique violation");
            "this conflicts with something that already exists; reload and retry"
        }
    };
    ApiError::Conflict {
        message: message.to_owned(),
        current: None,
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> Self {
        ApiError::Internal(err.into())
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// Shorthand to build a JSON value for `current` in conflicts.
pub fn current_of<T: Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok().or(Some(json!(null)))
}

#[cfg(test)]
mod tests {
    use super::{ApiError, unique_conflict};
    use crate::store::Unique;

    /// Every unique violation a request can cause, in the user's terms: a 409 that does
    /// not name the constraint (`store/constraint.rs` checks both backends name them).
    #[test]
    fn unique_violations_speak_the_users_terms() {
        let cases = [
            (Unique::ProjectKey, "a project with this key already exists"),
            (
                Unique::EnvironmentKey,
                "an environment with this key already exists in the project",
            ),
            (
                Unique::FlagKey,
                "a flag with this key already exists in the project",
            ),
            (
                Unique::SegmentKey,
                "a segment with this key already exists in the project",
            ),
            (Unique::UserEmail, "a user with this email already exists"),
            (
                Unique::Other("api_token_token_hash_key".into()),
                "this conflicts with something that already exists; reload and retry",
            ),
        ];
        for (constraint, words) in cases {
            match unique_conflict(&constraint) {
                ApiError::Conflict { message, current } => {
                    assert_eq!(message, words);
                    assert!(current.is_none());
                    assert!(!message.contains("_key"), "names the constraint: {message}");
                }
                other => panic!("expected a 409 for {constraint:?}, got {other:?}"),
            }
        }
    }
}
