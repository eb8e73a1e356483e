//! One SDK connection: a `select!` over {shutdown, environment deleted, liveness deadline,
//! incoming frame, outgoing patch, heartbeat tick} (docs/protocol.md).
//!
//! Written against `Sink`/`Stream` of tungstenite `Message`s rather than a socket, so the
//! whole protocol logic is unit-tested with in-memory channels and a paused clock.
//! (tungstenite's own types rather than axum's: only they can send a message as several
//! frames, see [`FRAGMENT`].)
//!
//! The connection tracks `held`, the version the client holds. A patch is forwarded only
//! if it starts at `held`; anything else (a gap after lagging, a client that came from a
//! replica ahead of this one) goes back to the hub for the patches or snapshot that reach
//! the hub's version from `held`. So a client never skips a version and never goes back.

use std::sync::Arc;
use std::time::Duration;

use flagpole_core::wire::{ClientMessage, ServerMessage, close_code};
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::hub::{CatchUp, EnvHub, PatchFrame, encode};
use super::reports::Reports;
use super::source::Source;

const PING: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"ping"}"#);
const PONG: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"pong"}"#);
/// How long closing (and saying goodbye) may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Messages longer than this (snapshots of large environments) go out as a text frame and
/// continuation frames of at most this size. tungstenite copies each frame into the
/// connection's write buffer and keeps that buffer at its largest size for the life of
/// the connection: sent whole, a 60 KiB snapshot left every idle connection holding 60 KiB.
/// Every WebSocket client reassembles fragments (RFC 6455 §5.4).
pub(crate) const FRAGMENT: usize = 2 * 1024;

/// Per-connection settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Server ping interval; silence for two of them closes the connection (4000).
    pub(crate) heartbeat: Duration,
    /// The goodbye's reconnect hint.
    pub(crate) reconnect_after_ms: u64,
}

impl Settings {
    fn liveness(&self) -> Duration {
        self.heartbeat * 2
    }

    /// A send that cannot complete in this long means the client stopped reading: it is
    /// closed (4001) rather than allowed to hold anything up.
    fn write_timeout(&self) -> Duration {
        self.heartbeat * 2
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client closed or went away.
    ClientClosed,
    /// The socket failed.
    Broken,
    /// Server shutdown: goodbye, then 1001.
    Shutdown,
    /// No frame for two heartbeat intervals: 4000.
    HeartbeatTimeout,
    /// Not a client message: error, then 1003.
    Malformed,
    /// A frame over the limit: error, then 1009.
    TooBig,
    /// The client did not read fast enough: 4001.
    TooSlow,
    /// The environment was deleted: 1008.
    EnvironmentGone,
    /// The SDK key was revoked: 1008.
    KeyRevoked,
}

/// Runs one connection until it ends (at the latest when `shutdown` or `revoked` fires);
/// `source` is asked only about a client that claims a version this replica has not seen
/// yet (without it the claim is trusted). Telemetry frames go to `reports`; without it
/// (the upgrade did not announce telemetry) one is a protocol error.
pub(crate) async fn serve<S>(
    socket: S,
    hub: Arc<EnvHub>,
    source: Option<Source>,
    reports: Option<Reports>,
    settings: Settings,
    shutdown: CancellationToken,
    revoked: CancellationToken,
) -> End
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    metrics::gauge!("stream_connections").increment(1.0);
    let updates = hub.subscribe();
    let mut conn = Connection {
        socket,
        hub,
        source,
        reports,
        updates,
        held: None,
        greeted: false,
        mid_message: false,
        settings,
        shutdown,
        revoked,
        patches_sent: metrics::counter!("stream_messages_sent_total", "type" => "patch"),
        fanout: metrics::histogram!("stream_fanout_seconds"),
    };
    let end = conn.run().await;
    conn.finish(end).await;
    metrics::gauge!("stream_connections").decrement(1.0);
    metrics::counter!("stream_disconnects_total", "reason" => end.label()).increment(1);
    end
}

