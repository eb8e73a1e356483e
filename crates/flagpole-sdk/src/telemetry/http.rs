//! `POST /sdk/v1/events`: the way in for batches when the stream does not take them.
//!
//! One HTTP/1.1 request per batch on a fresh connection (hyper's client connection, no
//! pool): a client posts only every few seconds, and only while its stream is not
//! carrying telemetry, so keeping a connection open would buy little and need another
//! task to own it. Deadlines are the caller's (`tokio::time::timeout` around
//! [`EventsEndpoint::post`]); what a deadline means for the batch depends on whether the
//! request was written, which [`post`](EventsEndpoint::post) records as it goes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::Outcome;

/// How long to wait before retrying a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The events endpoint of one server, with the SDK key.
#[derive(Debug, Clone)]
pub(crate) struct EventsEndpoint {
    pub(crate) url: Uri,
    pub(crate) authorization: HeaderValue,
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] hyper::http::Error),
    #[error("{0}")]
    Url(&'static str),
}

impl EventsEndpoint {
    /// Posts one batch (its JSON). `written` is set once the request has been handed to
    /// the connection: from then on, a failure or a deadline means "maybe stored".
    pub(crate) async fn post(&self, body: Bytes, written: &AtomicBool) -> Outcome {
        match self.exchange(body, written).await {
            Ok((status, retry_after, text)) => classify(status, retry_after, &text),
            Err(error) if written.load(Ordering::Relaxed) => Outcome::NoAnswer(error.to_string()),
            Err(error) => Outcome::NotSent(error.to_string()),
        }
    }

    async fn exchange(
        &self,
        body: Bytes,
        written: &AtomicBool,
    ) -> Result<(StatusCode, Option<HeaderValue>, Bytes), Error> {
        let host = self.url.host().ok_or(Error::Url("no host"))?;
        let https = self.url.scheme_str() == Some("https");
        let port = self.url.port_u16().unwrap_or(if https { 443 } else { 80 });
        // `host` keeps an IPv6 literal's brackets, which is the form `host:port` needs.
        let tcp = TcpStream::connect(format!("{host}:{port}")).await?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = if https {
            self.tls(host, tcp).await?
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        let authority = self
            .url
            .authority()
            .map(|a| a.as_str())
            .ok_or(Error::Url("no host"))?;
        let path = self.url.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::post(path)
            .header(HOST, authority)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONNECTION, "close")
            .body(Full::new(body))?;
        let exchange = async {
            written.store(true, Ordering::Relaxed);
            let response = sender.send_request(request).await?;
            let status = response.status();
            let retry_after = response.headers().get(RETRY_AFTER).cloned();
            // Error bodies are small JSON; success bodies are not needed but are read so
            // the connection ends cleanly.
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Error>((status, retry_after, body))
        };
        tokio::pin!(conn, exchange);
        tokio::select! {
            result = &mut exchange => result,
            // The connection ended: whatever it read is already in the response's body
            // channel, so the exchange finishes (or fails) on its own.
            _ = &mut conn => exchange.await,
        }
    }

    #[cfg(feature = "rustls")]
    async fn tls(&self, host: &str, tcp: TcpStream) -> Result<Box<dyn Io>, Error> {
        let config = self
            .tls
            .clone()
            .ok_or(Error::Url("https without a TLS configuration"))?;
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .map_err(|_| Error::Url("the host is not a valid TLS server name"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(Box::new(tls))
    }

    #[cfg(not(feature = "rustls"))]
    async fn tls(&self, _host: &str, _tcp: TcpStream) -> Result<Box<dyn Io>, Error> {
        // `ClientBuilder::build` refuses https URLs without the feature; kept total anyway.
        Err(Error::Url("https needs flagpole-sdk's `rustls` feature"))
    }
}

/// What an answer means for the batch (docs/protocol.md, "Acknowledgement and errors").
fn classify(status: StatusCode, retry_after: Option<HeaderValue>, body: &[u8]) -> Outcome {
    let text = || String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    match status.as_u16() {
        200..=299 => Outcome::Stored,
        429 => Outcome::Busy(
            retry_after
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs),
        ),
        413 => Outcome::TooLarge,
        400 | 422 => Outcome::Invalid(text()),
        401 | 403 => Outcome::Unauthorized,
        // A server without the endpoint (older than telemetry, or a proxy not routing
        // it): not stored. The task keeps the batch and asks again much later, since the
        // server may be upgraded meanwhile (a rolling deploy).
        404 | 405 => Outcome::Unsupported(status.to_string()),
        // A 5xx may come after the batch was written: resend it unchanged.
        _ => Outcome::NoAnswer(format!("{status}: {}", text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outcomes() {
        let hv = |s: &str| Some(HeaderValue::from_str(s).unwrap());
        let ok = |code| classify(StatusCode::from_u16(code).unwrap(), None, b"{}");
        assert_eq!(ok(202), Outcome::Stored);
        assert_eq!(ok(200), Outcome::Stored);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, hv("7"), b""),
            Outcome::Busy(Duration::from_secs(7))
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, hv("soon"), b""),
            Outcome::Busy(DEFAULT_RETRY_AFTER)
        );
        assert_eq!(ok(413), Outcome::TooLarge);
        assert_eq!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, None, b"events[0].at_ms"),
            Outcome::Invalid("events[0].at_ms".into())
        );
        assert!(matches!(ok(400), Outcome::Invalid(_)));
        assert!(matches!(ok(404), Outcome::Unsupported(_)));
        assert!(matches!(ok(405), Outcome::Unsupported(_)));
        assert_eq!(ok(401), Outcome::Unauthorized);
        assert!(matches!(ok(503), Outcome::NoAnswer(_)));
    }
}
