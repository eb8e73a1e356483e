//! Requests through the router with each kind of credential, their replies read to the
//! end, and raw HTTP/1.1 over a real socket.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Sends one raw HTTP/1.1 request (saying `Connection: close`) over a new connection to
/// `addr`, past the router, so the server sees a real socket; returns the status code and
/// the body.
pub(crate) async fn http1(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).expect("utf-8 response");
    let parsed = text.split_once("\r\n\r\n").and_then(|(head, body)| {
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    });
    parsed.unwrap_or_else(|| panic!("not an HTTP response: {text}"))
}

/// One credential for a request.
#[derive(Clone, Copy)]
pub(crate) enum Cred<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
    /// Session cookie value (sent after another cookie) and the CSRF header, if any.
    Cookie(&'a str, Option<&'a str>),
}

/// A request with `cred`, the `extra` headers and, if given, a JSON body.
pub(crate) fn request(
    method: Method,
    uri: &str,
    cred: Cred<'_>,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    match cred {
        Cred::None => {}
        Cred::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
        Cred::ApiKey(k) => req = req.header("x-api-key", k),
        Cred::Cookie(c, csrf) => {
            req = req.header("cookie", format!("other=1; fp_session={c}"));
            if let Some(csrf) = csrf {
                req = req.header("x-csrf-token", csrf);
            }
        }
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request")
}

/// A response read to the end.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Bytes,
}

/// Sends `req` through `router` and reads the whole response.
pub(crate) async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        bytes,
    }
}

impl Reply {
    /// The body as JSON (`Null` when empty); panics when it is anything else, so a
    /// plain-text answer cannot pass for an error in the API's shape.
    pub(crate) fn json(&self) -> Value {
        if self.bytes.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.status, self.text()))
    }

    /// The body as JSON (`Null` when empty), or as a JSON string of its text when it is
    /// not JSON.
    pub(crate) fn body(&self) -> Value {
        if self.bytes.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.bytes).unwrap_or_else(|_| Value::String(self.text()))
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}