struct Connection<S> {
    socket: S,
    hub: Arc<EnvHub>,
    source: Option<Source>,
    reports: Option<Reports>,
    updates: Receiver<Arc<PatchFrame>>,
    /// The version the client holds, as far as we know.
    held: Option<u64>,
    /// Patches flow only after the client's hello said what it holds.
    greeted: bool,
    /// Part of a fragmented message is out and the rest is not: no other data frame may
    /// follow until it is finished (RFC 6455 §5.4), so ending now sends only the close.
    mid_message: bool,
    settings: Settings,
    shutdown: CancellationToken,
    revoked: CancellationToken,
    /// Handles for the per-patch metrics, looked up once: the macros hash their names and
    /// labels into the registry on every call, and this runs for every connection on
    /// every change.
    patches_sent: metrics::Counter,
    fanout: metrics::Histogram,
}

type Step = Result<(), End>;

impl<S> Connection<S>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    async fn run(&mut self) -> End {
        let heartbeat = self.settings.heartbeat;
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let deadline = tokio::time::sleep(self.settings.liveness());
        // The cancellation waits are made once, not per message: registering and dropping
        // three waiters on every patch sent showed in the server's profile.
        let (shutdown, closed, revoked) = (
            self.shutdown.clone(),
            self.hub.closed.clone(),
            self.revoked.clone(),
        );
        let (shutdown, closed, revoked) = (
            shutdown.cancelled(),
            closed.cancelled(),
            revoked.cancelled(),
        );
        tokio::pin!(deadline, shutdown, closed, revoked);
        loop {
            let step = tokio::select! {
                biased;
                () = &mut shutdown => Err(End::Shutdown),
                () = &mut closed => Err(End::EnvironmentGone),
                () = &mut revoked => Err(End::KeyRevoked),
                () = &mut deadline => Err(End::HeartbeatTimeout),
                incoming = self.socket.next() => {
                    // Any frame is a sign of life.
                    deadline.as_mut().reset(Instant::now() + self.settings.liveness());
                    self.on_incoming(incoming).await
                }
                update = self.updates.recv(), if self.greeted => self.on_update(update).await,
                answer = next_answer(&mut self.reports), if self.awaits_answers() => {
                    self.send(answer, "telemetry_answer").await
                }
                _ = ping.tick() => self.send(PING.clone(), "ping").await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_incoming(&mut self, incoming: Option<Result<Message, WsError>>) -> Step {
        let text = match incoming {
            None | Some(Ok(Message::Close(_))) => return Err(End::ClientClosed),
            Some(Err(error)) if is_too_big(&error) => return Err(End::TooBig),
            Some(Err(_)) => return Err(End::Broken),
            // Raw frames are never read (tungstenite reassembles them into messages).
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => return Ok(()),
            Some(Ok(Message::Binary(_))) => {
                return self.malformed("expected text frames holding JSON").await;
            }
            Some(Ok(Message::Text(text))) => text,
        };
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Hello { version, .. } | ClientMessage::Resync { version }) => {
                self.greeted = true;
                self.held = version;
                self.sync().await
            }
            Ok(ClientMessage::Ping) => self.send(PONG.clone(), "pong").await,
            Ok(ClientMessage::Pong) => Ok(()),
            Ok(ClientMessage::Telemetry { batch }) => match self.reports.as_mut() {
                Some(reports) => match reports.take(batch, text.len()) {
                    Some(nack) => self.send(nack, "telemetry_answer").await,
                    None => Ok(()),
                },
                // Not announced on the upgrade (`wire::TELEMETRY_HEADER`), so an SDK sends
                // its batches over HTTP; one that sends them here anyway is broken.
                None => {
                    self.malformed("this server does not take telemetry on the stream")
                        .await
                }
            },
            Err(error) => self.malformed(&error.to_string()).await,
        }
    }

    fn awaits_answers(&self) -> bool {
        self.reports.as_ref().is_some_and(Reports::has_pending)
    }

    async fn malformed(&mut self, detail: &str) -> Step {
        let message = format!("not a valid client message: {detail}");
        let _ = self
            .send(error_frame("malformed_message", &message), "error")
            .await;
        Err(End::Malformed)
    }

