//! End to end through a real listener on port 0 with a minimal HTTP/1.1 client.

use flagpole_server::db::Backend;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::backends;
use crate::support::{TestApp, http1};

backends! {
    real_listener => real_listener_postgres, real_listener_sqlite;
}

/// One request per connection (`Connection: close`): read until EOF, split head and body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = http1(addr, &request).await;
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).expect(&body)
    };
    (status, value)
}

async fn real_listener(backend: Backend) {
    let t = TestApp::new(backend).await;
    let admin = t.admin.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(t.app.serve(listener, async {
        let _ = stopped.await;
    }));

    let (s, b) = request(
        addr,
        "POST",
        "/api/v1/projects",
        &admin,
        Some(json!({"key": "live"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = request(
        addr,
        "POST",
        "/api/v1/projects/live/flags",
        &admin,
        Some(json!({"key": "switch"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = request(
        addr,
        "POST",
        "/api/v1/projects/live/flags/switch/environments/production/toggle",
        &admin,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["environments"]["production"]["enabled"], true);
    let (s, b) = request(addr, "PUT", "/api/v1/projects/live/flags/switch/environments/production", &admin,
        Some(json!({"config": {"off_variant": "off", "default_serve": {"variant": "nope"}}, "version": 2}))).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "config.default_serve.variant");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
