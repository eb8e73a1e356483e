//! The TCP connection under the WebSocket, with delayed acknowledgements.
//!
//! A flag stream is receive-mostly: the server pushes a patch, the SDK sends nothing back
//! until its next heartbeat. Linux then acknowledges every patch at once, from the read
//! that drains it (a connection that does not answer is not "interactive", so the kernel
//! does not delay the ACK). During a fan-out that is one extra packet per client per
//! change, sent and processed while the server is still writing the change to the other
//! clients; on loopback the ACK's whole receive path runs inside the reader's `recv`, and
//! it was a fifth of an SDK's CPU per change in `cargo xtask load-push`.
//!
//! Turning `TCP_QUICKACK` off after each read that returned data keeps the socket in
//! delayed-ACK mode (the kernel leaves it whenever its delayed-ACK timer fires, so it is
//! set again per read): the ACK goes out at most ~40 ms later, or with the SDK's next
//! frame, after the burst rather than inside it. Nothing waits on these ACKs: the server
//! sends small, infrequent frames far below the window.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::handshake::client::Request;

/// A [`TcpStream`] that asks for delayed ACKs after every read (see the module docs).
#[derive(Debug)]
pub(crate) struct DelayedAcks {
    tcp: TcpStream,
}

impl DelayedAcks {
    /// Connects to the request's host and port, with Nagle off: messages are small and
    /// latency is the point.
    pub(crate) async fn connect(request: &Request) -> Result<DelayedAcks, WsError> {
        let uri = request.uri();
        let host = uri.host().ok_or(WsError::Url(UrlError::NoHostName))?;
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("wss") => Some(443),
                Some("ws") => Some(80),
                _ => None,
            })
            .ok_or(WsError::Url(UrlError::UnsupportedUrlScheme))?;
        // `host` keeps an IPv6 literal's brackets, which is the form `host:port` needs.
        let tcp = TcpStream::connect(format!("{host}:{port}")).await?;
        tcp.set_nodelay(true)?;
        Ok(DelayedAcks { tcp })
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn delay_acks(&self) {
        // Best effort: failing leaves the kernel's default behaviour, which is correct.
        let _ = socket2::SockRef::from(&self.tcp).set_tcp_quickack(false);
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn delay_acks(&self) {}
}

impl AsyncRead for DelayedAcks {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.delay_acks();
        }
        polled
    }
}

impl AsyncWrite for DelayedAcks {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    #[tokio::test]
    async fn carries_bytes_both_ways_with_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = [0u8; 4];
            socket.read_exact(&mut got).await.unwrap();
            // Two writes, so the client reads (and re-arms delayed ACKs) more than once.
            socket.write_all(b"pa").await.unwrap();
            socket.write_all(b"tch").await.unwrap();
            got
        });
        let request = format!("ws://127.0.0.1:{port}/sdk/v1/stream")
            .into_client_request()
            .unwrap();
        let mut stream = DelayedAcks::connect(&request).await.unwrap();
        assert!(stream.tcp.nodelay().unwrap());
        stream.write_all(b"helo").await.unwrap();
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"patch");
        assert_eq!(&server.await.unwrap(), b"helo");
    }

    #[tokio::test]
    async fn refuses_urls_without_a_host_or_port() {
        let no_port = Request::builder()
            .uri("http://example.com/")
            .body(())
            .unwrap();
        assert!(matches!(
            DelayedAcks::connect(&no_port).await,
            Err(WsError::Url(UrlError::UnsupportedUrlScheme))
        ));
        let no_host = Request::builder().uri("/sdk/v1/stream").body(()).unwrap();
        assert!(matches!(
            DelayedAcks::connect(&no_host).await,
            Err(WsError::Url(UrlError::NoHostName))
        ));
    }
}