    async fn on_update(&mut self, update: Result<Arc<PatchFrame>, RecvError>) -> Step {
        match update {
            Ok(frame) => self.forward(&frame).await,
            // Fell more than the ring behind while its socket was slow: catch up from the
            // ring if it still can, else a snapshot. Never a silent gap.
            Err(RecvError::Lagged(_)) => {
                metrics::counter!("stream_resyncs_total", "cause" => "lagged").increment(1);
                self.sync().await
            }
            // The hub (which owns the sender) outlives every connection holding it.
            Err(RecvError::Closed) => Err(End::EnvironmentGone),
        }
    }

    /// Sends a patch if it starts at the client's version; on a gap, catches up instead.
    async fn forward(&mut self, frame: &PatchFrame) -> Step {
        let Some(held) = self.held else {
            return self.sync().await;
        };
        if frame.to <= held {
            return Ok(());
        }
        if frame.from != held {
            metrics::counter!("stream_resyncs_total", "cause" => "gap").increment(1);
            return self.sync().await;
        }
        // Patches are small: one frame, no fragment check (this runs for every connection
        // on every change).
        self.write(Message::Text(frame.text.clone())).await?;
        self.patches_sent.increment(1);
        self.held = Some(frame.to);
        self.fanout.record(frame.published.elapsed().as_secs_f64());
        Ok(())
    }

    /// Brings the client from `held` to the hub's version.
    async fn sync(&mut self) -> Step {
        match self.hub.catch_up(self.held) {
            CatchUp::Current => Ok(()),
            CatchUp::Patches(frames) => {
                for frame in frames {
                    let held = self.held.unwrap_or(0);
                    if frame.to <= held {
                        continue;
                    }
                    // The ring is contiguous from `held`; a mismatch would be a bug, and a
                    // snapshot is the safe answer to it.
                    if frame.from != held {
                        return self.send_snapshot().await;
                    }
                    self.send(frame.text.clone(), "patch").await?;
                    self.held = Some(frame.to);
                }
                Ok(())
            }
            CatchUp::Snapshot(snapshot) => {
                self.send(snapshot.text.clone(), "snapshot").await?;
                self.held = Some(snapshot.version);
                Ok(())
            }
            CatchUp::Ahead { hub } => self.ahead(hub).await,
        }
    }

    async fn send_snapshot(&mut self) -> Step {
        if let Some(snapshot) = self.hub.snapshot() {
            self.send(snapshot.text.clone(), "snapshot").await?;
            self.held = Some(snapshot.version);
        }
        Ok(())
    }

    /// The client holds a version newer than this replica's hub (it was connected to a
    /// replica that heard of a change first). If the database has it, the hub is poked and
    /// the client waits for the patch that passes its version; otherwise its version is
    /// not from this database and it gets the current snapshot.
    async fn ahead(&mut self, hub: u64) -> Step {
        let Some(held) = self.held else {
            return Ok(());
        };
        let Some(source) = &self.source else {
            self.hub.poke(Some(held));
            return Ok(());
        };
        match source.version(self.hub.environment_id).await {
            Ok(version) => match version {
                Some(current) if current >= held => {
                    self.hub.poke(Some(current));
                    Ok(())
                }
                _ => {
                    tracing::info!(
                        environment_id = self.hub.environment_id,
                        held,
                        hub,
                        "client holds a version this database never had; sending a snapshot"
                    );
                    self.send_snapshot().await
                }
            },
            // Cannot tell: the client keeps what it has; the periodic check will move the
            // hub and the next patch resolves it.
            Err(error) => {
                tracing::warn!(%error, "checking a client's version failed");
                self.hub.poke(None);
                Ok(())
            }
        }
    }

    /// Sends one text message and counts it under `kind`.
    async fn send(&mut self, text: Utf8Bytes, kind: &'static str) -> Step {
        if text.len() > FRAGMENT {
            self.mid_message = true;
            for frame in fragments(&text) {
                self.write(Message::Frame(frame)).await?;
            }
            self.mid_message = false;
        } else {
            self.write(Message::Text(text)).await?;
        }
        metrics::counter!("stream_messages_sent_total", "type" => kind).increment(1);
        Ok(())
    }

