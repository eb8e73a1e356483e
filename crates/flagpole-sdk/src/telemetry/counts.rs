//! Evaluation counts: where the telemetry task collects them.
//!
//! Counters live in `flagpole-core`, per compiled [`Snapshot`], bumped by evaluation
//! itself; `Shared::publish` compiles counting snapshots while telemetry is on (and only
//! then: off, evaluation checks one `None`). The SDK swaps snapshots on every change, and
//! evaluations may still run on the one it replaced, so a replaced ("retired") snapshot is
//! kept and drained on every flush until its last reader has let go of it, drained once
//! more, and dropped. Each drain reports what was counted since the one before, so a
//! snapshot drained as current and later as retired is counted once.
//!
//! [`CountSource`] is the seam the task calls: [`SnapshotCounts`] over the client's
//! snapshots in the SDK, a scripted source in the tests.

use std::sync::atomic::{self, AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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

    /// Whether telemetry is on: snapshots are then compiled counting.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
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
            // Checked before the drain, not after: a reader that lets go between a drain
            // and the check may have counted after that drain, and would be lost.
            // `ArcSwap` turns its readers' borrows into counted references when it swaps,
            // so a count of one means nobody can evaluate on this snapshot any more.
            let last = Arc::strong_count(&state) == 1;
            if last {
                // Pairs with the release of the last reader's reference: its increments
                // (relaxed stores) are visible to the drain below.
                atomic::fence(Ordering::Acquire);
            }
            state.snapshot.drain_counts(start_ms, end_ms, out);
            if !last {
                still_read.push(state);
            }
        }
        if !still_read.is_empty() {
            // Snapshots retired meanwhile go after the ones kept, oldest first.
            let mut states = retired.states.lock().unwrap_or_else(|e| e.into_inner());
            still_read.append(&mut states);
            *states = still_read;
        }
        self.shared
            .state
            .load()
            .snapshot
            .drain_counts(start_ms, end_ms, out);
    }
}

#[cfg(test)]
#[path = "counts_tests.rs"]
mod tests;
