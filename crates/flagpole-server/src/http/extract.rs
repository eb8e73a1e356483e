//! The request extractors every handler uses, with Flagpole's error format: JSON bodies
//! ([`ApiJson`], [`MaybeJson`]), query strings ([`ApiQuery`]), paths ([`ApiPath`]) and the
//! expected version of an update ([`expected_version`], [`required_version`]). Every
//! axum rejection they meet goes through one mapping ([`rejected`]), so a malformed
//! request gets the same JSON error whichever part of it was wrong.

use axum::Json;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// The one mapping of axum's rejections (body, path, query) to [`ApiError`]: 413 stays
/// 413, anything else is a 400 with axum's explanation.
fn rejected(status: StatusCode, message: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest {
            message,
            field: None,
        }
    }
}

/// `Json<T>` with Flagpole's error format: 400 for malformed JSON (with line and column),
/// 422 with the exact field path for well-formed JSON of the wrong shape, 413 over the size
/// limit, 415 without a JSON content type.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body with Flagpole's error mapping (see [`ApiJson`]).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                let parent = if path == "." { String::new() } else { path };
                ApiError::invalid(
                    missing_field_path(&parent, &message).unwrap_or(parent),
                    message,
                )
            }
            _ => ApiError::BadRequest {
                message: format!("malformed JSON: {inner}"),
                field: None,
            },
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        message: format!("malformed JSON: {e}"),
        field: None,
    })?;
    Ok(value)
}

/// serde reports a missing field at the path of the object that lacks it; name the field
/// itself, so a client can highlight it.
fn missing_field_path(parent: &str, message: &str) -> Option<String> {
    let name = message.strip_prefix("missing field `")?.split('`').next()?;
    Some(if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    })
}

/// serde_json appends " at line 1 column 42" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query<T>` whose rejection is Flagpole's 400 JSON error, not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rejection| rejected(rejection.status(), rejection.body_text()))
    }
}

/// `Path<T>` whose rejection is Flagpole's 400 JSON error, naming the path parameter that
/// does not parse (`id` in `/api/v1/users/{id}`).
#[derive(Debug, Clone)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let rejection = match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(p)) => return Ok(ApiPath(p)),
            Err(rejection) => rejection,
        };
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let names: Vec<&str> = params
            .iter()
            .flat_map(|p| p.iter().map(|(k, _)| k))
            .collect();
        let field = path_field(&rejection, &names);
        match rejected(rejection.status(), rejection.body_text()) {
            ApiError::BadRequest { message, .. } => Err(ApiError::BadRequest { message, field }),
            other => Err(other),
        }
    }
}

/// The path parameter a rejection is about: axum names it for a struct, gives its index
/// for a tuple, and neither for a single value (then the route has one parameter).
fn path_field(rejection: &PathRejection, names: &[&str]) -> Option<String> {
    let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
        return None;
    };
    let name = match failed.kind() {
        ErrorKind::ParseErrorAtKey { key, .. }
        | ErrorKind::DeserializeError { key, .. }
        | ErrorKind::InvalidUtf8InPathParam { key } => key.as_str(),
        ErrorKind::ParseErrorAtIndex { index, .. } => names.get(*index)?,
        ErrorKind::ParseError { .. } if names.len() == 1 => names[0],
        _ => return None,
    };
    Some(name.to_owned())
}

/// The version an update is based on: the `If-Match` header (`3`, `"3"` or `W/"3"`) or a
/// `version` field of the body. If both are given they must agree.
pub(crate) fn expected_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    let header = match headers.get(axum::http::header::IF_MATCH) {
        None => None,
        Some(value) => {
            let parsed = value.to_str().ok().and_then(|s| {
                let s = s.trim();
                let s = s.strip_prefix("W/").unwrap_or(s);
                s.trim_matches('"').parse::<i64>().ok()
            });
            Some(parsed.ok_or_else(|| ApiError::BadRequest {
                message: "If-Match must be a resource version, e.g. \"3\"".into(),
                field: Some("If-Match".into()),
            })?)
        }
    };
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::invalid(
            "version",
            format!("is {b} but the If-Match header says {h}"),
        )),
        (h, b) => Ok(h.or(b)),
    }
}

/// Like [`expected_version`] but required: updates must say which version they edited so
/// that two people editing never silently overwrite each other.
pub(crate) fn required_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<i64> {
    expected_version(headers, body)?.ok_or_else(|| {
        ApiError::invalid(
            "version",
            "required: send the version you edited (If-Match header or `version` field)",
        )
    })
}

/// An optional JSON body: an empty body is `None`; anything else must be JSON of the
/// expected shape, with the same errors as [`ApiJson`].
#[derive(Debug, Clone)]
pub(crate) struct MaybeJson<T>(pub(crate) Option<T>);

impl<T, S> FromRequest<S> for MaybeJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = bytes::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| rejected(rejection.status(), rejection.body_text()))?;
        if bytes.is_empty() {
            return Ok(MaybeJson(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        Ok(MaybeJson(Some(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // fields exist to be deserialised
    struct Body {
        config: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        enabled: bool,
    }

    fn field_of(json: &str) -> Option<String> {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Validation(errors)) => Some(errors[0].field.clone()),
            _ => None,
        }
    }

    #[test]
    fn data_errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"config": {"enabled": 3}}"#).as_deref(),
            Some("config.enabled")
        );
        assert_eq!(
            field_of(r#"{"config": {}}"#).as_deref(),
            Some("config.enabled")
        );
        assert_eq!(field_of(r#"{}"#).as_deref(), Some("config"));
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            parse_json::<Body>(br#"{"config": {"enabled": true}} x"#),
            Err(ApiError::BadRequest { .. })
        ));
    }
}
