//! The background task: connect, run a session, wait, reconnect, until shutdown.
//!
//! Connecting is behind the small [`Connect`] trait so the reconnect policy is tested with
//! a fake connector and a paused clock; [`Endpoint`] is the real one (tokio-tungstenite).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
#[cfg(not(feature = "rustls"))]
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::backoff::{self, Backoff};
use crate::session::{self, SessionEnd};
use crate::shared::{ConnectionState, Shared};
use crate::socket::DelayedAcks;

/// Read buffer per connection. Client frames are tiny and server frames are read in
/// chunks into a growing buffer, so a few KiB is plenty; tungstenite's default is 128 KiB.
const READ_BUFFER: usize = 4 * 1024;

/// Opens one WebSocket connection.
pub(crate) trait Connect: Send + Sync + 'static {
    type Stream: Stream<Item = Result<Message, WsError>>
        + Sink<Message, Error = WsError>
        + Unpin
        + Send;

    fn connect(&self) -> impl Future<Output = Result<Self::Stream, WsError>> + Send;
}

/// Timing of the connection task.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) heartbeat: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) connect_timeout: Duration,
    /// The delay after the server rejected the key (plus up to half of it as jitter).
    pub(crate) rejected_retry: Duration,
}

/// The default delay before retrying a rejected SDK key: a minute, not the seconds of the
/// normal backoff. A revoked key stays revoked, and a fleet of applications deployed with
/// a wrong key must not hammer the server; a key created moments ago that another replica
/// did not know yet (its cache keeps "unknown" for up to 30 s) still connects within
/// about a minute and a half.
pub(crate) const REJECTED_RETRY: Duration = Duration::from_secs(60);

/// True if the handshake's answer says the key is not valid (401 or 403).
fn is_rejection(error: &WsError) -> bool {
    matches!(error, WsError::Http(response) if matches!(response.status().as_u16(), 401 | 403))
}

/// The server's stream endpoint.
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) authorization: HeaderValue,
    /// Set from each upgrade response: did it announce telemetry on the stream
    /// (`wire::TELEMETRY_HEADER`)? Read by the session that runs on that connection.
    pub(crate) telemetry_offered: Arc<AtomicBool>,
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connect for Endpoint {
    type Stream = WebSocketStream<MaybeTlsStream<DelayedAcks>>;

    async fn connect(&self) -> Result<Self::Stream, WsError> {
        let mut request = self.url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, self.authorization.clone());
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let tcp = DelayedAcks::connect(&request).await?;
        #[cfg(feature = "rustls")]
        let (ws, response) = {
            let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
            tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(config), connector)
                .await?
        };
        #[cfg(not(feature = "rustls"))]
        let (ws, response) = {
            if request.uri().scheme_str() == Some("wss") {
                return Err(WsError::Url(UrlError::TlsFeatureNotEnabled));
            }
            let plain = MaybeTlsStream::Plain(tcp);
            tokio_tungstenite::client_async_with_config(request, plain, Some(config)).await?
        };
        let offered = response
            .headers()
            .get(flagpole_core::wire::TELEMETRY_HEADER)
            .is_some_and(|v| v.as_bytes() == b"v1");
        self.telemetry_offered.store(offered, Ordering::Release);
        Ok(ws)
    }
}

/// Connects and reconnects until `shutdown`.
pub(crate) async fn run<C: Connect>(
    connector: C,
    shared: Arc<Shared>,
    options: Options,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(options.backoff_initial, options.backoff_max);
    loop {
        let attempt = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(options.connect_timeout, connector.connect()) => r,
        };
        let delay = match attempt {
            Ok(Ok(ws)) => {
                shared.set_connection(ConnectionState::Connected);
                shared.telemetry.connections.send_modify(|n| *n += 1);
                let end = session::run(ws, &shared, options.heartbeat, &shutdown).await;
                if end != SessionEnd::Rejected {
                    shared.set_connection(ConnectionState::Disconnected);
                }
                match end {
                    SessionEnd::Shutdown => return,
                    SessionEnd::Rejected => {
                        shared.set_connection(ConnectionState::Rejected);
                        backoff::jitter(options.rejected_retry, options.rejected_retry / 2)
                    }
                    SessionEnd::Goodbye(hint) => {
                        backoff.reset();
                        backoff::after_goodbye(hint)
                    }
                    SessionEnd::Lost { heard } => {
                        // Reset only after a connection the server actually talked on, so
                        // a server that accepts and immediately drops still backs off.
                        if heard {
                            backoff.reset();
                        }
                        backoff.next_delay()
                    }
                }
            }
            Ok(Err(error)) if is_rejection(&error) => {
                shared.set_connection(ConnectionState::Rejected);
                tracing::warn!(%error, "flagpole: {}", crate::KEY_REJECTED);
                backoff::jitter(options.rejected_retry, options.rejected_retry / 2)
            }
            Ok(Err(error)) => {
                shared.set_connection(ConnectionState::Disconnected);
                tracing::warn!(%error, "flagpole: could not connect");
                backoff.next_delay()
            }
            Err(_elapsed) => {
                shared.set_connection(ConnectionState::Disconnected);
                tracing::warn!(timeout = ?options.connect_timeout, "flagpole: connecting timed out");
                backoff.next_delay()
            }
        };
        tracing::debug!(?delay, "flagpole: reconnecting after a delay");
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
