//! Evaluation counts: where the telemetry task collects them.
//!
//! Counters live in `flagpole-core`, per compiled [`Snapshot`], bumped by evaluation
//! itself. The SDK swaps snapshots on every change, and evaluations may still run on the
//! one it replaced, so a replaced ("retired") snapshot is kept until it has been drained
//! after its last reader let go of it; then it is dropped.
//!
//! [`CountSource`] is the seam the task calls: [`SnapshotCounts`] over the client's
//! snapshots in the SDK, a scripted source in the tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use flagpole_core::Snapshot;
use flagpole_core::wire::EvalCount;

use crate::shared::{Shared, State};

/// Where evaluation counts come from.
pub(crate) trait CountSource: Send + Sync + 'static {
    /// Moves the counts gathered since the last call into `out`, as counts over the
    /// window `[start_ms, end_ms)`.
    fn drain(&self, start_ms: i64, end_ms: i64, out: &mut Vec<EvalCount>);
}

/// Snapshots replaced while telemetry is on, until drained for the last time.
#[derive(Default)]
pub(crate) struct Retired {
    on: AtomicBool,
    states: Mutex<Vec<Arc<State>>>,
}

impl Retired {
    /// Keep replaced snapshots from now on (only when telemetry is on: otherwise nobody
    /// drains them).
    pub(crate) fn enable(&self) {
        self.on.store(true, Ordering::Release);
    }

    /// Called by `Shared::publish` with the state it replaced.
    pub(crate) fn keep(&self, old: Arc<State>) {
        if self.on.load(Ordering::Acquire) && old.env.is_some() {
            self.states
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(old);
        }
    }
}

impl std::fmt::Debug for Retired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.states.lock().map_or(0, |s| s.len());
        f.debug_struct("Retired")
            .field("on", &self.on)
            .field("held", &held)
            .finish()
    }
}

/// The counts of a client's current and retired snapshots.
pub(crate) struct SnapshotCounts {
    pub(crate) shared: Arc<Shared>,
}

impl CountSource for SnapshotCounts {
    fn drain(&self, start_ms: i64, end_ms: i64, out: &mut Vec<EvalCount>) {
        let retired = &self.shared.telemetry.retired;
        let states = std::mem::take(&mut *retired.states.lock().unwrap_or_else(|e| e.into_inner()));
        let mut still_read = Vec::new();
        for state in states {
            drain_snapshot(&state.snapshot, start_ms, end_ms, out);
            // `ArcSwap` turns its readers' borrows into counted references when it swaps,
            // so a count of one means no evaluation runs on it any more: the drain above
            // was its last.
            if Arc::strong_count(&state) > 1 {
                still_read.push(state);
            }
        }
        if !still_read.is_empty() {
            let mut states = retired.states.lock().unwrap_or_else(|e| e.into_inner());
            still_read.append(&mut states);
            *states = still_read;
        }
        drain_snapshot(&self.shared.state.load().snapshot, start_ms, end_ms, out);
    }
}

/// One snapshot's counters. Evaluation counting is being added to `flagpole-core`
/// (per-snapshot striped counters with a drain call); until it lands there is nothing to
/// drain, and batches carry exposures and events only.
fn drain_snapshot(_snapshot: &Snapshot, _start_ms: i64, _end_ms: i64, _out: &mut Vec<EvalCount>) {}
