//! Through a real listener: the client address for rate limiting comes from the socket,
//! and a forged `X-Forwarded-For` does not get around it.

use flagpole_server::db::Backend;
use flagpole_server::testing::{fresh_db, fresh_sqlite_dir};
use flagpole_server::{App, Config};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::on_both_backends;

/// POSTs a login over a fresh connection; returns the status code.
async fn login(addr: std::net::SocketAddr, email: &str, forwarded_for: &str) -> u16 {
    let body = json!({"email": email, "password": "wrong-password"}).to_string();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: flagpole\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nX-Forwarded-For: {forwarded_for}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}

async fn socket_address_is_rate_limited(backend: Backend) {
    let db = fresh_db(backend).await.unwrap();
    let app = App::with_db(db, Config::for_tests(fresh_sqlite_dir().unwrap()))
        .await
        .unwrap();
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
