//! The connection protocol over in-memory channels with a paused clock: no socket, no
//! database.

use std::pin::Pin;
use std::task::{Context, Poll};

use flagpole_core::model::{EnvironmentSnapshot, FlagState};
use flagpole_core::wire::Patch;
use serde_json::json;
use tokio::sync::mpsc;

use super::*;

/// The server's end: frames the test injects come out of `incoming`; what the server sends
/// goes into `outgoing`.
struct TestSocket {
    incoming: mpsc::UnboundedReceiver<Result<Message, WsError>>,
    outgoing: mpsc::UnboundedSender<Message>,
    /// Messages the client takes before it stops reading (`None`: it never stops). Shared
    /// with the test, which can make it read again.
    takes: Arc<std::sync::Mutex<Option<usize>>>,
}

impl Stream for TestSocket {
    type Item = Result<Message, WsError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_recv(cx)
    }
}

impl Sink<Message> for TestSocket {
    type Error = WsError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Stalled: not ready (nothing wakes the writer; the connection's own timers and
        // cancellations decide what happens next).
        match *self.takes.lock().unwrap() {
            Some(0) => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        if let Some(takes) = &mut *self.takes.lock().unwrap() {
            *takes = takes.saturating_sub(1);
        }
        self.outgoing
            .send(item)
            .map_err(|_| WsError::ConnectionClosed)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// The client's end.
struct Peer {
    to_server: mpsc::UnboundedSender<Result<Message, WsError>>,
    from_server: mpsc::UnboundedReceiver<Message>,
    task: tokio::task::JoinHandle<End>,
    shutdown: CancellationToken,
    revoked: CancellationToken,
    /// See [`TestSocket::takes`].
    takes: Arc<std::sync::Mutex<Option<usize>>>,
}

impl Peer {
    fn send(&self, json: serde_json::Value) {
        self.to_server
            .send(Ok(Message::Text(json.to_string().into())))
            .unwrap();
    }

    async fn next(&mut self) -> Message {
        tokio::time::timeout(Duration::from_secs(3600), self.from_server.recv())
            .await
            .expect("a message in time")
            .expect("the server sent something")
    }

    async fn next_server_message(&mut self) -> ServerMessage {
        match self.next().await {
            Message::Text(t) => serde_json::from_str(&t).expect("server messages parse"),
            other => panic!("expected text, got {other:?}"),
        }
    }

    async fn close_code(&mut self) -> u16 {
        loop {
            match self.next().await {
                Message::Close(Some(frame)) => return frame.code.into(),
                Message::Text(_) => continue,
                other => panic!("expected close, got {other:?}"),
            }
        }
    }

    fn nothing_pending(&mut self) -> bool {
        self.from_server.try_recv().is_err()
    }
}

const HEARTBEAT: Duration = Duration::from_secs(10);

fn flag(key: &str, enabled: bool) -> FlagState {
    serde_json::from_value(json!({
        "flag": {"key": key, "kind": "boolean", "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}]},
        "config": {"enabled": enabled, "off_variant": "off", "default_serve": {"variant": "on"}}
    }))
    .unwrap()
}

fn hub_at(version: u64) -> Arc<EnvHub> {
    let hub = Arc::new(EnvHub::new(1));
    hub.set_loaded(EnvironmentSnapshot {
        version,
        flags: vec![flag("a", true).into()],
        segments: vec![],
    });
    hub
}

fn toggle(from: u64, to: u64, enabled: bool) -> Patch {
    Patch {
        from,
        to,
        flags: vec![flag("a", enabled)],
        ..Patch::default()
    }
}

fn connect(hub: &Arc<EnvHub>) -> Peer {
    connect_taking(hub, None)
}

/// Connected, said hello without a version, and got its snapshot.
async fn greeted(hub: &Arc<EnvHub>) -> Peer {
    let mut peer = connect(hub);
    peer.send(json!({"type": "hello"}));
    assert!(matches!(
        peer.next_server_message().await,
        ServerMessage::Snapshot { .. }
    ));
    peer
}

fn connect_taking(hub: &Arc<EnvHub>, takes: Option<usize>) -> Peer {
    let takes = Arc::new(std::sync::Mutex::new(takes));
    let (to_server, incoming) = mpsc::unbounded_channel();
    let (outgoing, from_server) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let revoked = CancellationToken::new();
    let settings = Settings {
        heartbeat: HEARTBEAT,
        reconnect_after_ms: 1000,
    };
    let task = tokio::spawn(serve(
        TestSocket {
            incoming,
            outgoing,
            takes: takes.clone(),
        },
        hub.clone(),
        None,
        None,
        settings,
        shutdown.clone(),
        revoked.clone(),
    ));
    Peer {
        to_server,
        from_server,
        task,
        shutdown,
        revoked,
        takes,
    }
}

#[tokio::test(start_paused = true)]
async fn hello_without_version_gets_a_snapshot_then_every_patch() {
    let hub = hub_at(3);
    let mut peer = connect(&hub);
    peer.send(json!({"type": "hello", "sdk": "test/0"}));
    let ServerMessage::Snapshot { mut environment } = peer.next_server_message().await else {
        panic!("expected a snapshot")
    };
    assert_eq!(environment.version, 3);
    hub.publish(toggle(3, 5, false)).unwrap();
    hub.publish(toggle(5, 6, true)).unwrap();
    for _ in 0..2 {
        let ServerMessage::Patch(patch) = peer.next_server_message().await else {
            panic!("expected a patch")
        };
        environment.apply(&patch).unwrap();
    }
    assert_eq!(environment.version, 6);
    assert!(environment.flags[0].config.enabled);
}

#[tokio::test(start_paused = true)]
async fn hello_with_a_recent_version_gets_patches_an_old_one_a_snapshot() {
    let hub = hub_at(1);
    for v in 1..=(super::super::hub::RING as u64 + 5) {
        hub.publish(toggle(v, v + 1, v % 2 == 0)).unwrap();
    }
    let latest = hub.version().unwrap();
    let mut peer = connect(&hub);
    peer.send(json!({"type": "hello", "version": latest - 2}));
    for expected in [latest - 1, latest] {
        let ServerMessage::Patch(patch) = peer.next_server_message().await else {
            panic!("expected a patch")
        };
        assert_eq!(patch.to, expected);
    }
    // Current: nothing more to say.
    peer.send(json!({"type": "resync", "version": latest}));
    peer.send(json!({"type": "ping"}));
    assert_eq!(peer.next_server_message().await, ServerMessage::Pong);

    let mut old = connect(&hub);
    old.send(json!({"type": "hello", "version": 1}));
    let ServerMessage::Snapshot { environment } = old.next_server_message().await else {
        panic!("expected a snapshot for a version older than the ring")
    };
    assert_eq!(environment.version, latest);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_lags_gets_a_snapshot_not_a_gap() {
    let hub = hub_at(0);
    let mut peer = connect(&hub);
    peer.send(json!({"type": "hello", "version": 0}));
    tokio::task::yield_now().await;
    // The connection task does not run while we publish more than the broadcast holds.
    for v in 0..(super::super::hub::RING as u64 + 10) {
        hub.publish(toggle(v, v + 1, v % 2 == 0)).unwrap();
    }
    let latest = hub.version().unwrap();
    let mut held = 0;
    loop {
        match peer.next_server_message().await {
            ServerMessage::Snapshot { environment } => held = environment.version,
            ServerMessage::Patch(p) => {
                assert_eq!(p.from, held, "a patch must start where the client is");
                held = p.to;
            }
            other => panic!("unexpected {other:?}"),
        }
        if held == latest {
            break;
        }
    }
    tokio::task::yield_now().await;
    assert!(peer.nothing_pending());
}

#[tokio::test(start_paused = true)]
async fn a_client_ahead_of_this_replica_waits_and_never_goes_back() {
    let hub = hub_at(3);
    let mut peer = connect(&hub);
    peer.send(json!({"type": "hello", "version": 10}));
    tokio::task::yield_now().await;
    hub.publish(toggle(3, 8, true)).unwrap();
    hub.publish(toggle(8, 12, false)).unwrap();
    let ServerMessage::Snapshot { environment } = peer.next_server_message().await else {
        panic!("expected a snapshot past the client's version")
    };
    assert_eq!(environment.version, 12);
}

#[tokio::test(start_paused = true)]
async fn silence_for_two_heartbeats_closes_with_4000_and_pongs_keep_it_open() {
    let hub = hub_at(0);
    let mut lively = connect(&hub);
    let mut silent = connect(&hub);
    lively.send(json!({"type": "hello"}));
    silent.send(json!({"type": "hello"}));
    assert!(matches!(
        lively.next_server_message().await,
        ServerMessage::Snapshot { .. }
    ));
    assert!(matches!(
        silent.next_server_message().await,
        ServerMessage::Snapshot { .. }
    ));
    for _ in 0..5 {
        assert_eq!(lively.next_server_message().await, ServerMessage::Ping);
        lively.send(json!({"type": "pong"}));
    }
    // The silent one got its pings too, then was closed after two intervals.
    assert_eq!(silent.close_code().await, close_code::TIMEOUT);
    assert_eq!(silent.task.await.unwrap(), End::HeartbeatTimeout);
    assert!(!lively.task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn malformed_and_oversized_frames_close_with_1003_and_1009() {
    let hub = hub_at(0);
    let mut peer = connect(&hub);
    peer.send(json!({"type": "launch_missiles"}));
    let ServerMessage::Error { code, .. } = peer.next_server_message().await else {
        panic!("expected an error first")
    };
    assert_eq!(code, "malformed_message");
    assert_eq!(peer.close_code().await, close_code::UNSUPPORTED);
    assert_eq!(peer.task.await.unwrap(), End::Malformed);

    let mut peer = connect(&hub);
    peer.to_server
        .send(Ok(Message::Binary(vec![1, 2, 3].into())))
        .unwrap();
    assert!(matches!(
        peer.next_server_message().await,
        ServerMessage::Error { .. }
    ));
    assert_eq!(peer.close_code().await, close_code::UNSUPPORTED);

    let mut peer = connect(&hub);
    let too_long = tokio_tungstenite::tungstenite::Error::Capacity(
        tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong {
            size: 20_000,
            max_size: flagpole_core::wire::MAX_CLIENT_FRAME,
        },
    );
    peer.to_server.send(Err(too_long)).unwrap();
    let ServerMessage::Error { code, .. } = peer.next_server_message().await else {
        panic!("expected an error first")
    };
    assert_eq!(code, "frame_too_large");
    assert_eq!(peer.close_code().await, close_code::TOO_BIG);
    assert_eq!(peer.task.await.unwrap(), End::TooBig);
}

#[tokio::test(start_paused = true)]
async fn shutdown_says_goodbye_then_closes_with_1001() {
    let hub = hub_at(0);
    let mut peer = greeted(&hub).await;
    peer.shutdown.cancel();
    assert_eq!(
        peer.next_server_message().await,
        ServerMessage::Goodbye {
            reason: "shutdown".into(),
            reconnect_after_ms: 1000
        }
    );
    assert_eq!(peer.close_code().await, close_code::GOING_AWAY);
    assert_eq!(peer.task.await.unwrap(), End::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_key_closes_with_1008() {
    let hub = hub_at(0);
    let mut peer = greeted(&hub).await;
    peer.revoked.cancel();
    assert_eq!(peer.close_code().await, close_code::POLICY);
    assert_eq!(peer.task.await.unwrap(), End::KeyRevoked);
}

#[tokio::test(start_paused = true)]
async fn a_deleted_environment_closes_with_1008_and_shutdown_takes_precedence() {
    let hub = hub_at(0);
    let mut peer = greeted(&hub).await;
    hub.closed.cancel();
    assert_eq!(peer.close_code().await, close_code::POLICY);
    assert_eq!(peer.task.await.unwrap(), End::EnvironmentGone);

    // Both before the connection wakes: shutdown (the goodbye) takes precedence.
    let hub = hub_at(0);
    let peer = greeted(&hub).await;
    hub.closed.cancel();
    peer.shutdown.cancel();
    assert_eq!(peer.task.await.unwrap(), End::Shutdown);
}

#[test]
fn static_frames_are_valid_server_messages() {
    assert_eq!(
        serde_json::from_str::<ServerMessage>(&PING).unwrap(),
        ServerMessage::Ping
    );
    assert_eq!(
        serde_json::from_str::<ServerMessage>(&PONG).unwrap(),
        ServerMessage::Pong
    );
    let hub = hub_at(2);
    hub.publish(toggle(2, 4, false)).unwrap();
    let CatchUp::Patches(frames) = hub.catch_up(Some(2)) else {
        panic!("expected patches")
    };
    assert_eq!(
        serde_json::from_str::<ServerMessage>(&frames[0].text).unwrap(),
        ServerMessage::Patch(toggle(2, 4, false))
    );
}

#[tokio::test(start_paused = true)]
async fn a_large_snapshot_goes_out_in_fragments_that_reassemble_to_it() {
    let hub = Arc::new(EnvHub::new(1));
    // Non-ASCII keys, so some cut points fall inside a character and must move.
    let flags: Vec<Arc<FlagState>> = (0..200)
        .map(|i| Arc::new(flag(&format!("drapeau-é-{i}"), true)))
        .collect();
    hub.set_loaded(EnvironmentSnapshot {
        version: 4,
        flags: flags.clone(),
        segments: vec![],
    });
    let whole = hub.snapshot().unwrap().text.clone();
    assert!(
        whole.len() > 4 * FRAGMENT,
        "the test needs several fragments"
    );

    let mut peer = connect(&hub);
    peer.send(json!({"type": "hello"}));
    let mut payload = Vec::new();
    let mut frames = 0;
    loop {
        let Message::Frame(frame) = peer.next().await else {
            panic!("a large snapshot is sent as raw frames")
        };
        let header = frame.header();
        let expected = if frames == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        assert_eq!(header.opcode, expected);
        assert!(frame.payload().len() <= FRAGMENT);
        assert!(
            std::str::from_utf8(frame.payload()).is_ok(),
            "cut at a character boundary"
        );
        payload.extend_from_slice(frame.payload());
        frames += 1;
        if header.is_final {
            break;
        }
    }
    assert!(frames >= whole.len().div_ceil(FRAGMENT));
    assert_eq!(payload, whole.as_bytes());
    let ServerMessage::Snapshot { environment } = serde_json::from_slice(&payload).unwrap() else {
        panic!("expected a snapshot")
    };
    assert_eq!(environment.version, 4);
    assert_eq!(environment.flags, flags);

    // Small messages are still single text frames.
    hub.publish(toggle_key("drapeau-é-0", 4, 5)).unwrap();
    assert!(matches!(peer.next().await, Message::Text(_)));
}

fn toggle_key(key: &str, from: u64, to: u64) -> Patch {
    Patch {
        from,
        to,
        flags: vec![flag(key, false)],
        ..Patch::default()
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_in_the_middle_of_a_fragmented_snapshot_sends_no_goodbye_inside_it() {
    let hub = Arc::new(EnvHub::new(1));
    let flags = (0..200)
        .map(|i| Arc::new(flag(&format!("flag-{i}"), true)))
        .collect();
    hub.set_loaded(EnvironmentSnapshot {
        version: 4,
        flags,
        segments: vec![],
    });
    // The client takes two fragments, then stops reading.
    let mut peer = connect_taking(&hub, Some(2));
    peer.send(json!({"type": "hello"}));
    for _ in 0..2 {
        assert!(matches!(peer.next().await, Message::Frame(_)));
    }
    // It reads again just as the server shuts down: whatever the server sends while
    // ending goes through.
    *peer.takes.lock().unwrap() = None;
    peer.shutdown.cancel();
    assert_eq!(peer.task.await.unwrap(), End::Shutdown);
    // A goodbye here would be a text frame inside the unfinished message, which the
    // client would reject as a protocol error; the close (a control frame, allowed between
    // fragments) says why on its own.
    let mut rest = Vec::new();
    while let Ok(message) = peer.from_server.try_recv() {
        rest.push(message);
    }
    assert!(
        matches!(&rest[..], [Message::Close(Some(frame))] if u16::from(frame.code) == close_code::GOING_AWAY),
        "{rest:?}"
    );
}
