//! Change notifications: which flags a new environment changed, and the subscriptions that
//! deliver them.
//!
//! A flag "changed" if its own state differs, or if something it depends on did: a
//! segment named by one of its `in_segment` clauses, or a prerequisite flag. Reporting
//! dependents too means a subscriber can re-evaluate exactly the flags it was told about.

// foldhash: these sets are rebuilt on every change an SDK applies; SipHash showed in profiles.
use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use flagpole_core::model::{Clause, EnvironmentSnapshot, Operator};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// One applied change: the flags it affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The environment version after the change.
    pub version: u64,
    /// Keys of flags that were added, removed or changed (directly or through a segment
    /// or prerequisite). Ordered as in the environment, removed flags last.
    pub keys: Arc<[String]>,
    /// True if this subscriber fell behind and missed events: `keys` then lists every
    /// current flag, because any of them may have changed.
    pub lagged: bool,
}

impl ChangeEvent {
    /// True if `key` is among the changed flags.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// Every change to any flag, from [`crate::Client::subscribe`].
pub struct Changes {
    rx: broadcast::Receiver<ChangeEvent>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl Changes {
    pub(crate) fn new(shared: Arc<Shared>, shutdown: CancellationToken) -> Self {
        Changes {
            rx: shared.subscribe(),
            shared,
            shutdown,
        }
    }

    /// The next change, or `None` once the client is closed.
    ///
    /// Events are buffered; a subscriber that falls more than a few hundred changes behind
    /// gets one event with `lagged: true` listing every flag, rather than silently
    /// missing some.
    pub async fn recv(&mut self) -> Option<ChangeEvent> {
        // Biased towards the channel so events published before close are still delivered.
        let received = tokio::select! {
            biased;
            r = self.rx.recv() => r,
            () = self.shutdown.cancelled() => return None,
        };
        match received {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(_)) => {
                let state = self.shared.state.load();
                let env = state.env.as_deref();
                Some(ChangeEvent {
                    version: env.map_or(0, |e| e.version),
                    keys: env
                        .map(|e| e.flags.iter().map(|f| f.flag.key.clone()).collect())
                        .unwrap_or_default(),
                    lagged: true,
                })
            }
            Err(RecvError::Closed) => None,
        }
    }

    /// The subscription as a `Stream` of events.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = ChangeEvent> + Send {
        futures_util::stream::unfold(self, |mut changes| async move {
            changes.recv().await.map(|event| (event, changes))
        })
    }
}

/// Changes to one flag, from [`crate::Client::subscribe_flag`].
pub struct FlagChanges {
    changes: Changes,
    key: String,
}

impl FlagChanges {
    pub(crate) fn new(changes: Changes, key: String) -> Self {
        FlagChanges { changes, key }
    }

    /// Waits until the flag changes and returns the event that changed it, or `None` once
    /// the client is closed.
    pub async fn recv(&mut self) -> Option<ChangeEvent> {
        loop {
            let event = self.changes.recv().await?;
            if event.contains(&self.key) {
                return Some(event);
            }
        }
    }

    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Keys of the flags whose evaluation may differ between `old` and `new`.
pub(crate) fn changed_flags(
    old: Option<&EnvironmentSnapshot>,
    new: &EnvironmentSnapshot,
) -> Vec<String> {
    let Some(old) = old else {
        return new.flags.iter().map(|f| f.flag.key.clone()).collect();
    };
    let (mut changed, removed) = directly_changed(old, new);
    changed.extend(&removed);

    let segments = changed_segments(old, new);
    // Flags depending on changed segments or flags, to a fixpoint: prerequisite chains
    // are short and acyclic, so this converges in a few rounds.
    loop {
        let before = changed.len();
        for f in &new.flags {
            if changed.contains(f.flag.key.as_str()) {
                continue;
            }
            let via_prerequisite = f
                .config
                .prerequisites
                .iter()
                .any(|p| changed.contains(p.flag.as_str()));
            let via_segment = !segments.is_empty()
                && f.config
                    .rules
                    .iter()
                    .flat_map(|r| &r.clauses)
                    .any(|c| names_segment_in(c, &segments));
            if via_prerequisite || via_segment {
                changed.insert(f.flag.key.as_str());
            }
        }
        if changed.len() == before {
            break;
        }
    }
    let mut keys: Vec<String> = new
        .flags
        .iter()
        .map(|f| f.flag.key.as_str())
        .filter(|k| changed.contains(k))
        .map(str::to_owned)
        .collect();
    keys.extend(removed.into_iter().map(str::to_owned));
    keys
}

/// Flags whose own state was added or changed, and flags removed.
fn directly_changed<'a>(
    old: &'a EnvironmentSnapshot,
    new: &'a EnvironmentSnapshot,
) -> (HashSet<&'a str>, Vec<&'a str>) {
    // A patch that changes flags in place (the usual one) keeps every key where it was,
    // so the two lists pair up and no map is needed.
    let in_place = old.flags.len() == new.flags.len()
        && old
            .flags
            .iter()
            .zip(&new.flags)
            .all(|(o, n)| o.flag.key == n.flag.key);
    if in_place {
        let changed = old
            .flags
            .iter()
            .zip(&new.flags)
            .filter(|(o, n)| !same(o, n))
            .map(|(_, n)| n.flag.key.as_str())
            .collect();
        return (changed, Vec::new());
    }
    let old_flags: HashMap<&str, _> = old.flags.iter().map(|f| (f.flag.key.as_str(), f)).collect();
    let new_keys: HashSet<&str> = new.flags.iter().map(|f| f.flag.key.as_str()).collect();
    let changed = new
        .flags
        .iter()
        .filter(|f| {
            !old_flags
                .get(f.flag.key.as_str())
                .is_some_and(|o| same(o, f))
        })
        .map(|f| f.flag.key.as_str())
        .collect();
    let removed = old
        .flags
        .iter()
        .map(|f| f.flag.key.as_str())
        .filter(|k| !new_keys.contains(k))
        .collect();
    (changed, removed)
}

/// Segments added, removed or changed, including segments whose rules use such a segment.
fn changed_segments<'a>(
    old: &'a EnvironmentSnapshot,
    new: &'a EnvironmentSnapshot,
) -> HashSet<&'a str> {
    let old_segments: HashMap<&str, _> = old.segments.iter().map(|s| (s.key.as_str(), s)).collect();
    let new_segments: HashMap<&str, _> = new.segments.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut changed: HashSet<&str> = new
        .segments
        .iter()
        .filter(|s| !old_segments.get(s.key.as_str()).is_some_and(|o| same(o, s)))
        .map(|s| s.key.as_str())
        .chain(
            old_segments
                .keys()
                .copied()
                .filter(|k| !new_segments.contains_key(k)),
        )
        .collect();
    loop {
        let before = changed.len();
        for s in &new.segments {
            if !changed.contains(s.key.as_str())
                && s.rules
                    .iter()
                    .flat_map(|r| &r.clauses)
                    .any(|c| names_segment_in(c, &changed))
            {
                changed.insert(s.key.as_str());
            }
        }
        if changed.len() == before {
            return changed;
        }
    }
}

/// Equal flags or segments. A patch shares every item it did not touch with the previous
/// version, so most pairs are the same allocation and need no comparison.
fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

fn names_segment_in(clause: &Clause, segments: &HashSet<&str>) -> bool {
    clause.op == Operator::InSegment
        && clause
            .values
            .iter()
            .any(|v| v.as_str().is_some_and(|s| segments.contains(s)))
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
