//! `flagpole healthcheck`: one HTTP GET of a probe endpoint, for container images that
//! have no curl (Docker `HEALTHCHECK`, compose `healthcheck`, exec probes).
//!
//! Plain HTTP/1.1 over a blocking socket with a deadline: the probe talks to the server on
//! its own host, so TLS, redirects and proxies are deliberately not handled. Rejected: an
//! HTTP client crate (hyper-util's client or reqwest) for one request line.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

/// Why a probe did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("unsupported probe URL `{0}` (expected http://host[:port]/path)")]
    BadUrl(String),
    /// Connecting, writing or reading failed (or took longer than the timeout).
    #[error("probe request failed: {0}")]
    Io(#[from] std::io::Error),
    /// The answer was not an HTTP response.
    #[error("probe got a malformed response")]
    Malformed,
}

/// GETs `url` within `timeout` and returns the HTTP status code.
pub fn get_status(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(ProbeError::BadUrl(url.to_owned()));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let deadline = Instant::now() + timeout;
    let addr = with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream.set_write_timeout(Some(left()))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: flagpole-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    // Only the status line matters; read until it is complete.
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 128];
    while !head.windows(2).any(|w| w == b"\r\n") {
        stream.set_read_timeout(Some(left()))?;
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() > 4096 {
            return Err(ProbeError::Malformed);
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or(ProbeError::Malformed)
}

/// `HTTP/1.1 200 OK\r\n...` → 200.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable\r\nx: y"),
            Some(503)
        );
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[test]
    fn refuses_other_schemes() {
        assert!(matches!(
            get_status("https://localhost/readyz", Duration::from_secs(1)),
            Err(ProbeError::BadUrl(_))
        ));
    }

    #[test]
    fn nothing_listening_is_an_error_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let started = Instant::now();
        assert!(get_status(&format!("http://{addr}/readyz"), Duration::from_secs(2)).is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
