//! The WebSocket handshake of the SDK stream (RFC 6455 §4.2), done here rather than by
//! axum's `WebSocketUpgrade` so the connection is a tokio-tungstenite `WebSocketStream`:
//! axum's `WebSocket` cannot send a message as several frames, which is how snapshots
//! keep every connection's write buffer small (`push::connection::FRAGMENT`).
//!
//! HTTP/1.1 only (the SDK, and the nginx in deploy/, speak it for WebSockets).

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::task::TaskTracker;

/// The SDK's connection once upgraded.
pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A valid WebSocket upgrade request, not yet answered.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

/// Why a request is not a WebSocket upgrade: the status and a sentence for the error body.
#[derive(Debug)]
pub(crate) struct NotAnUpgrade {
    pub(crate) status: StatusCode,
    pub(crate) reason: &'static str,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotAnUpgrade> {
        let bad = |reason| NotAnUpgrade {
            status: StatusCode::BAD_REQUEST,
            reason,
        };
        if parts.version != Version::HTTP_11 {
            return Err(bad("WebSocket upgrades need HTTP/1.1"));
        }
        if parts.method != Method::GET {
            return Err(NotAnUpgrade {
                status: StatusCode::METHOD_NOT_ALLOWED,
                reason: "request method must be `GET`",
            });
        }
        let headers = &parts.headers;
        if !header_has_token(headers, header::CONNECTION, "upgrade") {
            return Err(bad("`Connection` header did not include `upgrade`"));
        }
        if !header_has_token(headers, header::UPGRADE, "websocket") {
            return Err(bad("`Upgrade` header did not include `websocket`"));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(bad("`Sec-WebSocket-Version` header did not include `13`"));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(bad("`Sec-WebSocket-Key` header missing"))?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(NotAnUpgrade {
                status: StatusCode::UPGRADE_REQUIRED,
                reason: "WebSocket request couldn't be upgraded since no upgrade state was present",
            })?;
        Ok(Upgrade { key, on_upgrade })
    }
}

impl Upgrade {
    /// The `101 Switching Protocols` answer; once it has gone out, `run` gets the socket,
    /// in a task on `tasks` (so shutdown waits for it). A failed upgrade (the client left)
    /// is logged and `run` never starts.
    pub(crate) fn on_upgrade<F, Fut>(
        self,
        config: WebSocketConfig,
        tasks: &TaskTracker,
        run: F,
    ) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tasks.spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    run(socket).await;
                }
                Err(error) => tracing::debug!(%error, "stream upgrade failed"),
            }
        });
        let accept = derive_accept_key(self.key.as_bytes());
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .unwrap_or_default()
    }
}

/// True if the comma-separated header contains `token` (ASCII case-insensitive).
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_tokens_are_matched_case_insensitively_in_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(header_has_token(&headers, header::CONNECTION, "upgrade"));
        assert!(!header_has_token(&headers, header::CONNECTION, "close"));
        assert!(!header_has_token(&headers, header::UPGRADE, "websocket"));
    }
}
