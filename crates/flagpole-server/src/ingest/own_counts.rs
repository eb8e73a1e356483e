//! The server's own evaluations: OFREP answers are evaluated on the snapshot cache's
//! counting snapshots ([`SnapshotCache::counting`]). This loop drains them every
//! [`INTERVAL`], and once more on shutdown, into batches of application [`APP`] that go
//! straight into the ingestion queue (no HTTP, no SDK key): the writer stores them as it
//! stores an SDK's (batch ids, caps, counters added up per commit), and insights list
//! `ofrep` beside the SDKs.
//!
//! What is drained is not dropped while it can still be stored: a batch whose write failed
//! for want of a database goes again under the same id (the writer counts an id once),
//! and the counts drained meanwhile go into new batches. On shutdown the last batches are
//! queued before the writer is told to stop, so it writes them before it returns.

use std::time::Duration;

use flagpole_core::wire::{EvalCount, MAX_BATCH_ITEMS, TelemetryBatch};
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Ingest, Refused, Stored};
use crate::db::now_ms;
use crate::snapshots::SnapshotCache;

/// The application the server's evaluations are reported as.
pub const APP: &str = "ofrep";

/// What stands in the batches' `sdk` field.
const SDK: &str = concat!("flagpole-server/", env!("CARGO_PKG_VERSION"));

/// Time between drains: as an SDK's flushes, so the dashboard's figures are as fresh.
const INTERVAL: Duration = Duration::from_secs(10);

/// Drains `snapshots` every [`INTERVAL`] into `ingest` until `shutdown`, then once more;
/// `writer` (the writer's stop) is dropped once that last drain is queued.
pub(super) async fn run(
    snapshots: SnapshotCache,
    ingest: Ingest,
    shutdown: CancellationToken,
    writer: DropGuard,
) {
    let mut outbox = Outbox::default();
    let mut window_start = now_ms();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(INTERVAL) => {}
        }
        window_start = outbox.collect(&snapshots, window_start).await;
        outbox.submit(&ingest);
        // While the database is away the writer retries and this waits, and the counters
        // keep counting in the snapshots meanwhile: nothing piles up here.
        tokio::select! {
            () = outbox.settle() => {}
            () = shutdown.cancelled() => break,
        }
    }
    outbox.collect(&snapshots, window_start).await;
    outbox.submit(&ingest);
    drop(writer);
    outbox.settle().await;
    if !outbox.pending.is_empty() {
        tracing::warn!(
            evaluations = outbox.evaluations(),
            "the server's own evaluation counts could not be stored before shutdown"
        );
    }
}

/// One batch of the server's counts for one environment.
struct Pending {
    environment_id: i64,
    batch: TelemetryBatch,
    /// Handed to the writer: from then on unchanged, so that a resend is recognised.
    sealed: bool,
    /// The writer's answer, while it is awaited.
    receipt: Option<oneshot::Receiver<Result<Stored, Refused>>>,
    /// Stored (or refused for good): leaves at the end of [`Outbox::settle`].
    done: bool,
}

/// Batches not yet stored, oldest first.
#[derive(Default)]
struct Outbox {
    pending: Vec<Pending>,
}

impl Outbox {
    /// Drains the snapshots' counts since `start_ms` into batches; returns the end of the
    /// window drained, the next window's start.
    async fn collect(&mut self, snapshots: &SnapshotCache, start_ms: i64) -> i64 {
        let end_ms = now_ms().max(start_ms);
        for (environment_id, counts) in snapshots.drain_counts(start_ms, end_ms).await {
            self.add(environment_id, counts);
        }
        end_ms
    }

