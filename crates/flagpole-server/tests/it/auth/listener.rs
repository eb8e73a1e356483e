//! Through a real listener: the client address for rate limiting comes from the socket,
//! and a forged `X-Forwarded-For` does not get around it.

use flagpole_server::db::Backend;
use serde_json::json;
use tokio::net::TcpListener;

use crate::on_both_backends;
use crate::support::{fresh_app, http1};

/// POSTs a login over a fresh connection; returns the status code.
async fn login(addr: std::net::SocketAddr, email: &str, forwarded_for: &str) -> u16 {
    let body = json!({"email": email, "password": "wrong-password"}).to_string();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: flagpole\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nX-Forwarded-For: {forwarded_for}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http1(addr, &request).await.0
}

async fn socket_address_is_rate_limited(backend: Backend) {
    let app = fresh_app(backend).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    // 20 failures from one socket address, each claiming another forwarded address and
    // spread over emails so that no email reaches its own limit.
    for i in 0..20 {
        let status = login(
            addr,
            &format!("u{}@example.com", i / 4),
            &format!("10.0.0.{i}"),
        )
        .await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let status = login(addr, "fresh@example.com", "10.9.9.9").await;
    assert_eq!(
        status, 429,
        "the socket address is limited whatever the header says"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

on_both_backends!(socket_address_is_rate_limited);
