//! Batches: counts, exposures and events cut into batches within the wire limits, and the
//! queue of batches not yet acknowledged.
//!
//! A batch keeps its id until the server has it. One whose delivery ended without an
//! answer (a timeout, a lost connection, a 5xx) may have been stored, so it is *sealed*:
//! it goes again exactly as it was, under the same id, and the server counts it once. One
//! the server definitely did not store (`busy`, a refused connection) stays open, and the
//! next flush merges its counters into it instead of starting another batch, so a long
//! outage costs one batch of counters, not one per flush.

use std::collections::VecDeque;

use flagpole_core::wire::{
    EvalCount, Exposure, MAX_BATCH_ITEMS, OutcomeCount, TelemetryBatch, TrackedEvent,
};

use super::buffer::{Taken, encoded_len};

/// Room kept below a byte limit for the separators and field names an item adds.
const SLACK: usize = 64;

/// A batch not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) batch: TelemetryBatch,
    /// Delivered at least once without an answer: resend unchanged.
    pub(crate) sealed: bool,
    /// Its exposures and events and their encoded size, given back to the buffer when
    /// the batch is done with.
    pub(crate) held_items: usize,
    pub(crate) held_bytes: usize,
    /// Upper bound of the encoded size, kept as items are added.
    bytes: usize,
}

impl Pending {
    fn new(header: &TelemetryBatch) -> Pending {
        let batch = TelemetryBatch {
            id: uuid::Uuid::now_v7().to_string(),
            ..header.clone()
        };
        let bytes = encoded_len(&batch) + SLACK;
        Pending {
            batch,
            sealed: false,
            held_items: 0,
            held_bytes: 0,
            bytes,
        }
    }

    /// No counts, exposures or events (a `dropped` number alone does not count).
    fn holds_nothing(&self) -> bool {
        let b = &self.batch;
        b.counts.is_empty()
            && b.exposures.is_empty()
            && b.events.is_empty()
            && b.outcomes.is_empty()
    }

    /// Adds an outcome into an equal one (same flag, version, variant, kind), or appends
    /// it if there is room. False if there is none.
    fn merge_outcome(&mut self, outcome: &OutcomeCount, max_bytes: usize) -> bool {
        if let Some(held) = self
            .batch
            .outcomes
            .iter_mut()
            .find(|o| super::outcomes::same_identity(o, outcome))
        {
            let before = encoded_len(held);
            super::outcomes::merge(held, outcome);
            // A merged histogram may gain buckets: count the growth.
            self.bytes += encoded_len(held).saturating_sub(before);
            return true;
        }
        let len = encoded_len(outcome);
        if !self.fits(len, max_bytes) {
            return false;
        }
        self.bytes += len + 1;
        self.batch.outcomes.push(outcome.clone());
        true
    }

    fn fits(&self, len: usize, max_bytes: usize) -> bool {
        self.batch.len() < MAX_BATCH_ITEMS && self.bytes + len < max_bytes
    }

    fn push(&mut self, item: Item, len: usize) {
        self.bytes += len + 1;
        self.held_items += 1;
        self.held_bytes += len;
        match item {
            Item::Exposure(e) => self.batch.exposures.push(e),
            Item::Event(e) => self.batch.events.push(e),
        }
    }

    /// Adds a count into an equal one (same flag, version, variant, reason, rule, error),
    /// widening its window, or appends it if there is room. False if there is none.
    fn merge_count(&mut self, count: &EvalCount, max_bytes: usize) -> bool {
        if let Some(held) = self
            .batch
            .counts
            .iter_mut()
            .find(|c| same_identity(c, count))
        {
            held.count += count.count;
            held.start_ms = held.start_ms.min(count.start_ms);
            held.end_ms = held.end_ms.max(count.end_ms);
            // The window's digits may grow by a few bytes at most; SLACK covers them.
            return true;
        }
        let len = encoded_len(count);
        if !self.fits(len, max_bytes) {
            return false;
        }
        self.bytes += len + 1;
        self.batch.counts.push(count.clone());
        true
    }
}

/// An exposure or an event: what the buffer bounds.
enum Item {
    Exposure(Exposure),
    Event(TrackedEvent),
}

impl Item {
    fn encoded_len(&self) -> usize {
        match self {
            Item::Exposure(e) => encoded_len(e),
            Item::Event(e) => encoded_len(e),
        }
    }
}

fn same_identity(a: &EvalCount, b: &EvalCount) -> bool {
    a.flag == b.flag
        && a.flag_version == b.flag_version
        && a.variant == b.variant
        && a.reason == b.reason
        && a.rule == b.rule
        && a.error == b.error
}

/// Batches waiting for an acknowledgement, oldest first.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// `sdk`, `app` and `app_version`, copied into every batch.
    header: TelemetryBatch,
    queue: VecDeque<Pending>,
}

