//! A deliberately small HTTP client for the cluster tests: one HTTP/1.0 request per
//! connection, so every request opens a fresh connection (as a client behind a load
//! balancer would after a failure) and the response is simply read to EOF, never chunked.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The admin token every replica is started with.
pub(crate) const ADMIN_TOKEN: &str = "fp_api_cluster_admin_token_00000000000000000";

/// What came back.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// HTTP status.
    pub(crate) status: u16,
    /// Body as JSON (`Null` when it was not JSON).
    pub(crate) body: Value,
    /// From connect to the last byte.
    pub(crate) took: Duration,
}

impl Response {
    /// 2xx.
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends one request with the admin token; `Err` for transport failures and timeouts.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Response, String> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, exchange(addr, method, path, body)).await {
        Ok(Ok((status, body))) => Ok(Response {
            status,
            body,
            took: started.elapsed(),
        }),
        Ok(Err(e)) => Err(format!("{method} {path}: {e}")),
        Err(_) => Err(format!("{method} {path}: no answer within {timeout:?}")),
    }
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).await?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
    );
    if body.is_some() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(payload.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("response without a header end"))?;
    let status_line = std::str::from_utf8(&raw[..split])
        .map_err(std::io::Error::other)?
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    Ok((status, body))
}

/// GET with a short timeout; the status, or `None` if nothing answered.
pub(crate) async fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    request(addr, "GET", path, None, Duration::from_secs(2))
        .await
        .ok()
        .map(|r| r.status)
}
