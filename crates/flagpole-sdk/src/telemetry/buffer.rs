//! The bounded buffer of exposures and tracked events.
//!
//! Bounded by count and by encoded size, and the bound covers everything not yet
//! acknowledged: items move from here into batches, but only an acknowledgement (or a
//! batch the server refused for good) gives their room back. A server that is down or
//! slow therefore costs at most the bound, never more (the failure peers had: Unleash
//! SDKs buffering without limit). Counters are not kept here: they merge, so they never
//! need dropping.

use std::io;

use flagpole_core::wire::{Exposure, TrackedEvent};
use serde::Serialize;

/// Default bound on buffered exposures and events.
pub(crate) const MAX_ITEMS: usize = 10_000;
/// Default bound on their encoded size.
pub(crate) const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Items that trigger a flush before the timer.
pub(crate) const FLUSH_AT: usize = 1_000;

/// The buffer's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_items: usize,
    pub(crate) max_bytes: usize,
    pub(crate) flush_at: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: MAX_ITEMS,
            max_bytes: MAX_BYTES,
            flush_at: FLUSH_AT,
        }
    }
}

/// What [`Buffer::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Kept; `flush` is true for the item that reached the flush threshold.
    Kept { flush: bool },
    /// The bound was reached: dropped and counted.
    Dropped,
}

/// Exposures and events waiting for the next batch.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) exposures: Vec<Exposure>,
    pub(crate) events: Vec<TrackedEvent>,
    /// Dropped since the last take.
    pub(crate) dropped: u64,
}

#[derive(Debug)]
pub(crate) struct Buffer {
    limits: Limits,
    exposures: Vec<Exposure>,
    events: Vec<TrackedEvent>,
    /// Items held here or in batches not yet acknowledged, and their encoded size.
    held_items: usize,
    held_bytes: usize,
    dropped: u64,
    /// One warning per overflow: set at the first drop, cleared once the server has
    /// acknowledged a batch reporting the drops (see [`Buffer::reported`]).
    warned: bool,
}

impl Buffer {
    pub(crate) fn new(limits: Limits) -> Self {
        Buffer {
            limits,
            exposures: Vec::new(),
            events: Vec::new(),
            held_items: 0,
            held_bytes: 0,
            dropped: 0,
            warned: false,
        }
    }

    pub(crate) fn push_exposure(&mut self, exposure: Exposure) -> Pushed {
        let bytes = encoded_len(&exposure);
        self.admit(bytes, |b| b.exposures.push(exposure))
    }

    pub(crate) fn push_event(&mut self, event: TrackedEvent) -> Pushed {
        let bytes = encoded_len(&event);
        self.admit(bytes, |b| b.events.push(event))
    }

    fn admit(&mut self, bytes: usize, keep: impl FnOnce(&mut Self)) -> Pushed {
        if self.held_items >= self.limits.max_items
            || self.held_bytes + bytes > self.limits.max_bytes
        {
            self.dropped += 1;
            if !self.warned {
                self.warned = true;
                tracing::warn!(
                    max_items = self.limits.max_items,
                    max_bytes = self.limits.max_bytes,
                    "flagpole: telemetry buffer full, dropping exposures and events until the \
                     server catches up (the number dropped is reported with the next batch)"
                );
            }
            return Pushed::Dropped;
        }
        keep(self);
        self.held_items += 1;
        self.held_bytes += bytes;
        Pushed::Kept {
            flush: self.exposures.len() + self.events.len() == self.limits.flush_at,
        }
    }

    /// Everything waiting, for batching. Its room stays taken until [`Buffer::release`].
    pub(crate) fn take(&mut self) -> Taken {
        Taken {
            exposures: std::mem::take(&mut self.exposures),
            events: std::mem::take(&mut self.events),
            dropped: std::mem::take(&mut self.dropped),
        }
    }

    /// Gives back the room of items that left for good (acknowledged or refused).
    pub(crate) fn release(&mut self, items: usize, bytes: usize) {
        self.held_items = self.held_items.saturating_sub(items);
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
    }

    /// The server acknowledged a batch that reported drops: a new overflow warns again.
    pub(crate) fn reported(&mut self) {
        self.warned = false;
    }

    /// Items waiting for the next batch.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.exposures.len() + self.events.len()
    }
}

/// The size of `value` as JSON, without building the string.
pub(crate) fn encoded_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising telemetry types into a counter cannot fail: no maps with non-string
    // keys, no non-finite floats (refused at `track`).
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(i: usize) -> Exposure {
        Exposure {
            flag: "f".into(),
            variant: "on".into(),
            context_key: format!("user-{i}"),
            at_ms: 1,
            ..Exposure::default()
        }
    }

    #[test]
    fn drops_past_the_item_bound_and_counts_exactly() {
        let mut b = Buffer::new(Limits {
            max_items: 5,
            max_bytes: usize::MAX,
            flush_at: 3,
        });
        let pushed: Vec<Pushed> = (0..12).map(|i| b.push_exposure(exposure(i))).collect();
        assert_eq!(pushed[2], Pushed::Kept { flush: true });
        assert_eq!(pushed[3], Pushed::Kept { flush: false });
        assert!(pushed[5..].iter().all(|p| *p == Pushed::Dropped));
        let taken = b.take();
        assert_eq!((taken.exposures.len(), taken.dropped), (5, 7));
        assert_eq!(
            b.push_exposure(exposure(99)),
            Pushed::Dropped,
            "taken items still hold their room until acknowledged"
        );
        b.release(5, taken.exposures.iter().map(encoded_len).sum());
        assert_eq!(
            b.push_exposure(exposure(100)),
            Pushed::Kept { flush: false }
        );
        let taken = b.take();
        assert_eq!((taken.exposures.len(), taken.dropped), (1, 1));
    }

    #[test]
    fn drops_past_the_byte_bound() {
        let one = encoded_len(&exposure(0));
        let mut b = Buffer::new(Limits {
            max_items: 1000,
            max_bytes: one * 2,
            flush_at: 1000,
        });
        assert_eq!(b.push_exposure(exposure(0)), Pushed::Kept { flush: false });
        assert_eq!(b.push_exposure(exposure(1)), Pushed::Kept { flush: false });
        assert_eq!(b.push_exposure(exposure(2)), Pushed::Dropped);
        assert_eq!(b.waiting(), 2);
    }

    #[test]
    fn encoded_len_is_the_json_length() {
        let e = exposure(7);
        assert_eq!(encoded_len(&e), serde_json::to_string(&e).unwrap().len());
    }
}
