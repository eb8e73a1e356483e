//! Real servers on port 0 and real WebSocket clients for the stream tests.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::ServerMessage;
use flagpole_server::App;
use flagpole_server::db::Db;
use flagpole_server::testing::Served;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{ADMIN_TOKEN, Cred, config, request};

/// Longest a test waits for any one thing.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// A served app plus its router (for REST writes in-process; same state as the socket).
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) router: Router,
    pub(crate) db: Db,
    served: Served,
}

impl Server {
    /// Serves an app over `db` on 127.0.0.1:0.
    pub(crate) async fn start(db: Db, heartbeat_secs: u64) -> Server {
        let mut config = config();
        config.stream_heartbeat_secs = heartbeat_secs;
        Server::start_with(db, config).await
    }

    /// Serves an app over `db` with `config` on 127.0.0.1:0.
    pub(crate) async fn start_with(db: Db, config: flagpole_server::Config) -> Server {
        let app = App::with_db(db.clone(), config).await.expect("app");
        let router = app.router();
        let served = Served::start(app).await;
        Server {
            addr: served.addr,
            router,
            db,
            served,
        }
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub(crate) async fn stop(&mut self) {
        self.served.stop(WAIT).await;
    }

    /// Any request through the router: the status and the body's bytes.
    pub(crate) async fn send(&self, req: Request<Body>) -> (StatusCode, Bytes) {
        let reply = super::send(&self.router, req).await;
        (reply.status, reply.bytes)
    }

    /// The server's Prometheus metrics, as text.
    pub(crate) async fn metrics(&self) -> String {
        let req = Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap();
        let (status, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8_lossy(&body).into_owned()
    }

    /// A counter's value from /metrics (0 before it is first incremented).
    pub(crate) async fn counter(&self, name: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// A JSON request with the admin token, through the router.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let reply = super::send(
            &self.router,
            request(method, uri, Cred::Bearer(ADMIN_TOKEN), body.as_ref(), &[]),
        )
        .await;
        (reply.status, reply.body())
    }

    /// A write that must succeed.
    pub(crate) async fn write(&self, method: Method, uri: &str, body: Value) -> Value {
        let (status, value) = self.call(method, uri, Some(body)).await;
        assert!(status.is_success(), "{uri}: {status} {value}");
        value
    }

    /// Toggles flag `flag` of project `shop` in production.
    pub(crate) async fn toggle(&self, flag: &str, enabled: bool) {
        self.write(
            Method::POST,
            &format!("/api/v1/projects/shop/flags/{flag}/environments/production/toggle"),
            json!({"enabled": enabled}),
        )
        .await;
    }
}

/// What [`seed`] made.
pub(crate) struct Seeded {
    /// An SDK key of shop/production.
    pub(crate) sdk_key: String,
    /// shop/production's id.
    pub(crate) env_id: i64,
}

/// Project `shop` (with its default `production` environment), flag `switch`, an SDK key.
pub(crate) async fn seed(server: &Server) -> Seeded {
    server
        .write(Method::POST, "/api/v1/projects", json!({"key": "shop"}))
        .await;
    server
        .write(
            Method::POST,
            "/api/v1/projects/shop/flags",
            json!({"key": "switch"}),
        )
        .await;
    let key = server
        .write(
            Method::POST,
            "/api/v1/projects/shop/environments/production/sdk-keys",
            json!({"name": "stream-test"}),
        )
        .await;
    let env_id: i64 = sqlx::query_scalar(
        "select e.id from environment e join project p on p.id = e.project_id \
         where p.key = 'shop' and e.key = 'production'",
    )
    .fetch_one(&server.db.pool)
    .await
    .unwrap();
    Seeded {
        sdk_key: key["key"].as_str().unwrap().to_owned(),
        env_id,
    }
}

/// Opens the stream with `key`; the handshake's error (e.g. HTTP 401) on refusal.
pub(crate) async fn try_connect(addr: SocketAddr, key: Option<&str>) -> Result<Ws, WsError> {
    let stream = TcpStream::connect(addr).await.unwrap();
    handshake(addr, key, stream).await
}

/// Opens the stream; panics on refusal.
pub(crate) async fn connect(addr: SocketAddr, key: &str) -> Ws {
    try_connect(addr, Some(key)).await.expect("stream opens")
}

/// Opens the stream over a socket with a tiny receive buffer (a client that will stall).
pub(crate) async fn connect_small_buffer(addr: SocketAddr, key: &str) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    handshake(addr, Some(key), stream)
        .await
        .expect("stream opens")
}

async fn handshake(addr: SocketAddr, key: Option<&str>, stream: TcpStream) -> Result<Ws, WsError> {
    let mut request = format!("ws://{addr}/sdk/v1/stream").into_client_request()?;
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    Ok(tokio_tungstenite::client_async(request, stream).await?.0)
}

/// What the client saw next.
#[derive(Debug)]
pub(crate) enum Seen {
    /// A protocol message.
    Message(ServerMessage),
    /// A close frame with this code (or none).
    Closed(Option<u16>),
}

/// The next message or close, skipping server pings; panics after [`WAIT`].
pub(crate) async fn next(ws: &mut Ws) -> Seen {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let message: ServerMessage =
                    serde_json::from_str(&text).expect("valid server message");
                if message != ServerMessage::Ping {
                    return Seen::Message(message);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Seen::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Seen::Closed(None),
        }
    }
}

/// The next protocol message; panics on a close.
pub(crate) async fn next_message(ws: &mut Ws) -> ServerMessage {
    match next(ws).await {
        Seen::Message(m) => m,
        Seen::Closed(code) => panic!("closed ({code:?}) while expecting a message"),
    }
}

/// Reads until a close frame; returns its code.
pub(crate) async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        if let Seen::Closed(code) = next(ws).await {
            return code;
        }
    }
}

/// Sends a JSON text frame.
pub(crate) async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// The environment as the database has it, in key order (what a fresh snapshot holds).
pub(crate) async fn truth(db: &Db, env_id: i64) -> EnvironmentSnapshot {
    let env = flagpole_server::store::snapshot::load_environment(db, env_id)
        .await
        .unwrap()
        .expect("environment exists");
    sorted(env)
}

/// Flags and segments in key order, so states built by patches compare with snapshots
/// (a patch appends new items; a snapshot lists them by key).
pub(crate) fn sorted(mut env: EnvironmentSnapshot) -> EnvironmentSnapshot {
    env.flags.sort_by(|a, b| a.flag.key.cmp(&b.flag.key));
    env.segments.sort_by(|a, b| a.key.cmp(&b.key));
    env
}

/// A snapshot's environment; panics on anything else.
pub(crate) fn snapshot_of(message: ServerMessage) -> EnvironmentSnapshot {
    match message {
        ServerMessage::Snapshot { environment } => environment,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

/// A patch; panics on anything else.
pub(crate) fn patch_of(message: ServerMessage) -> flagpole_core::wire::Patch {
    match message {
        ServerMessage::Patch(patch) => patch,
        other => panic!("expected a patch, got {other:?}"),
    }
}
