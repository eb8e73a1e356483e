//! Ingestion of what SDKs report (docs/protocol.md, "Telemetry"), off the evaluation path.
//!
//! A validated batch is handed to [`Ingest::submit`], which queues it if the queue (bounded
//! in encoded bytes, `--telemetry-queue-bytes`) has room and refuses it as busy otherwise;
//! one writer loop ([`writer`]) takes everything queued, adds the counters of all of it
//! together ([`aggregate`]), writes it in one transaction with the batch ids, and only
//! then answers every batch of the group. So:
//! - an acknowledged batch is committed, whatever happens to this process afterwards;
//! - while the database cannot commit, the queue fills to its bound and further batches
//!   are refused (429 / `busy`), nothing acknowledged is lost and memory stays bounded;
//! - database writes follow the distinct counters per commit, not the number of SDKs.
//!
//! [`upkeep`] is the second loop: daily rollup, partitions ahead, retention.
//! [`own_counts`] is the third: it queues the server's own (OFREP) evaluation counts.

mod aggregate;
mod caps;
pub mod own_counts;
pub mod upkeep;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagpole_core::wire::{BatchError, TelemetryBatch};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::Db;
use crate::snapshots::SnapshotCache;

/// What an SDK is told to wait before retrying a refused batch.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A batch's fate once the writer has handled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Committed now.
    New,
    /// Its id was stored before: acknowledged, not counted again.
    Duplicate,
}

/// Why a batch was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue is full (or the database is not committing): retry after the hint.
    #[error("the telemetry queue is full; retry later")]
    Busy,
    /// The server is shutting down, or could not write before it had to stop.
    #[error("the server is shutting down; retry")]
    Stopping,
    /// Writing this batch failed for another reason (logged).
    #[error("the batch could not be stored")]
    Failed,
}

/// A queued batch.
struct Job {
    environment_id: i64,
    batch: TelemetryBatch,
    bytes: usize,
    done: oneshot::Sender<Result<Stored, Refused>>,
}

/// The ingestion queue and its writer. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    queue: mpsc::UnboundedSender<Job>,
    /// Taken by [`Ingest::start`]; std Mutex, only touched there.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// Encoded bytes of the batches queued or being written.
    queued: AtomicUsize,
    capacity: usize,
}

impl Ingest {
    /// An empty queue of `capacity` bytes; nothing is written until [`Ingest::start`].
    pub fn new(capacity: usize) -> Ingest {
        let (queue, receiver) = mpsc::unbounded_channel();
        Ingest {
            inner: Arc::new(Inner {
                queue,
                receiver: Mutex::new(Some(receiver)),
                queued: AtomicUsize::new(0),
                capacity,
            }),
        }
    }

    /// Starts the writer, upkeep and own-counts loops on `tasks`; all stop on `shutdown`,
    /// the writer last: after the own-counts loop has queued its final drain, and after
    /// writing what is queued. Called once; later calls do nothing.
    pub fn start(
        &self,
        db: &Db,
        snapshots: &SnapshotCache,
        config: &Config,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) {
        let receiver = self
            .inner
            .receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(receiver) = receiver else {
            return;
        };
        let writer = writer::Writer::new(
            db.clone(),
            snapshots.clone(),
            caps::Caps::new(config.telemetry_unknown_flags),
            self.clone(),
        );
        // Stopped by the own-counts loop once it has queued its last batches (or if it
        // ends any other way: the guard is dropped then too).
        let writer_stop = CancellationToken::new();
        tasks.spawn(writer.run(receiver, writer_stop.clone()));
        tasks.spawn(own_counts::run(
            snapshots.clone(),
            self.clone(),
            shutdown.clone(),
            writer_stop.drop_guard(),
        ));
        tasks.spawn(upkeep::run(
            db.clone(),
            upkeep::Settings::from_config(config),
            shutdown.clone(),
        ));
    }

