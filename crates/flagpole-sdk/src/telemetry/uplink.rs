//! Telemetry on the stream: the hand-over between the telemetry task, which decides what
//! to send, and the session, which owns the WebSocket.
//!
//! The connection records whether the upgrade response announced
//! [`flagpole_core::wire::TELEMETRY_HEADER`]; only then does a session attach and carry
//! `telemetry` frames, so an older server never sees a message it does not know. The task
//! hands a frame over with a reply channel; the session sends it and answers the reply
//! when the server's `telemetry_ack`/`telemetry_nack` with that id arrives. A session that
//! ends drops the reply channels it holds, which the task reads as "no answer".

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot, watch};

/// A batch, encoded as a whole client message, on its way to the session.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The server's answer to one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Ack,
    Nack {
        code: String,
        message: String,
        retry_after_ms: Option<u64>,
    },
}

/// Shared by the connection (which sets `offered`), the session (which attaches) and the
/// telemetry task (which sends).
#[derive(Debug)]
pub(crate) struct Uplink {
    /// The last upgrade response announced telemetry on the stream. Written by the
    /// connection task just before it runs the session on that connection.
    offered: Arc<AtomicBool>,
    /// Whether a session is attached (watched by the telemetry task).
    attached: watch::Sender<bool>,
    tx: mpsc::Sender<Frame>,
    /// The receiving end, lent to the attached session and given back when it ends.
    rx: Mutex<Option<mpsc::Receiver<Frame>>>,
}

impl Default for Uplink {
    fn default() -> Self {
        // One frame in flight at a time: the task waits for each answer before the next.
        let (tx, rx) = mpsc::channel(1);
        Uplink {
            offered: Arc::new(AtomicBool::new(false)),
            attached: watch::Sender::new(false),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl Uplink {
    /// The flag the connection sets from each upgrade response.
    pub(crate) fn offered(&self) -> Arc<AtomicBool> {
        self.offered.clone()
    }

    /// For a session starting on a connection that announced telemetry: the frames to
    /// send. `None` on other connections (and if a session is already attached).
    pub(crate) fn attach(&self) -> Option<Attached<'_>> {
        if !self.offered.load(Ordering::Acquire) {
            return None;
        }
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        self.attached.send_replace(true);
        Some(Attached {
            uplink: self,
            rx: Some(rx),
            waiting: Vec::new(),
        })
    }

    /// Whether telemetry can go over the stream right now.
    pub(crate) fn watch(&self) -> watch::Receiver<bool> {
        self.attached.subscribe()
    }

    /// Hands a frame to the attached session; gives it back if none is attached.
    pub(crate) async fn send(&self, frame: Frame) -> Result<(), Frame> {
        if !*self.attached.borrow() {
            return Err(frame);
        }
        self.tx.send(frame).await.map_err(|e| e.0)
    }
}

/// A session's end of the uplink.
#[derive(Debug)]
pub(crate) struct Attached<'a> {
    uplink: &'a Uplink,
    rx: Option<mpsc::Receiver<Frame>>,
    /// Frames sent and not yet answered.
    waiting: Vec<(String, oneshot::Sender<Reply>)>,
}

impl Attached<'_> {
    /// The next frame to send; its reply is kept until the server answers.
    pub(crate) async fn next(&mut self) -> Option<String> {
        let rx = self.rx.as_mut()?;
        loop {
            let frame = rx.recv().await?;
            // A reply whose task gave up waiting is closed: that task sends the batch
            // again (same id), so a frame left over from an earlier session is skipped.
            self.waiting.retain(|(_, reply)| !reply.is_closed());
            if frame.reply.is_closed() {
                continue;
            }
            self.waiting.push((frame.id, frame.reply));
            return Some(frame.text);
        }
    }

    /// The server answered the batch `id`.
    pub(crate) fn answer(&mut self, id: &str, reply: Reply) {
        if let Some(i) = self.waiting.iter().position(|(waiting, _)| waiting == id) {
            let (_, tx) = self.waiting.swap_remove(i);
            let _ = tx.send(reply);
        } else {
            tracing::debug!(id, "flagpole: telemetry answer for a batch not waiting");
        }
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.uplink.attached.send_replace(false);
        // Frames still in the channel stay there for the next session; their senders
        // time out waiting and treat the batch as unanswered.
        if let Some(rx) = self.rx.take() {
            *self.uplink.rx.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
        }
    }
}
