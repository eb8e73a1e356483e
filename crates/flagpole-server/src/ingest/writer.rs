//! The one batch-writer loop: group commit. It waits for a batch, takes everything queued
//! meanwhile (up to [`MAX_GROUP`] batches or [`MAX_GROUP_BYTES`]), lingers a moment when
//! the group is small so that concurrent SDKs share a commit, writes the group in one
//! transaction and then answers every batch in it. While a commit fails because the
//! database is unavailable, it keeps the group and retries with backoff: the queue behind
//! it fills and new batches are refused as busy. When told to stop (on shutdown, once the
//! server's own counts are queued: `own_counts`) it stops taking new batches, writes what
//! is queued (one attempt per group), and returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use super::aggregate::{Entry, rows};
use super::caps::Caps;
use super::{Ingest, Job, Refused, Stored};
use crate::db::{Db, now_ms};
use crate::snapshots::{CompiledEnvironment, SnapshotCache};
use crate::store::StoreError;
use crate::store::ingest::{DAY_MS, commit, ensure_partitions};

/// Most batches per commit.
const MAX_GROUP: usize = 4096;
/// Most encoded bytes per commit.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// A group smaller than this waits up to [`LINGER`] for more.
const SMALL_GROUP: usize = 64;
/// How long a small group waits for company: a few milliseconds of latency buys fewer,
/// larger transactions when many SDKs report at once.
const LINGER: Duration = Duration::from_millis(2);
/// Backoff between attempts while the database is unavailable.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub(super) struct Writer {
    db: Db,
    snapshots: SnapshotCache,
    caps: Caps,
    ingest: Ingest,
    /// Raw partitions this process knows exist (Postgres), by day.
    partitions: std::collections::HashSet<i64>,
}

impl Writer {
    pub(super) fn new(db: Db, snapshots: SnapshotCache, caps: Caps, ingest: Ingest) -> Writer {
        Writer {
            db,
            snapshots,
            caps,
            ingest,
            partitions: std::collections::HashSet::new(),
        }
    }

    pub(super) async fn run(
        mut self,
        mut queue: UnboundedReceiver<Job>,
        shutdown: CancellationToken,
    ) {
        let mut stopping = false;
        loop {
            let first = if stopping {
                queue.recv().await
            } else {
                tokio::select! {
                    biased;
                    job = queue.recv() => job,
                    () = shutdown.cancelled() => {
                        // No new batches from now on; what is queued is still written.
                        queue.close();
                        stopping = true;
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                break;
            };
            let group = gather(first, &mut queue, stopping).await;
            self.write(group, &shutdown).await;
        }
        tracing::info!("telemetry writer stopped");
    }

    /// Writes a group and answers its batches; retries while the database is unavailable
    /// (once only when shutting down).
    async fn write(&mut self, group: Vec<Job>, shutdown: &CancellationToken) {
        let started = Instant::now();
        let mut delay = RETRY_MIN;
        let outcome = loop {
            match self.try_write(&group).await {
                Ok(fresh) => break Ok(fresh),
                Err(StoreError::Unavailable(error)) if !shutdown.is_cancelled() => {
                    tracing::warn!(%error, batches = group.len(), "telemetry commit failed; retrying");
                    metrics::counter!("telemetry_commit_retries_total").increment(1);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => {}
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(error) => break Err(error),
            }
        };
        match outcome {
            Ok(fresh) => {
                metrics::histogram!("telemetry_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("telemetry_batches_stored_total").increment(group.len() as u64);
                for (job, fresh) in group.into_iter().zip(fresh) {
                    let stored = if fresh {
                        Stored::New
                    } else {
                        Stored::Duplicate
                    };
                    self.finish(job, Ok(stored));
                }
            }
            Err(StoreError::Unavailable(error)) => {
                tracing::warn!(%error, batches = group.len(), "telemetry not written before shutdown; SDKs will resend");
                for job in group {
                    self.finish(job, Err(Refused::Stopping));
                }
            }
            // Not the database being away: one batch may be what fails (a value the
            // database refuses). Write them one by one so the rest are stored.
            Err(error) if group.len() > 1 => {
                tracing::warn!(%error, batches = group.len(), "telemetry group failed; writing its batches one by one");
                for job in group {
                    Box::pin(self.write(vec![job], shutdown)).await;
                }
            }
            Err(error) => {
                tracing::error!(%error, "telemetry batch could not be stored");
                for job in group {
                    self.finish(job, Err(Refused::Failed));
                }
            }
        }
    }

    async fn try_write(&mut self, group: &[Job]) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        self.caps.at(now);
        self.ensure_partitions(group).await?;
        let known = self.known_flags(group).await;
        let ids: Vec<(i64, &str)> = group
            .iter()
            .map(|j| (j.environment_id, j.batch.id.as_str()))
            .collect();
        let entries: Vec<Entry<'_>> = group
            .iter()
            .map(|j| Entry {
                environment_id: j.environment_id,
                batch: &j.batch,
            })
            .collect();
        let caps = &mut self.caps;
        commit(&self.db, &ids, now, |fresh| {
            rows(&entries, fresh, &known, caps)
        })
        .await
    }

    /// Creates the raw partitions for the days the group's exposures and events fall in,
    /// once per day per process (the upkeep loop creates them ahead; events may be up to
    /// 7 days old, so a day may still be missing).
    async fn ensure_partitions(&mut self, group: &[Job]) -> Result<(), StoreError> {
        let mut days: Vec<i64> = group
            .iter()
            .flat_map(|j| {
                let b = &j.batch;
                b.exposures
                    .iter()
                    .map(|e| e.at_ms)
                    .chain(b.events.iter().map(|e| e.at_ms))
            })
            .map(|at| at - at.rem_euclid(DAY_MS))
            .filter(|day| !self.partitions.contains(day))
            .collect();
        days.sort_unstable();
        days.dedup();
        if days.is_empty() {
            return Ok(());
        }
        ensure_partitions(&self.db, &days).await?;
        self.partitions.extend(days);
        Ok(())
    }

    /// The compiled environments of the group, to tell known flag keys from unknown ones.
    async fn known_flags(&self, group: &[Job]) -> HashMap<i64, Arc<CompiledEnvironment>> {
        let mut known = HashMap::new();
        for job in group {
            if known.contains_key(&job.environment_id) {
                continue;
            }
            match self.snapshots.get(job.environment_id).await {
                Ok(env) => {
                    known.insert(job.environment_id, env);
                }
                Err(error) => {
                    tracing::debug!(%error, environment_id = job.environment_id, "no snapshot to check flag keys against");
                }
            }
        }
        known
    }

    fn finish(&self, job: Job, outcome: Result<Stored, Refused>) {
        self.ingest.release(job.bytes);
        // The requester may have given up (timeout, closed socket): the batch is stored
        // all the same, and its redelivery will be recognised by its id.
        let _ = job.done.send(outcome);
    }
}

/// `first` and whatever else is queued, up to the group bounds; a small group lingers a
/// moment for more (not when stopping: then everything is queued already).
async fn gather(first: Job, queue: &mut UnboundedReceiver<Job>, stopping: bool) -> Vec<Job> {
    let mut bytes = first.bytes;
    let mut group = vec![first];
    let deadline = tokio::time::Instant::now() + LINGER;
    while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
        match queue.try_recv() {
            Ok(job) => {
                bytes += job.bytes;
                group.push(job);
            }
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                if stopping || group.len() >= SMALL_GROUP {
                    break;
                }
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(job)) => {
                        bytes += job.bytes;
                        group.push(job);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
    group
}