    /// Queues a validated batch of `bytes` encoded bytes for environment `environment_id`;
    /// the receiver resolves once it is stored (or could not be). Refused at once, as
    /// [`Refused::Busy`], when the queue has no room for it.
    pub fn submit(
        &self,
        environment_id: i64,
        batch: TelemetryBatch,
        bytes: usize,
    ) -> Result<oneshot::Receiver<Result<Stored, Refused>>, Refused> {
        if !self.reserve(bytes) {
            metrics::counter!("telemetry_batches_refused_total", "cause" => "busy").increment(1);
            return Err(Refused::Busy);
        }
        self.enqueue(environment_id, batch, bytes)
    }

    /// [`Ingest::submit`] for the server's own counts, which are queued even when the
    /// queue is over its bound: refusing them would free no memory (they are held either
    /// way, bounded by their distinct keys), only lose them. Refused only when stopped.
    fn submit_own(
        &self,
        environment_id: i64,
        batch: TelemetryBatch,
        bytes: usize,
    ) -> Result<oneshot::Receiver<Result<Stored, Refused>>, Refused> {
        self.inner.queued.fetch_add(bytes, Ordering::AcqRel);
        self.enqueue(environment_id, batch, bytes)
    }

    /// Queues a batch whose `bytes` are reserved already.
    fn enqueue(
        &self,
        environment_id: i64,
        batch: TelemetryBatch,
        bytes: usize,
    ) -> Result<oneshot::Receiver<Result<Stored, Refused>>, Refused> {
        let (done, receipt) = oneshot::channel();
        let job = Job {
            environment_id,
            batch,
            bytes,
            done,
        };
        if self.inner.queue.send(job).is_err() {
            // The writer has stopped (shutdown).
            self.release(bytes);
            return Err(Refused::Stopping);
        }
        Ok(receipt)
    }

    /// Bytes queued or being written.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    fn reserve(&self, bytes: usize) -> bool {
        let capacity = self.inner.capacity;
        self.inner
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued.checked_add(bytes).filter(|total| *total <= capacity)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.inner.queued.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Checks what the database cannot store although the batch is valid JSON: a NUL
/// character in a name (Postgres text refuses it). Run after `TelemetryBatch::validate`.
pub fn check_storable(batch: &TelemetryBatch) -> Result<(), BatchError> {
    let nul = |field: String, value: &str| {
        if value.contains('\0') {
            Err(BatchError {
                field,
                message: "must not contain NUL characters".into(),
                too_large: false,
            })
        } else {
            Ok(())
        }
    };
    nul("sdk".into(), &batch.sdk)?;
    nul("app".into(), &batch.app)?;
    nul("app_version".into(), &batch.app_version)?;
    for (i, c) in batch.counts.iter().enumerate() {
        nul(format!("counts[{i}].flag"), &c.flag)?;
        nul(format!("counts[{i}].reason"), &c.reason)?;
        nul(
            format!("counts[{i}].variant"),
            c.variant.as_deref().unwrap_or(""),
        )?;
        nul(format!("counts[{i}].rule"), c.rule.as_deref().unwrap_or(""))?;
        nul(
            format!("counts[{i}].error"),
            c.error.as_deref().unwrap_or(""),
        )?;
    }
    for (i, e) in batch.exposures.iter().enumerate() {
        nul(format!("exposures[{i}].flag"), &e.flag)?;
        nul(format!("exposures[{i}].variant"), &e.variant)?;
        nul(format!("exposures[{i}].context_key"), &e.context_key)?;
    }
    for (i, e) in batch.events.iter().enumerate() {
        nul(format!("events[{i}].name"), &e.name)?;
        nul(format!("events[{i}].context_key"), &e.context_key)?;
    }
    for (i, o) in batch.outcomes.iter().enumerate() {
        nul(format!("outcomes[{i}].flag"), &o.flag)?;
        nul(format!("outcomes[{i}].variant"), &o.variant)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_refuses_what_does_not_fit_and_frees_what_was_written() {
        let ingest = Ingest::new(100);
        let _a = ingest.submit(1, TelemetryBatch::default(), 60).unwrap();
        assert_eq!(
            ingest.submit(1, TelemetryBatch::default(), 50).unwrap_err(),
            Refused::Busy
        );
        let _b = ingest.submit(1, TelemetryBatch::default(), 40).unwrap();
        assert_eq!(ingest.queued_bytes(), 100);
        ingest.release(60);
        assert!(ingest.submit(1, TelemetryBatch::default(), 50).is_ok());
    }
}