    /// Adds counts of one environment: to its newest batch not yet handed over while it
    /// has room ([`MAX_BATCH_ITEMS`], the limit an SDK's batch has too), else new batches.
    fn add(&mut self, environment_id: i64, counts: Vec<EvalCount>) {
        for count in counts {
            let open = self
                .pending
                .iter_mut()
                .rev()
                .find(|p| p.environment_id == environment_id && !p.sealed)
                .filter(|p| p.batch.counts.len() < MAX_BATCH_ITEMS);
            match open {
                Some(p) => p.batch.counts.push(count),
                None => self.pending.push(Pending {
                    environment_id,
                    batch: TelemetryBatch {
                        id: uuid::Uuid::now_v7().to_string(),
                        sdk: SDK.to_owned(),
                        app: APP.to_owned(),
                        counts: vec![count],
                        ..TelemetryBatch::default()
                    },
                    sealed: false,
                    receipt: None,
                    done: false,
                }),
            }
        }
    }

    /// Hands every batch not awaiting an answer to the writer.
    fn submit(&mut self, ingest: &Ingest) {
        for p in self.pending.iter_mut().filter(|p| p.receipt.is_none()) {
            let bytes = serde_json::to_vec(&p.batch).map_or(0, |json| json.len());
            match ingest.submit_own(p.environment_id, p.batch.clone(), bytes) {
                Ok(receipt) => {
                    p.sealed = true;
                    p.receipt = Some(receipt);
                }
                // The writer has stopped; what is left is reported by the caller.
                Err(_) => return,
            }
        }
    }

    /// Waits for the writer's answers. Cancel-safe: an answer not yet received stays
    /// awaited, and the next call waits for it again.
    async fn settle(&mut self) {
        for p in &mut self.pending {
            let Some(receipt) = p.receipt.as_mut() else {
                continue;
            };
            let answer = receipt.await;
            p.receipt = None;
            match answer {
                Ok(Ok(Stored::New | Stored::Duplicate)) => p.done = true,
                // Not the database being away; the writer logged why. It would fail again.
                Ok(Err(Refused::Failed)) => {
                    tracing::warn!(
                        environment_id = p.environment_id,
                        "the server's own evaluation counts could not be stored; dropped"
                    );
                    p.done = true;
                }
                // Not written (the database was away at shutdown) or unknown (the writer
                // ended): sent again as it is.
                Ok(Err(Refused::Busy | Refused::Stopping)) | Err(_) => {}
            }
        }
        self.pending.retain(|p| !p.done);
    }

    fn evaluations(&self) -> u64 {
        self.pending
            .iter()
            .flat_map(|p| &p.batch.counts)
            .map(|c| c.count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(flag: &str, n: u64) -> EvalCount {
        EvalCount {
            flag: flag.into(),
            variant: Some("on".into()),
            reason: "FALLTHROUGH".into(),
            count: n,
            ..EvalCount::default()
        }
    }

    #[test]
    fn counts_go_into_open_batches_per_environment_within_the_item_limit() {
        let mut outbox = Outbox::default();
        outbox.add(1, vec![count("a", 1), count("b", 2)]);
        outbox.add(2, vec![count("a", 3)]);
        outbox.add(1, vec![count("c", 4)]);
        assert_eq!(outbox.pending.len(), 2);
        assert_eq!(outbox.pending[0].batch.counts.len(), 3);
        assert_eq!(outbox.pending[0].batch.app, APP);
        assert!(outbox.pending[0].batch.sdk.starts_with("flagpole-server/"));

        // A batch handed to the writer does not change any more.
        outbox.pending[0].sealed = true;
        outbox.add(1, vec![count("d", 5)]);
        assert_eq!(outbox.pending.len(), 3);
        assert_ne!(outbox.pending[0].batch.id, outbox.pending[2].batch.id);

        let many = (0..MAX_BATCH_ITEMS + 1).map(|i| count(&format!("f{i}"), 1));
        outbox.add(3, many.collect());
        let sizes: Vec<usize> = outbox.pending[3..]
            .iter()
            .map(|p| p.batch.counts.len())
            .collect();
        assert_eq!(sizes, [MAX_BATCH_ITEMS, 1]);
        assert_eq!(outbox.evaluations(), 15 + MAX_BATCH_ITEMS as u64 + 1);
    }
}
