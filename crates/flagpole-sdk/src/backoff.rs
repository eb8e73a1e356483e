//! Reconnect delays and connection liveness, as small state machines over durations and
//! instants so they can be tested with a paused clock.

use std::time::Duration;

use tokio::time::Instant;

/// Jittered exponential backoff: the base delay doubles from `initial` to `max`, and each
/// delay is drawn uniformly from `[base / 2, base]`. Half the base is kept so delays still
/// grow ("equal jitter"); the random half spreads out the reconnects of many clients that
/// lost the same server at the same moment.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    base: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            base: initial,
        }
    }

    /// The delay before the next attempt; each call doubles the base.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.base;
        self.base = (self.base * 2).min(self.max);
        jitter(base / 2, base / 2)
    }

    /// Back to `initial`, after a connection that worked.
    pub(crate) fn reset(&mut self) {
        self.base = self.initial;
    }
}

/// `fixed` plus a uniformly random part of at most `spread`.
pub(crate) fn jitter(fixed: Duration, spread: Duration) -> Duration {
    let spread_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    fixed + Duration::from_millis(rand::random_range(0..=spread_ms))
}

/// The delay after a goodbye: the server's hint plus up to a second of jitter, so the
/// clients of a restarting server do not all reconnect in the same millisecond.
pub(crate) fn after_goodbye(hint: Duration) -> Duration {
    jitter(hint, Duration::from_secs(1))
}

/// Liveness of one connection: both sides ping every `interval`, any frame counts as a
/// sign of life, and silence for two intervals plus a margin means the peer is gone.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    interval: Duration,
    last_heard: Instant,
}

impl Heartbeat {
    pub(crate) fn new(interval: Duration, now: Instant) -> Self {
        Heartbeat {
            interval,
            last_heard: now,
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Records a frame from the peer.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// When the connection is to be declared dead if nothing arrives before. The margin
    /// (a quarter interval) absorbs scheduling and network jitter around the peer's pings.
    pub(crate) fn deadline(&self) -> Instant {
        self.last_heard + self.interval * 2 + self.interval / 4
    }
}

#[cfg(test)]
#[path = "backoff_tests.rs"]
mod tests;
