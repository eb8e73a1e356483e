//! One connection's life: hello, then a `select!` over {incoming frame, ping tick,
//! heartbeat deadline, shutdown} until it ends.
//!
//! Written against `Stream` + `Sink` of WebSocket messages rather than a socket, so the
//! protocol logic is tested with in-memory channels and a paused clock.

use std::time::Duration;

use flagpole_core::wire::{ClientMessage, ServerMessage, close_code};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use crate::SDK_NAME;
use crate::backoff::Heartbeat;
use crate::shared::{Shared, Source};
use crate::sync::{self, Step};
use crate::telemetry::{Attached, Reply};

/// How long a close frame may take to send before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a session ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The client is shutting down.
    Shutdown,
    /// The server said goodbye; reconnect after this hint (plus jitter).
    Goodbye(Duration),
    /// The server closed the connection because the SDK key is not (or no longer) valid
    /// (close code 1008).
    Rejected,
    /// The connection broke, was closed, or went silent. `heard` says whether the server
    /// sent anything at all, which decides whether the backoff starts over.
    Lost {
        /// True if at least one frame arrived from the server.
        heard: bool,
    },
}

/// Runs one connection until it ends.
pub(crate) async fn run<S>(
    ws: S,
    shared: &Shared,
    interval: Duration,
    shutdown: &CancellationToken,
) -> SessionEnd
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let mut session = Session {
        ws,
        shared,
        heartbeat: Heartbeat::new(interval, Instant::now()),
        heard: false,
        confirm_pending: false,
        last_resync: None,
        telemetry: None,
    };
    match session.run(shutdown).await {
        Ok(end) => end,
        Err(error) => {
            tracing::info!(%error, "flagpole: connection lost");
            SessionEnd::Lost {
                heard: session.heard,
            }
        }
    }
}

struct Session<'a, S> {
    ws: S,
    shared: &'a Shared,
    heartbeat: Heartbeat,
    heard: bool,
    /// A ping was sent after a hello carrying a cached version; its pong means the server
    /// has seen the hello and sent any catch-up first, so the cache is current.
    confirm_pending: bool,
    /// When the last resync was sent: at most one per heartbeat interval, so a burst of
    /// patches after a gap does not turn into a burst of resyncs.
    last_resync: Option<Instant>,
    /// Telemetry batches to send, when this connection's upgrade announced them.
    telemetry: Option<Attached<'a>>,
}

