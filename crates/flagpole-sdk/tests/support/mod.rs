//! A small in-test stream server: accepts WebSocket connections on 127.0.0.1:0 and hands
//! each to the test, which then plays the server's side of the protocol by hand.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of it

use std::net::SocketAddr;
use std::time::Duration;

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::{ClientMessage, Patch, ServerMessage};
use flagpole_sdk::{Client, Status};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

pub mod events;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub const KEY: &str = "fp_sdk_test";

pub struct TestServer {
    pub addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
    /// `POST /sdk/v1/events` on the same port.
    pub events: events::EventsStub,
}

impl TestServer {
    /// Accepts only `Authorization: Bearer KEY`; anything else gets 401 before the upgrade.
    /// Does not announce telemetry on the stream, so SDKs post their batches.
    pub async fn start() -> TestServer {
        TestServer::start_with(false).await
    }

    /// A server whose upgrade response carries `flagpole-telemetry: v1`.
    pub async fn with_stream_telemetry() -> TestServer {
        TestServer::start_with(true).await
    }

    async fn start_with(telemetry: bool) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        let (events, stub) = events::EventsStub::new();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let stub = stub.clone();
                tokio::spawn(async move {
                    // One port serves both ways in, as the real server does: a POST is
                    // the events endpoint, anything else the stream's upgrade.
                    let mut start = [0u8; 4];
                    if stream.peek(&mut start).await.is_ok() && &start == b"POST" {
                        stub.serve(stream).await;
                    } else if let Some(conn) = handshake(stream, telemetry).await {
                        let _ = tx.send(conn);
                    }
                });
            }
        });
        TestServer {
            addr,
            conns,
            events,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next connection that passed the handshake.
    pub async fn accept(&mut self) -> Conn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("no connection in time")
            .expect("server stopped")
    }
}

async fn handshake(stream: TcpStream, telemetry: bool) -> Option<Conn> {
    #[allow(clippy::result_large_err)] // tungstenite's callback type
    let callback = |request: &Request, mut response: Response| {
        if telemetry {
            response
                .headers_mut()
                .insert(flagpole_core::wire::TELEMETRY_HEADER, "v1".parse().unwrap());
        }
        check_key(request, response)
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, callback)
        .await
        .ok()?;
    Some(Conn { ws })
}

// The signature is tungstenite's callback type, whose error is a whole HTTP response.
#[allow(clippy::result_large_err)]
fn check_key(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth == Some(&format!("Bearer {KEY}")) {
        Ok(response)
    } else {
        let mut refused = ErrorResponse::new(Some("unauthorized".into()));
        *refused.status_mut() = StatusCode::UNAUTHORIZED;
        Err(refused)
    }
}

/// One client connection, server side.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    pub async fn send(&mut self, message: &ServerMessage) {
        let text = serde_json::to_string(message).unwrap();
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    /// The next protocol message from the client.
    pub async fn recv(&mut self) -> ClientMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message in time")
                .expect("connection closed")
                .expect("connection broken");
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// The next telemetry batch on the stream (skipping pings and pongs, answering pings).
    pub async fn telemetry(&mut self) -> flagpole_core::wire::TelemetryBatch {
        loop {
            match self.recv().await {
                ClientMessage::Telemetry { batch } => return batch,
                ClientMessage::Ping => self.send(&ServerMessage::Pong).await,
                _ => {}
            }
        }
    }

    /// Expects the hello and returns the version it carries.
    pub async fn hello(&mut self) -> Option<u64> {
        match self.recv().await {
            ClientMessage::Hello { sdk, version } => {
                assert!(sdk.starts_with("flagpole-rust/"), "{sdk}");
                version
            }
            other => panic!("expected hello, got {other:?}"),
        }
    }

    /// Round-trips a ping: everything sent before it has been processed by the client.
    pub async fn sync(&mut self) {
        self.send(&ServerMessage::Ping).await;
        loop {
            if self.recv().await == ClientMessage::Pong {
                return;
            }
        }
    }

    /// Waits until the client closes or drops the connection; true if it sent a close frame.
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("still open")
            {
                Some(Ok(Message::Close(_))) => return true,
                None | Some(Err(_)) => return false,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// A boolean flag that asks for exposures, at flag version `version`.
pub fn marked_flag(key: &str, version: u64) -> Value {
    let mut flag = bool_flag(key, true);
    flag["version"] = version.into();
    flag["exposures"] = true.into();
    flag
}

/// A boolean flag, served `on` by default when enabled.
pub fn bool_flag(key: &str, enabled: bool) -> Value {
    json!({
        "flag": {"key": key, "kind": "boolean", "variants": [
            {"key": "on", "value": true}, {"key": "off", "value": false}]},
        "config": {"enabled": enabled, "off_variant": "off", "default_serve": {"variant": "on"}}
    })
}

pub fn env(version: u64, flags: Vec<Value>) -> EnvironmentSnapshot {
    serde_json::from_value(json!({"version": version, "flags": flags})).unwrap()
}

pub fn snapshot(version: u64, flags: Vec<Value>) -> ServerMessage {
    ServerMessage::Snapshot {
        environment: env(version, flags),
    }
}

pub fn patch(from: u64, to: u64, flags: Vec<Value>) -> ServerMessage {
    ServerMessage::Patch(Patch {
        from,
        to,
        flags: flags
            .into_iter()
            .map(|f| serde_json::from_value(f).unwrap())
            .collect(),
        ..Patch::default()
    })
}

/// Waits (without sleeping) until the client's status satisfies `condition`.
pub async fn status_until(client: &Client, condition: impl FnMut(&Status) -> bool) -> Status {
    let mut status = client.watch_status();
    let result = tokio::time::timeout(WAIT, status.wait_for(condition)).await;
    result
        .expect("condition not reached in time")
        .unwrap()
        .clone()
}

/// An address where nothing listens: connections are refused at once.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
