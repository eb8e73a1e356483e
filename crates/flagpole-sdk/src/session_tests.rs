//! The session's protocol logic over in-memory channels, on a paused clock.

use std::sync::Arc;
use std::time::Duration;

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::{ClientMessage, Patch, ServerMessage, close_code};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::{SessionEnd, run};
use crate::SDK_NAME;
use crate::shared::{ConnectionState, Shared, Source};
use crate::testing::{Peer, pair};

const INTERVAL: Duration = Duration::from_secs(15);

struct Harness {
    peer: Peer,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    session: JoinHandle<SessionEnd>,
}

fn start(shared: Arc<Shared>) -> Harness {
    let (ws, peer) = pair();
    let shutdown = CancellationToken::new();
    let session = tokio::spawn({
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        async move { run(ws, &shared, INTERVAL, &shutdown).await }
    });
    Harness {
        peer,
        shared,
        shutdown,
        session,
    }
}

fn env(version: u64) -> EnvironmentSnapshot {
    EnvironmentSnapshot {
        version,
        ..EnvironmentSnapshot::default()
    }
}

fn patch(from: u64, to: u64) -> ServerMessage {
    ServerMessage::Patch(Patch {
        from,
        to,
        ..Patch::default()
    })
}

fn new_shared() -> Arc<Shared> {
    Arc::new(Shared::new(ConnectionState::Connected))
}

#[tokio::test(start_paused = true)]
async fn hello_pings_and_dies_after_two_silent_intervals() {
    let mut h = start(new_shared());
    let hello = h.peer.recv().await;
    assert_eq!(
        hello,
        ClientMessage::Hello {
            sdk: SDK_NAME.into(),
            version: None
        }
    );
    h.peer.send(&ServerMessage::Snapshot {
        environment: env(1),
    });
    let last_heard = Instant::now();
    // Pings every interval while the server stays silent...
    assert_eq!(h.peer.recv().await, ClientMessage::Ping);
    assert_eq!(Instant::now() - last_heard, INTERVAL);
    assert_eq!(h.peer.recv().await, ClientMessage::Ping);
    // ...then closes with 4000 after two intervals plus the margin.
    match h.peer.frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), close_code::TIMEOUT),
        other => panic!("expected close, got {other:?}"),
    }
    let silence = Instant::now() - last_heard;
    assert!(
        silence > 2 * INTERVAL && silence < 3 * INTERVAL,
        "{silence:?}"
    );
    assert_eq!(h.session.await.unwrap(), SessionEnd::Lost { heard: true });
    assert_eq!(h.shared.status().version, Some(1));
}

#[tokio::test(start_paused = true)]
async fn any_frame_keeps_the_connection_alive() {
    let mut h = start(new_shared());
    h.peer.recv().await;
    for _ in 0..10 {
        tokio::time::sleep(INTERVAL * 2).await;
        h.peer.send(&ServerMessage::Ping);
        // Drain until the pong: our own pings may come first.
        while h.peer.recv().await != ClientMessage::Pong {}
    }
    assert!(!h.session.is_finished(), "40 s gaps are under the deadline");
    h.shutdown.cancel();
    assert_eq!(h.session.await.unwrap(), SessionEnd::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn gaps_resync_once_and_catch_up() {
    let mut h = start(new_shared());
    h.peer.recv().await;
    h.peer.send(&ServerMessage::Snapshot {
        environment: env(1),
    });
    h.peer.send(&patch(1, 2));
    h.peer.send(&patch(3, 4));
    assert_eq!(
        h.peer.recv().await,
        ClientMessage::Resync { version: Some(2) }
    );
    // A second gap right away does not send a second resync...
    h.peer.send(&patch(4, 5));
    h.peer.send(&ServerMessage::Ping);
    assert_eq!(h.peer.recv().await, ClientMessage::Pong);
    // ...and stale or backwards messages change nothing.
    h.peer.send(&patch(1, 2));
    h.peer.send(&ServerMessage::Snapshot {
        environment: env(1),
    });
    h.peer.send(&patch(2, 3));
    h.peer.send(&ServerMessage::Ping);
    assert_eq!(h.peer.recv().await, ClientMessage::Pong);
    assert_eq!(h.shared.status().version, Some(3));
    h.peer.send(&ServerMessage::Snapshot {
        environment: env(5),
    });
    h.peer.send(&ServerMessage::Ping);
    assert_eq!(h.peer.recv().await, ClientMessage::Pong);
    assert_eq!(h.shared.status().version, Some(5));
}

#[tokio::test(start_paused = true)]
async fn goodbye_ends_with_the_hint() {
    let mut h = start(new_shared());
    h.peer.recv().await;
    h.peer.send(&ServerMessage::Goodbye {
        reason: "shutdown".into(),
        reconnect_after_ms: 1234,
    });
    assert_eq!(
        h.session.await.unwrap(),
        SessionEnd::Goodbye(Duration::from_millis(1234))
    );
}

#[tokio::test(start_paused = true)]
async fn a_cached_version_is_confirmed_by_the_pong_after_hello() {
    let shared = new_shared();
    shared.publish(env(7), Source::Cache);
    let mut h = start(shared);
    assert_eq!(
        h.peer.recv().await,
        ClientMessage::Hello {
            sdk: SDK_NAME.into(),
            version: Some(7)
        }
    );
    assert_eq!(h.peer.recv().await, ClientMessage::Ping);
    assert_eq!(h.shared.status().source, Source::Cache);
    h.peer.send(&ServerMessage::Pong);
    h.peer.send(&ServerMessage::Ping);
    assert_eq!(h.peer.recv().await, ClientMessage::Pong);
    assert_eq!(h.shared.status().source, Source::Server);
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_a_normal_close() {
    let mut h = start(new_shared());
    h.peer.recv().await;
    h.shutdown.cancel();
    match h.peer.frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected close, got {other:?}"),
    }
    assert_eq!(h.session.await.unwrap(), SessionEnd::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn unknown_messages_are_skipped_and_a_broken_stream_ends_the_session() {
    let mut h = start(new_shared());
    h.peer.recv().await;
    h.peer
        .tx
        .send(Ok(Message::text(r#"{"type":"from_the_future"}"#)))
        .unwrap();
    h.peer.send(&ServerMessage::Ping);
    assert_eq!(h.peer.recv().await, ClientMessage::Pong);
    h.peer.tx.send(Err(WsError::ConnectionClosed)).unwrap();
    assert_eq!(h.session.await.unwrap(), SessionEnd::Lost { heard: true });
}