impl<S> Session<'_, S>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    async fn run(&mut self, shutdown: &CancellationToken) -> Result<SessionEnd, WsError> {
        let held = self.shared.held().map(|env| env.version);
        self.send(&ClientMessage::Hello {
            sdk: SDK_NAME.to_owned(),
            version: held,
        })
        .await?;
        if held.is_some() && self.shared.status().source == Source::Cache {
            self.send(&ClientMessage::Ping).await?;
            self.confirm_pending = true;
        }
        self.telemetry = self.shared.telemetry.uplink.attach();
        let interval = self.heartbeat.interval();
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Created once, not per frame: a new timer and a new cancellation waiter on every
        // message were a tenth of an SDK's CPU per applied change. The silence timer is
        // only moved when it fires early, i.e. something was heard since it was set.
        let cancelled = shutdown.cancelled();
        let silence = tokio::time::sleep_until(self.heartbeat.deadline());
        tokio::pin!(cancelled, silence);
        loop {
            tokio::select! {
                biased;
                () = &mut cancelled => {
                    self.close(CloseCode::Normal, "client closing").await;
                    return Ok(SessionEnd::Shutdown);
                }
                frame = self.ws.next() => {
                    let Some(frame) = frame else {
                        return Ok(SessionEnd::Lost { heard: self.heard });
                    };
                    self.heartbeat.heard(Instant::now());
                    self.heard = true;
                    if let Some(end) = self.on_frame(frame?).await? {
                        return Ok(end);
                    }
                }
                _ = ping.tick() => self.send(&ClientMessage::Ping).await?,
                Some(batch) = next_batch(&mut self.telemetry) => {
                    self.ws.send(Message::text(batch)).await?;
                }
                () = &mut silence => {
                    let deadline = self.heartbeat.deadline();
                    if deadline > Instant::now() {
                        silence.as_mut().reset(deadline);
                        continue;
                    }
                    tracing::warn!("flagpole: no frame from the server for two heartbeat intervals; reconnecting");
                    self.close(CloseCode::from(close_code::TIMEOUT), "heartbeat timeout").await;
                    return Ok(SessionEnd::Lost { heard: self.heard });
                }
            }
        }
    }

    async fn on_frame(&mut self, frame: Message) -> Result<Option<SessionEnd>, WsError> {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(frame) => {
                if frame
                    .as_ref()
                    .is_some_and(|f| u16::from(f.code) == close_code::POLICY)
                {
                    tracing::warn!(?frame, "flagpole: {}", crate::KEY_REJECTED);
                    return Ok(Some(SessionEnd::Rejected));
                }
                tracing::info!(?frame, "flagpole: server closed the connection");
                return Ok(Some(SessionEnd::Lost { heard: self.heard }));
            }
            // WebSocket-level pings are answered by tungstenite; binary frames are not
            // part of the protocol.
            _ => return Ok(None),
        };
        let message: ServerMessage = match serde_json::from_str(text.as_str()) {
            Ok(message) => message,
            Err(error) => {
                // Most likely a message type from a newer server: skip it, stay connected.
                tracing::debug!(%error, "flagpole: ignoring unrecognised message");
                return Ok(None);
            }
        };
        match message {
            ServerMessage::Snapshot { environment } => {
                let held = self.shared.held();
                let from_cache = self.shared.status().source == Source::Cache;
                let step = sync::on_snapshot(held.as_deref(), environment, from_cache);
                self.step(step).await?;
            }
            ServerMessage::Patch(patch) => {
                let step = {
                    let held = self.shared.state.load();
                    sync::on_patch(held.env.as_deref(), &held.snapshot, patch)
                };
                self.step(step).await?;
            }
            ServerMessage::Ping => self.send(&ClientMessage::Pong).await?,
            ServerMessage::Pong => {
                if std::mem::take(&mut self.confirm_pending) {
                    self.shared.confirm();
                }
            }
            ServerMessage::Goodbye {
                reason,
                reconnect_after_ms,
            } => {
                tracing::info!(%reason, reconnect_after_ms, "flagpole: server said goodbye");
                return Ok(Some(SessionEnd::Goodbye(Duration::from_millis(
                    reconnect_after_ms,
                ))));
            }
            ServerMessage::TelemetryAck { id } => self.answer(&id, Reply::Ack),
            ServerMessage::TelemetryNack {
                id,
                code,
                message,
                retry_after_ms,
            } => self.answer(
                &id,
                Reply::Nack {
                    code,
                    message,
                    retry_after_ms,
                },
            ),
            ServerMessage::Error { code, message } => {
                tracing::warn!(%code, %message, "flagpole: server reported an error");
            }
        }
        Ok(None)
    }

    async fn step(&mut self, step: Step) -> Result<(), WsError> {
        match step {
            Step::Publish(env) => {
                self.shared.publish(env, Source::Server);
                self.last_resync = None;
                self.confirm_pending = false;
            }
            Step::Ignore => {}
            Step::Resync => {
                let now = Instant::now();
                let recent = self
                    .last_resync
                    .is_some_and(|at| now.duration_since(at) < self.heartbeat.interval());
                if !recent {
                    self.last_resync = Some(now);
                    let version = self.shared.held().map(|env| env.version);
                    self.send(&ClientMessage::Resync { version }).await?;
                }
            }
        }
        Ok(())
    }

    fn answer(&mut self, id: &str, reply: Reply) {
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.answer(id, reply);
        }
    }

    async fn send(&mut self, message: &ClientMessage) -> Result<(), WsError> {
        let text = serde_json::to_string(message).expect("client messages always serialise");
        self.ws.send(Message::text(text)).await
    }

    /// Best effort: the connection is being abandoned either way.
    async fn close(&mut self, code: CloseCode, reason: &'static str) {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.send(frame)).await;
    }
}

/// The next telemetry frame, or never on a connection without telemetry.
async fn next_batch(telemetry: &mut Option<Attached<'_>>) -> Option<String> {
    match telemetry {
        Some(attached) => attached.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
