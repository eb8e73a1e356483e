//! The change feed: "environment E is now at version N", published in-process after a
//! write commits. A module of its own, below everything that publishes or follows it
//! (domain writes, the snapshot cache, push, the dashboard's events), so none of them
//! needs another to name it.

use tokio::sync::broadcast;

/// "Environment E is now at data version N", published after a write commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvChanged {
    /// `environment.id`.
    pub environment_id: i64,
    /// The environment's `data_version` after the write.
    pub data_version: i64,
}

/// In-process fan-out of [`EnvChanged`]. Receivers that lag must resync from the database
/// by version rather than assume they saw every event.
#[derive(Clone)]
pub struct ChangeFeed {
    tx: broadcast::Sender<EnvChanged>,
}

impl ChangeFeed {
    pub(crate) fn new() -> ChangeFeed {
        ChangeFeed {
            tx: broadcast::channel(1024).0,
        }
    }

    /// Announces a committed change. Call only after the transaction committed.
    pub fn publish(&self, change: EnvChanged) {
        // No receivers is fine: nothing is listening yet.
        let _ = self.tx.send(change);
    }

    /// A new receiver of changes published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EnvChanged> {
        self.tx.subscribe()
    }
}