    /// Sends one message; gives up (4001) if the client does not take it in time, and
    /// stops at once if the server shuts down meanwhile. The timer and the shutdown wait
    /// are only set up when the socket does not take the message at once: almost always
    /// it does, and this runs for every connection on every change.
    async fn write(&mut self, message: Message) -> Step {
        let mut write = self.socket.send(message);
        let result = match (&mut write).now_or_never() {
            Some(result) => Ok(result),
            None => {
                let write = tokio::time::timeout(self.settings.write_timeout(), write);
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => return Err(End::Shutdown),
                    result = write => result,
                }
            }
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Broken),
            Err(_) => Err(End::TooSlow),
        }
    }

    /// Says why the connection ends (as the protocol wants) and closes it.
    async fn finish(&mut self, end: End) {
        let (code, reason) = match end {
            End::ClientClosed => {
                // Flushes the reply to the client's close frame.
                let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.close()).await;
                return;
            }
            End::Broken => return,
            End::Shutdown => {
                let goodbye = encode(&ServerMessage::Goodbye {
                    reason: "shutdown".into(),
                    reconnect_after_ms: self.settings.reconnect_after_ms,
                });
                self.send_quickly(goodbye).await;
                (close_code::GOING_AWAY, "server shutting down")
            }
            End::HeartbeatTimeout => (close_code::TIMEOUT, "heartbeat timeout"),
            End::Malformed => (close_code::UNSUPPORTED, "malformed message"),
            End::TooBig => {
                let message = format!(
                    "frames are limited to {} bytes",
                    flagpole_core::wire::MAX_CLIENT_FRAME
                );
                self.send_quickly(error_frame("frame_too_large", &message))
                    .await;
                (close_code::TOO_BIG, "frame too large")
            }
            End::TooSlow => (close_code::TOO_SLOW, "too slow; reconnect"),
            End::EnvironmentGone => (close_code::POLICY, "environment deleted"),
            End::KeyRevoked => (close_code::POLICY, "SDK key revoked"),
        };
        let close = Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: Utf8Bytes::from_static(reason),
        }));
        let sent = tokio::time::timeout(CLOSE_GRACE, self.socket.send(close)).await;
        // After an oversized frame nothing more is read: the reader would go on buffering
        // that frame's payload.
        if end != End::TooBig && sent.is_ok_and(|r| r.is_ok()) {
            // Wait briefly for the client's close reply, so the close handshake completes
            // and the client sees our code rather than a reset.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(message)) = self.socket.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }

    /// A last message before the close, unless a fragmented message was cut off (a text
    /// frame now would break the framing; the close code says why on its own).
    async fn send_quickly(&mut self, text: Utf8Bytes) {
        if self.mid_message {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.send(Message::Text(text))).await;
    }
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::ClientClosed => "client_closed",
            End::Broken => "broken",
            End::Shutdown => "shutdown",
            End::HeartbeatTimeout => "heartbeat_timeout",
            End::Malformed => "malformed",
            End::TooBig => "too_big",
            End::TooSlow => "too_slow",
            End::EnvironmentGone => "environment_gone",
            End::KeyRevoked => "key_revoked",
        }
    }
}

/// The next telemetry answer of a connection (a function, so that the `select!` borrows
/// only this field of the connection).
async fn next_answer(reports: &mut Option<Reports>) -> Utf8Bytes {
    match reports {
        Some(reports) => reports.next_answer().await,
        None => std::future::pending().await,
    }
}

fn error_frame(code: &str, message: &str) -> Utf8Bytes {
    encode(&ServerMessage::Error {
        code: code.into(),
        message: message.into(),
    })
}

/// True for tungstenite's "message too long" read error (a frame or message over the limit).
fn is_too_big(error: &WsError) -> bool {
    matches!(
        error,
        WsError::Capacity(CapacityError::MessageTooLong { .. })
    )
}

/// `text` as one text frame and continuation frames of at most [`FRAGMENT`] bytes, each
/// cut at a character boundary, sharing `text`'s bytes (no copy until tungstenite writes
/// them).
pub(crate) fn fragments(text: &Utf8Bytes) -> Vec<Frame> {
    let bytes: &bytes::Bytes = text.as_ref();
    let mut frames = Vec::with_capacity(text.len() / FRAGMENT + 1);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + FRAGMENT).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let opcode = if start == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        frames.push(Frame::message(
            bytes.slice(start..end),
            opcode,
            end == text.len(),
        ));
        start = end;
    }
    frames
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
