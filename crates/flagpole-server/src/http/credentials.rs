//! The credential extractors, at the HTTP edge: [`Actor`] for the management API,
//! [`SdkClient`] for SDK endpoints, and the client address sign-in limits by. They read
//! the request and hand it to [`crate::auth`], which checks it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::{self, Actor, AuthError, SdkClient};
use crate::state::AppState;

impl FromRequestParts<AppState> for Actor {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        auth::authenticate(&state.db, &state.auth, &parts.method, &parts.headers).await
    }
}

impl FromRequestParts<AppState> for SdkClient {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        auth::authenticate_sdk(&state.db, &state.auth.sdk_keys, &parts.headers).await
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
