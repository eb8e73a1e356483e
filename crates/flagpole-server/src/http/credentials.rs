//! The credential extractors, at the HTTP edge: [`Actor`] for the management API,
//! [`AlertsTrigger`] for the one endpoint `alerts:trigger` tokens may call, [`SdkClient`]
//! for SDK endpoints, and the client address sign-in limits by. They read the credentials
//! from the request's headers and hand them to [`crate::auth`], which checks them; an
//! [`AuthError`] becomes its response here.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, AsHeaderName, HeaderName};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::session_cookie;
use crate::auth::{self, Actor, AuthError, Authorization, Presented, Scope, SdkClient};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::state::AppState;

/// Whoever the request's credentials name, scoped tokens included.
async fn any_actor(parts: &Parts, state: &AppState) -> Result<Actor, AuthError> {
    let headers = &parts.headers;
    let presented = Presented {
        authorization: authorization(headers),
        session_cookie: session_cookie::cookie_value(headers),
        csrf_token: session_cookie::csrf_token(headers),
        api_key: header_text(headers, X_API_KEY),
        safe_method: matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS),
    };
    auth::authenticate(&state.db, &state.auth, &presented).await
}

/// The caller of the management API. A token limited to one action is refused here, for
/// every endpoint at once: refusing it in each handler (or in `Actor::require`) would let
/// one forgotten check open the API to it.
impl FromRequestParts<AppState> for Actor {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let actor = any_actor(parts, state).await?;
        if let Some(scope) = actor.scope {
            return Err(ApiError::Forbidden(format!(
                "this token is limited to `{}`: {}",
                scope.as_str(),
                scope_allows(scope)
            ))
            .into());
        }
        Ok(actor)
    }
}

/// What a scoped token may call, in words for its 403.
fn scope_allows(scope: Scope) -> &'static str {
    match scope {
        Scope::AlertsTrigger => {
            "it may only call POST /api/v1/projects/{project}/alerts/alertmanager"
        }
    }
}

/// The caller of the Alertmanager webhook: only a token with the `alerts:trigger` scope.
/// Anything else, an admin's token or session included, is 403: the webhook acts without
/// a person, so what may call it is one credential kept for that, and revoking it stops
/// exactly that.
pub(crate) struct AlertsTrigger(pub(crate) Actor);

impl FromRequestParts<AppState> for AlertsTrigger {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let actor = any_actor(parts, state).await?;
        if actor.scope != Some(Scope::AlertsTrigger) {
            return Err(ApiError::Forbidden(
                "this endpoint takes only an API token with the `alerts:trigger` scope \
                 (`fp_alert_…`, created under API tokens)"
                    .into(),
            )
            .into());
        }
        Ok(AlertsTrigger(actor))
    }
}

impl FromRequestParts<AppState> for SdkClient {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(&parts.headers);
        let client = auth::authenticate_sdk(&state.db, &state.auth.sdk_keys, key).await?;
        state.auth.sdk_seen.note(client.key_id);
        Ok(client)
    }
}

/// What the `Authorization` header holds.
fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    if !headers.contains_key(AUTHORIZATION) {
        return Authorization::Absent;
    }
    header_text(headers, AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map_or(Authorization::Other, |token| {
            Authorization::Bearer(token.trim())
        })
}

/// The SDK key a request presents (`Authorization: Bearer …` or `X-API-Key`), unchecked.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    header_text(headers, AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| header_text(headers, X_API_KEY))
}

/// Where SDKs may send their key instead of `Authorization`.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// A header's value, if present and readable as text.
fn header_text(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A 401 with a message saying what to do, or any other [`crate::error::ApiError`] (403
/// for a missing CSRF token, 500/503 when the database fails); the same JSON shape as
/// every error.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            AuthError::Unauthenticated(message) => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: "unauthenticated".into(),
                        message: message.into(),
                        field: None,
                        details: Vec::new(),
                    },
                    current: None,
                };
                (StatusCode::UNAUTHORIZED, Json(body)).into_response()
            }
            AuthError::Api(e) => e.into_response(),
        }
    }
}

/// The client's address for rate limiting: the socket's peer when the server was started
/// with connect info ([`crate::App::serve`]); otherwise (in-process tests, embedding) the
/// first `X-Forwarded-For` entry if there is one. The header is never preferred over the
/// socket, because a client can write anything in it.
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(ClientAddr(Some(addr.ip())));
        }
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse().ok());
        Ok(ClientAddr(forwarded))
    }
}
