//! The telemetry task: every 10 s (±20%), or when 1,000 items wait, it collects counts,
//! exposures and events into batches and delivers them, oldest first; on close it makes a
//! last attempt within a hard deadline.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use flagpole_core::wire::{MAX_BATCH_BYTES, MAX_CLIENT_FRAME, TelemetryBatch};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::counts::CountSource;
use super::http::EventsEndpoint;
use super::uplink::{Frame, Reply};
use super::{Outcome, Recorder, Settings, now_ms};
use crate::backoff;
use crate::shared::Shared;

/// How long a delivery may take outside of `close()`: connect, send, answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server without the telemetry endpoint (404/405) is left alone: long
/// enough not to load an older server (or fill its logs) with requests it cannot take,
/// short enough to find the endpoint soon after an upgrade.
const UNSUPPORTED_BACKOFF: Duration = Duration::from_secs(600);

/// Room for `{"type":"telemetry","batch":…}` around a batch in a stream frame.
const ENVELOPE: usize = 64;

/// The largest batch that fits in one client frame on the stream.
pub(crate) const STREAM_BATCH_BYTES: usize = if MAX_CLIENT_FRAME - ENVELOPE < MAX_BATCH_BYTES {
    MAX_CLIENT_FRAME - ENVELOPE
} else {
    MAX_BATCH_BYTES
};

/// A batch as a stream message, serialised without copying the batch into a
/// `ClientMessage` (the tests decode it as one).
#[derive(Serialize)]
#[serde(tag = "type", rename = "telemetry")]
struct StreamMessage<'a> {
    batch: &'a TelemetryBatch,
}

pub(crate) struct Task<C> {
    pub(crate) settings: Settings,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) counts: C,
    pub(crate) shared: Arc<Shared>,
    pub(crate) http: EventsEndpoint,
    pub(crate) outbox: super::batch::Outbox,
    /// Start of the counting window not yet collected.
    pub(crate) window_start_ms: i64,
    /// The server said 401 to a delivery sent during stream connection N (the count in
    /// [`super::Hooks::connections`]): nothing is sent until connection N + 1. Counting
    /// connections, rather than watching the status go down and up, holds however late
    /// the 401's answer is handled relative to the reconnection.
    pub(crate) paused: Option<u64>,
    /// The server said busy: nothing is sent before this.
    pub(crate) not_before: Option<Instant>,
    /// The server has no telemetry endpoint: nothing is posted before this.
    pub(crate) unsupported_until: Option<Instant>,
    /// That was logged as a warning once; later refusals are logged at debug level.
    pub(crate) warned_unsupported: bool,
}

