//! Telemetry on the stream (docs/protocol.md, "Telemetry"): a connection hands each
//! `telemetry` frame's batch to the ingestion queue and answers `telemetry_ack` once it is
//! stored, or `telemetry_nack` at once when it is invalid or the queue is full. Answers
//! wait in the connection's `select!` beside patches, so a slow commit never holds up
//! what the connection pushes.

use std::future::Future;
use std::pin::Pin;

use flagpole_core::wire::{ServerMessage, TelemetryBatch};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::hub::encode;
use crate::db::now_ms;
use crate::ingest::{Ingest, RETRY_AFTER, Refused, check_storable};

/// Batches one connection may have waiting for their commit; more are refused as busy
/// (an SDK sends one at a time and waits for its answer).
const MAX_PENDING: usize = 16;

type Answer = Pin<Box<dyn Future<Output = Utf8Bytes> + Send>>;

/// One connection's way into ingestion.
pub(crate) struct Reports {
    ingest: Ingest,
    environment_id: i64,
    pending: FuturesUnordered<Answer>,
}

impl Reports {
    /// Batches go to `ingest`, for environment `environment_id`.
    pub(crate) fn new(ingest: Ingest, environment_id: i64) -> Reports {
        Reports {
            ingest,
            environment_id,
            pending: FuturesUnordered::new(),
        }
    }

    /// Takes a batch that arrived in a frame of `bytes` bytes; returns the nack to send at
    /// once, or `None` when the answer will come from [`Reports::next_answer`].
    pub(crate) fn take(&mut self, batch: TelemetryBatch, bytes: usize) -> Option<Utf8Bytes> {
        let id = batch.id.clone();
        if let Err(error) = batch
            .validate(now_ms())
            .and_then(|()| check_storable(&batch))
        {
            let code = if error.too_large {
                "too_large"
            } else {
                "invalid_batch"
            };
            return Some(nack(id, code, error.to_string(), false));
        }
        if self.pending.len() >= MAX_PENDING {
            return Some(busy(id, "too many batches waiting on this connection"));
        }
        match self.ingest.submit(self.environment_id, batch, bytes) {
            Ok(receipt) => {
                self.pending.push(Box::pin(async move {
                    match receipt.await {
                        Ok(Ok(_)) => encode(&ServerMessage::TelemetryAck { id }),
                        Ok(Err(Refused::Failed)) => {
                            nack(id, "invalid_batch", Refused::Failed.to_string(), false)
                        }
                        Ok(Err(refused)) => busy(id, &refused.to_string()),
                        // The writer dropped it unanswered: it stopped.
                        Err(_) => busy(id, &Refused::Stopping.to_string()),
                    }
                }));
                None
            }
            Err(refused) => Some(busy(id, &refused.to_string())),
        }
    }

    /// True while an answer is awaited.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next answer to send (pending forever when none is awaited).
    pub(crate) async fn next_answer(&mut self) -> Utf8Bytes {
        match self.pending.next().await {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

fn busy(id: String, message: &str) -> Utf8Bytes {
    nack(id, "busy", message.to_owned(), true)
}

fn nack(id: String, code: &str, message: String, retry: bool) -> Utf8Bytes {
    let retry_after_ms = retry.then(|| u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(1000));
    encode(&ServerMessage::TelemetryNack {
        id,
        code: code.to_owned(),
        message,
        retry_after_ms,
    })
}
