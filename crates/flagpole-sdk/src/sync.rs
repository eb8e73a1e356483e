//! The version rules for incoming snapshots and patches, as pure functions: what the SDK
//! holds may only move forward, one exact step at a time.

use flagpole_core::Snapshot;
use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::Patch;

/// What to do with an incoming message.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Install this environment.
    Publish(EnvironmentSnapshot),
    /// Nothing to do: the message is older than (or equal to) what is held.
    Ignore,
    /// The message does not follow what is held: ask the server to catch us up.
    Resync,
}

/// A snapshot replaces what is held unless it is older. An older one is ignored rather
/// than resynced (the server would answer with the same snapshot), so versions seen by the
/// application never go backwards.
///
/// The exception is a version loaded from the disk cache (`held_from_cache`): the server
/// answers a hello whose version it does not know (another database, a restored backup)
/// with its current snapshot, and a cache must not pin the client to a foreign version.
pub(crate) fn on_snapshot(
    held: Option<&EnvironmentSnapshot>,
    env: EnvironmentSnapshot,
    held_from_cache: bool,
) -> Step {
    match held {
        Some(h) if env.version < h.version && !held_from_cache => {
            tracing::warn!(
                held = h.version,
                received = env.version,
                "flagpole: ignoring a snapshot older than the flags held"
            );
            Step::Ignore
        }
        _ => Step::Publish(env),
    }
}

/// A patch applies only to exactly its `from` version. `compiled` is what the SDK
/// evaluates with; when it was compiled from `held`, the flags the patch replaces are found
/// through its index.
pub(crate) fn on_patch(
    held: Option<&EnvironmentSnapshot>,
    compiled: &Snapshot,
    patch: Patch,
) -> Step {
    let Some(held) = held else {
        return Step::Resync;
    };
    if patch.to <= patch.from || patch.to <= held.version {
        // Malformed, or already contained in what we hold (a duplicate after a resync).
        return Step::Ignore;
    }
    match held.applied_indexed(patch, compiled) {
        Ok(next) => Step::Publish(next),
        Err(_) => Step::Resync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(version: u64) -> EnvironmentSnapshot {
        EnvironmentSnapshot {
            version,
            ..EnvironmentSnapshot::default()
        }
    }

    fn patch(from: u64, to: u64) -> Patch {
        Patch {
            from,
            to,
            ..Patch::default()
        }
    }

    #[test]
    fn snapshots_never_move_backwards() {
        assert_eq!(on_snapshot(None, env(3), false), Step::Publish(env(3)));
        assert_eq!(
            on_snapshot(Some(&env(3)), env(3), false),
            Step::Publish(env(3))
        );
        assert_eq!(
            on_snapshot(Some(&env(3)), env(7), false),
            Step::Publish(env(7))
        );
        assert_eq!(on_snapshot(Some(&env(3)), env(2), false), Step::Ignore);
        assert_eq!(
            on_snapshot(Some(&env(3)), env(2), true),
            Step::Publish(env(2)),
            "a cached version the server does not know is replaced"
        );
    }

    #[test]
    fn patches_apply_only_to_their_version() {
        assert_eq!(
            on_patch(Some(&env(3)), &Snapshot::empty(), patch(3, 5)),
            Step::Publish(env(5))
        );
        assert_eq!(
            on_patch(None, &Snapshot::empty(), patch(3, 5)),
            Step::Resync,
            "nothing held"
        );
        assert_eq!(
            on_patch(Some(&env(3)), &Snapshot::empty(), patch(4, 5)),
            Step::Resync,
            "gap"
        );
        assert_eq!(
            on_patch(Some(&env(3)), &Snapshot::empty(), patch(2, 4)),
            Step::Resync,
            "overlaps"
        );
        assert_eq!(
            on_patch(Some(&env(3)), &Snapshot::empty(), patch(1, 3)),
            Step::Ignore,
            "already held"
        );
        assert_eq!(
            on_patch(Some(&env(3)), &Snapshot::empty(), patch(3, 3)),
            Step::Ignore,
            "not forward"
        );
        assert_eq!(
            on_patch(Some(&env(3)), &Snapshot::empty(), patch(5, 4)),
            Step::Ignore,
            "backwards"
        );
    }
}