impl Outbox {
    pub(crate) fn new(sdk: &str, app: &str, app_version: &str) -> Outbox {
        Outbox {
            header: TelemetryBatch {
                sdk: sdk.to_owned(),
                app: app.to_owned(),
                app_version: app_version.to_owned(),
                ..TelemetryBatch::default()
            },
            queue: VecDeque::new(),
        }
    }

    /// Adds a flush's counts and buffered items, each batch at most `max_bytes` encoded
    /// (unless one item alone is larger) and [`MAX_BATCH_ITEMS`] long. Counts and the
    /// dropped number go into the newest batch when it is still open.
    pub(crate) fn fill(&mut self, counts: Vec<EvalCount>, taken: Taken, max_bytes: usize) {
        if counts.is_empty()
            && taken.exposures.is_empty()
            && taken.events.is_empty()
            && taken.dropped == 0
        {
            return;
        }
        let mut batch = match self.queue.back() {
            Some(last) if !last.sealed => self.queue.pop_back().expect("just seen"),
            _ => Pending::new(&self.header),
        };
        batch.batch.dropped += taken.dropped;
        for count in &counts {
            if !batch.merge_count(count, max_bytes) {
                self.queue
                    .push_back(std::mem::replace(&mut batch, Pending::new(&self.header)));
                batch.merge_count(count, usize::MAX);
            }
        }
        let items = (taken.exposures.into_iter().map(Item::Exposure))
            .chain(taken.events.into_iter().map(Item::Event));
        for item in items {
            let len = item.encoded_len();
            if !batch.fits(len, max_bytes) && !batch.holds_nothing() {
                self.queue
                    .push_back(std::mem::replace(&mut batch, Pending::new(&self.header)));
            }
            batch.push(item, len);
        }
        self.queue.push_back(batch);
    }

    /// Adds a flush's outcomes (`guard`, `shadow`) into the newest batch when it is still
    /// open, else into new ones, each within `max_bytes` and [`MAX_BATCH_ITEMS`].
    pub(crate) fn fill_outcomes(&mut self, outcomes: Vec<OutcomeCount>, max_bytes: usize) {
        if outcomes.is_empty() {
            return;
        }
        let mut batch = match self.queue.back() {
            Some(last) if !last.sealed => self.queue.pop_back().expect("just seen"),
            _ => Pending::new(&self.header),
        };
        for outcome in &outcomes {
            if !batch.merge_outcome(outcome, max_bytes) {
                self.queue
                    .push_back(std::mem::replace(&mut batch, Pending::new(&self.header)));
                batch.merge_outcome(outcome, usize::MAX);
            }
        }
        self.queue.push_back(batch);
    }

    /// The oldest batch, to deliver next.
    #[cfg(test)]
    pub(crate) fn front(&self) -> Option<&Pending> {
        self.queue.front()
    }

    /// The oldest batch was stored, or refused for good: it leaves the queue.
    pub(crate) fn pop(&mut self) -> Option<Pending> {
        self.queue.pop_front()
    }

    /// The oldest batch, to deliver (and seal) next.
    pub(crate) fn front_mut(&mut self) -> Option<&mut Pending> {
        self.queue.front_mut()
    }

    /// Restores the oldest batch's seal after a delivery that certainly stored nothing.
    pub(crate) fn set_front_sealed(&mut self, sealed: bool) {
        if let Some(front) = self.queue.front_mut() {
            front.sealed = sealed;
        }
    }

    /// The oldest batch is over the server's limits: replaces it by two halves with new
    /// ids (the server stored nothing under the old one). Returns the batch when it holds
    /// a single item, which no split can help: the caller drops it.
    pub(crate) fn split_front(&mut self) -> Option<Pending> {
        let front = self.queue.pop_front()?;
        if front.batch.len() <= 1 {
            return Some(front);
        }
        let b = front.batch;
        let half = b.len() / 2;
        let mut first = Pending::new(&self.header);
        let mut second = Pending::new(&self.header);
        first.batch.dropped = b.dropped;
        let mut n = 0;
        for count in &b.counts {
            let to = if n < half { &mut first } else { &mut second };
            to.merge_count(count, usize::MAX);
            n += 1;
        }
        for outcome in &b.outcomes {
            let to = if n < half { &mut first } else { &mut second };
            to.merge_outcome(outcome, usize::MAX);
            n += 1;
        }
        let items = (b.exposures.into_iter().map(Item::Exposure))
            .chain(b.events.into_iter().map(Item::Event));
        for item in items {
            let to = if n < half { &mut first } else { &mut second };
            let len = item.encoded_len();
            to.push(item, len);
            n += 1;
        }
        self.queue.push_front(second);
        self.queue.push_front(first);
        None
    }

    /// Batches waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
