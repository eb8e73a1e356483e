//! The reconnect policy with a fake connector, on a paused clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::{ClientMessage, ServerMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_util::sync::CancellationToken;

use super::{Connect, Options, run};
use crate::shared::{ConnectionState, Shared};
use crate::testing::{FakeWs, Peer, pair};

const MS: Duration = Duration::from_millis(1);

/// Hands out the planned connections in order (`None` = refused), then refuses; reports
/// the time of every attempt.
struct FakeConnector {
    plan: Mutex<VecDeque<Option<FakeWs>>>,
    attempts: mpsc::UnboundedSender<Instant>,
    /// Once the plan is used up, answer the handshake with 401 (a rejected key) instead of
    /// refusing the connection.
    reject: bool,
}

impl Connect for FakeConnector {
    type Stream = FakeWs;

    async fn connect(&self) -> Result<FakeWs, WsError> {
        let _ = self.attempts.send(Instant::now());
        let next = self.plan.lock().unwrap().pop_front().flatten();
        next.ok_or_else(|| {
            if self.reject {
                let response = tokio_tungstenite::tungstenite::http::Response::builder()
                    .status(401)
                    .body(None)
                    .unwrap();
                WsError::Http(Box::new(response))
            } else {
                WsError::ConnectionClosed
            }
        })
    }
}

struct Harness {
    attempts: mpsc::UnboundedReceiver<Instant>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

fn start(plan: Vec<Option<FakeWs>>) -> Harness {
    start_with(plan, false)
}

fn start_with(plan: Vec<Option<FakeWs>>, reject: bool) -> Harness {
    let (tx, attempts) = mpsc::unbounded_channel();
    let connector = FakeConnector {
        plan: Mutex::new(plan.into()),
        attempts: tx,
        reject,
    };
    let shared = Arc::new(Shared::new(ConnectionState::Connecting));
    let shutdown = CancellationToken::new();
    let options = Options {
        heartbeat: Duration::from_secs(15),
        backoff_initial: 500 * MS,
        backoff_max: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rejected_retry: Duration::from_secs(60),
    };
    let task = tokio::spawn(run(connector, shared.clone(), options, shutdown.clone()));
    Harness {
        attempts,
        shared,
        shutdown,
        task,
    }
}

impl Harness {
    async fn attempt(&mut self) -> Instant {
        self.attempts.recv().await.unwrap()
    }

    /// The gaps between the next `n + 1` attempts.
    async fn gaps(&mut self, n: usize) -> Vec<Duration> {
        let mut last = self.attempt().await;
        let mut gaps = Vec::new();
        for _ in 0..n {
            let next = self.attempt().await;
            gaps.push(next - last);
            last = next;
        }
        gaps
    }
}

fn assert_backoff(gaps: &[Duration], bases_ms: &[u32]) {
    for (gap, base) in gaps.iter().zip(bases_ms) {
        assert!(
            *gap >= MS * *base / 2 && *gap <= MS * *base,
            "gap {gap:?} for base {base} ms: {gaps:?}"
        );
    }
}

/// A handshake answered 401 (unknown or revoked key) shows as `Rejected` and is retried
/// every 60-90 s, not on the normal backoff that starts at half a second.
#[tokio::test(start_paused = true)]
async fn a_rejected_key_is_retried_slowly() {
    let mut h = start_with(vec![], true);
    let gaps = h.gaps(3).await;
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_secs(60) && *gap <= Duration::from_secs(90),
            "{gaps:?}"
        );
    }
    assert_eq!(h.shared.status().connection, ConnectionState::Rejected);
    assert_eq!(
        h.shared.status().to_string(),
        "SDK key rejected: invalid or revoked, flags from None"
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_back_off_exponentially_to_30_seconds() {
    let mut h = start(vec![]);
    let gaps = h.gaps(9).await;
    assert_backoff(
        &gaps,
        &[500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
    );
    assert_eq!(h.shared.status().connection, ConnectionState::Disconnected);
    // Shutdown interrupts the 30 s wait at once.
    let before = Instant::now();
    h.shutdown.cancel();
    h.task.await.unwrap();
    assert_eq!(Instant::now(), before);
}

async fn serve_hello(peer: &mut Peer) {
    assert!(matches!(peer.recv().await, ClientMessage::Hello { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_connection_the_server_talked_on_resets_the_backoff() {
    let (ws, mut peer) = pair();
    let mut h = start(vec![None, None, None, Some(ws)]);
    let gaps = h.gaps(3).await;
    assert_backoff(&gaps, &[500, 1000, 2000]);
    serve_hello(&mut peer).await;
    assert_eq!(h.shared.status().connection, ConnectionState::Connected);
    peer.send(&ServerMessage::Snapshot {
        environment: EnvironmentSnapshot::default(),
    });
    peer.send(&ServerMessage::Ping);
    assert_eq!(peer.recv().await, ClientMessage::Pong);
    let dropped = Instant::now();
    drop(peer);
    let first = h.attempt().await;
    let second = h.attempt().await;
    assert_backoff(&[first - dropped, second - first], &[500, 1000]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_does_not_reset_the_backoff() {
    let (ws, mut peer) = pair();
    let mut h = start(vec![None, None, Some(ws)]);
    let gaps = h.gaps(2).await;
    assert_backoff(&gaps, &[500, 1000]);
    serve_hello(&mut peer).await;
    let dropped = Instant::now();
    drop(peer);
    let next = h.attempt().await;
    assert_backoff(&[next - dropped], &[2000]);
}

#[tokio::test(start_paused = true)]
async fn goodbye_reconnects_after_the_hint_plus_jitter() {
    let (ws, mut peer) = pair();
    let (ws2, mut peer2) = pair();
    let mut h = start(vec![Some(ws), Some(ws2)]);
    h.attempt().await;
    serve_hello(&mut peer).await;
    peer.send(&ServerMessage::Goodbye {
        reason: "shutdown".into(),
        reconnect_after_ms: 5000,
    });
    let said = Instant::now();
    let next = h.attempt().await;
    let delay = next - said;
    assert!(delay >= 5000 * MS && delay <= 6000 * MS, "{delay:?}");
    serve_hello(&mut peer2).await;
    h.shutdown.cancel();
    h.task.await.unwrap();
}