impl<C: CountSource> Task<C> {
    /// Runs until `stop` (close) or `shutdown` (the last handle dropped), then flushes once
    /// more within the close deadline.
    pub(crate) async fn run(mut self, stop: CancellationToken, shutdown: CancellationToken) {
        let mut connections = self.shared.telemetry.connections.subscribe();
        let interval = self.settings.flush_interval;
        let close_deadline = self.settings.close_deadline;
        loop {
            let delay = backoff::jitter(interval * 4 / 5, interval * 2 / 5);
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
                () = self.recorder.flush.notified() => {}
                Ok(()) = connections.changed(), if self.paused.is_some() => {
                    let now = *connections.borrow_and_update();
                    if self.paused.is_some_and(|refused_in| now > refused_in) {
                        tracing::info!("flagpole: the stream reconnected; sending telemetry again");
                        self.paused = None;
                    }
                    continue;
                }
            }
            let (finished, deadline) = {
                let flush = self.flush(false);
                tokio::pin!(flush);
                let deadline = tokio::select! {
                    biased;
                    () = &mut flush => continue,
                    () = stop.cancelled() => Instant::now() + close_deadline,
                    () = shutdown.cancelled() => Instant::now() + close_deadline,
                };
                // Stopped mid-delivery: let that delivery finish (an answer on its way
                // saves sending the batch again), within the close deadline.
                let finished = tokio::time::timeout_at(deadline, flush).await.is_ok();
                (finished, deadline)
            };
            if finished {
                self.final_flush(deadline).await;
            }
            return;
        }
        let deadline = Instant::now() + close_deadline;
        self.final_flush(deadline).await;
    }

    /// What is left, delivered before `deadline` or dropped.
    async fn final_flush(&mut self, deadline: Instant) {
        if tokio::time::timeout_at(deadline, self.flush(true))
            .await
            .is_err()
        {
            tracing::warn!(
                waiting = self.outbox.len(),
                "flagpole: telemetry not delivered before the close deadline; dropped"
            );
        }
    }

    /// Collects what accumulated and delivers the waiting batches, oldest first, until one
    /// is not stored.
    pub(crate) async fn flush(&mut self, closing: bool) {
        let now = now_ms();
        let mut counts = Vec::new();
        self.counts.drain(self.window_start_ms, now, &mut counts);
        let outcomes_start_ms = self.window_start_ms;
        self.window_start_ms = now;
        let taken = self.recorder.buffer().take();
        let max_bytes = if *self.shared.telemetry.uplink.watch().borrow() {
            STREAM_BATCH_BYTES
        } else {
            MAX_BATCH_BYTES
        };
        self.outbox.fill(counts, taken, max_bytes);
        let outcomes = self.recorder.outcomes.drain(outcomes_start_ms, now);
        self.outbox.fill_outcomes(outcomes, max_bytes);
        if let Some(refused_in) = self.paused {
            if *self.shared.telemetry.connections.borrow() <= refused_in {
                return;
            }
            self.paused = None;
        }
        if !closing && self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        // Not at close either: the answer would be another 404, after a connection that
        // only delays `close`. The stream, once a server announces it there, is used at
        // once (`deliver` prefers it).
        if self.unsupported_until.is_some_and(|t| Instant::now() < t)
            && !*self.shared.telemetry.uplink.watch().borrow()
        {
            return;
        }
        self.not_before = None;
        while let Some(front) = self.outbox.front_mut() {
            // Sealed before sending: if this future is dropped mid-delivery (close), the
            // batch may have been stored and must not change.
            let was_sealed = std::mem::replace(&mut front.sealed, true);
            let connection = *self.shared.telemetry.connections.borrow();
            let outcome = deliver(&self.shared, &self.http, &front.batch).await;
            match outcome {
                Outcome::Stored => {
                    self.unsupported_until = None;
                    let done = self.outbox.pop().expect("the front");
                    let mut buffer = self.recorder.buffer();
                    buffer.release(done.held_items, done.held_bytes);
                    if done.batch.dropped > 0 {
                        buffer.reported();
                    }
                }
                Outcome::Busy(after) => {
                    self.outbox.set_front_sealed(was_sealed);
                    tracing::debug!(
                        ?after,
                        "flagpole: the server is busy; telemetry retried later"
                    );
                    self.not_before = Some(Instant::now() + after);
                    return;
                }
                Outcome::TooLarge => {
                    if let Some(one) = self.outbox.split_front() {
                        tracing::warn!(
                            id = %one.batch.id,
                            "flagpole: a telemetry item is too large for the server; dropped"
                        );
                        self.recorder
                            .buffer()
                            .release(one.held_items, one.held_bytes);
                    }
                }
                Outcome::Invalid(message) => {
                    let done = self.outbox.pop().expect("the front");
                    tracing::warn!(id = %done.batch.id, %message, "flagpole: the server refused a telemetry batch; dropped");
                    self.recorder
                        .buffer()
                        .release(done.held_items, done.held_bytes);
                }
                Outcome::Unauthorized => {
                    self.outbox.set_front_sealed(was_sealed);
                    tracing::warn!(
                        "flagpole: the server rejected the SDK key for telemetry; paused until the stream reconnects"
                    );
                    self.paused = Some(connection);
                    return;
                }
                Outcome::Unsupported(status) => {
                    // Not stored: the batch stays as it was (open ones take later counts,
                    // within the buffer's bounds) until the server is asked again.
                    self.outbox.set_front_sealed(was_sealed);
                    self.unsupported_until = Some(Instant::now() + UNSUPPORTED_BACKOFF);
                    if std::mem::replace(&mut self.warned_unsupported, true) {
                        tracing::debug!(%status, "flagpole: the server still does not take telemetry");
                    } else {
                        tracing::warn!(
                            %status,
                            "flagpole: the server does not take telemetry (older than this SDK?); \
                             asking again every {} minutes, counts kept meanwhile",
                            UNSUPPORTED_BACKOFF.as_secs() / 60
                        );
                    }
                    return;
                }
                Outcome::NotSent(error) => {
                    self.outbox.set_front_sealed(was_sealed);
                    tracing::debug!(%error, "flagpole: telemetry not sent; retried at the next flush");
                    return;
                }
                Outcome::NoAnswer(error) => {
                    tracing::debug!(%error, "flagpole: no answer to a telemetry batch; it is resent as it is");
                    return;
                }
            }
        }
    }
}

/// Delivers one batch: on the stream when the connection announced telemetry and the
/// batch fits in a frame, else over HTTP.
async fn deliver(shared: &Shared, http: &EventsEndpoint, batch: &TelemetryBatch) -> Outcome {
    let uplink = &shared.telemetry.uplink;
    if *uplink.watch().borrow() {
        let text = serde_json::to_string(&StreamMessage { batch })
            .expect("telemetry batches always serialise");
        if text.len() <= MAX_CLIENT_FRAME {
            let (reply, answer) = oneshot::channel();
            let frame = Frame {
                id: batch.id.clone(),
                text,
                reply,
            };
            // Not handed over means the session ended meanwhile: HTTP then. Bounded too:
            // a session ending while the channel is full would leave the send waiting
            // for the next connection.
            let handed = tokio::time::timeout(SEND_TIMEOUT, uplink.send(frame)).await;
            if matches!(handed, Ok(Ok(()))) {
                return match tokio::time::timeout(SEND_TIMEOUT, answer).await {
                    Ok(Ok(Reply::Ack)) => Outcome::Stored,
                    Ok(Ok(Reply::Nack {
                        code,
                        message,
                        retry_after_ms,
                    })) => match code.as_str() {
                        "busy" => {
                            Outcome::Busy(Duration::from_millis(retry_after_ms.unwrap_or(10_000)))
                        }
                        "too_large" => Outcome::TooLarge,
                        "invalid_batch" => Outcome::Invalid(message),
                        _ => Outcome::NoAnswer(format!("{code}: {message}")),
                    },
                    Ok(Err(_)) => Outcome::NoAnswer("the stream ended before the answer".into()),
                    Err(_) => Outcome::NoAnswer("no answer on the stream".into()),
                };
            }
        }
    }
    let body = Bytes::from(serde_json::to_vec(batch).expect("telemetry batches always serialise"));
    let written = AtomicBool::new(false);
    match tokio::time::timeout(SEND_TIMEOUT, http.post(body, &written)).await {
        Ok(outcome) => outcome,
        Err(_) if written.load(std::sync::atomic::Ordering::Relaxed) => {
            Outcome::NoAnswer("no answer in time".into())
        }
        Err(_) => Outcome::NotSent("could not connect in time".into()),
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
