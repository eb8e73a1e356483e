//! One environment's hub: the version this replica has, the environment at that version,
//! a ring of recent patches, and the broadcast that fans each patch out to every
//! connection of the environment.
//!
//! Each patch and each snapshot is serialised once into a [`Utf8Bytes`] (a refcounted
//! `bytes::Bytes`); every connection sends the same bytes, so a change costs one
//! serialisation whatever the number of clients.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::Patch;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

/// Patches kept for catching up reconnecting clients, and the broadcast's capacity: a
/// connection more than this many patches behind gets a snapshot instead.
pub(crate) const RING: usize = 64;

/// A patch, serialised once.
#[derive(Debug)]
pub(crate) struct PatchFrame {
    /// Version the patch applies to.
    pub(crate) from: u64,
    /// Version after it.
    pub(crate) to: u64,
    /// `{"type":"patch",...}`, shared by every connection.
    pub(crate) text: Utf8Bytes,
    /// When the hub published it (for the fan-out latency histogram).
    pub(crate) published: Instant,
}

/// The whole environment at one version, serialised once per version on first demand.
#[derive(Debug)]
pub(crate) struct SnapshotFrame {
    /// The environment's version.
    pub(crate) version: u64,
    /// `{"type":"snapshot",...}`.
    pub(crate) text: Utf8Bytes,
}

/// What a connection holding some version needs to be current.
#[derive(Debug)]
pub(crate) enum CatchUp {
    /// It holds the hub's version: nothing to send.
    Current,
    /// These patches, in order, take it from its version to the hub's.
    Patches(Vec<Arc<PatchFrame>>),
    /// Its version is unknown or too old for the ring: the whole environment.
    Snapshot(Arc<SnapshotFrame>),
    /// It holds a version newer than this replica has seen (it came from a replica that
    /// is ahead): wait for this hub to catch up rather than send it backwards.
    Ahead {
        /// The hub's version.
        hub: u64,
    },
}

/// Why a patch was not published.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// The hub has not loaded its environment yet.
    #[error("hub is not loaded")]
    NotLoaded,
    /// The patch does not start at the hub's version (a bug in the builder).
    #[error(transparent)]
    Patch(#[from] flagpole_core::wire::PatchError),
}

struct HubState {
    /// `None` until the first load.
    env: Option<EnvironmentSnapshot>,
    /// Contiguous: each patch's `from` is the previous one's `to`, the last one's `to` is
    /// `env.version`.
    ring: VecDeque<Arc<PatchFrame>>,
    /// `env` serialised, once per version, when a connection first needs it.
    snapshot: Option<Arc<SnapshotFrame>>,
}

/// One environment's fan-out point on this replica.
pub(crate) struct EnvHub {
    /// `environment.id`.
    pub(crate) environment_id: i64,
    // std Mutex: every critical section is short and never awaits.
    state: Mutex<HubState>,
    updates: broadcast::Sender<Arc<PatchFrame>>,
    /// Wakes the updater (coalescing: several pokes before it runs make one build).
    pub(crate) wake: Notify,
    /// Connections holding a lease; the registry drops hubs idle for a while.
    pub(crate) leases: AtomicUsize,
    /// The highest version a local write has announced it will publish itself (0: none).
    local: AtomicU64,
    /// Cancelled when the hub is dropped from the registry or its environment is deleted.
    pub(crate) closed: CancellationToken,
    /// Serialises loads so a herd of first connections reads the database once.
    pub(crate) load_lock: tokio::sync::Mutex<()>,
}

impl EnvHub {
    /// An empty hub; [`EnvHub::set_loaded`] gives it its environment.
    pub(crate) fn new(environment_id: i64) -> EnvHub {
        EnvHub {
            environment_id,
            state: Mutex::new(HubState {
                env: None,
                ring: VecDeque::with_capacity(RING),
                snapshot: None,
            }),
            updates: broadcast::channel(RING).0,
            wake: Notify::new(),
            leases: AtomicUsize::new(0),
            local: AtomicU64::new(0),
            closed: CancellationToken::new(),
            load_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than stopping every connection would, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version this hub holds, if loaded.
    pub(crate) fn version(&self) -> Option<u64> {
        self.lock().env.as_ref().map(|e| e.version)
    }

    /// Installs the environment as loaded from the database, unless the hub already
    /// holds it at that version or later.
    pub(crate) fn set_loaded(&self, env: EnvironmentSnapshot) {
        let mut state = self.lock();
        if state.env.as_ref().is_some_and(|e| e.version >= env.version) {
            return;
        }
        state.env = Some(env);
        state.snapshot = None;
        // Older patches no longer end at the hub's version.
        state.ring.clear();
    }

    /// Asks the updater to bring the hub up to `version` (or to whatever the database
    /// has, when `None`). A version the hub already has is ignored.
    pub(crate) fn poke(&self, version: Option<u64>) {
        if let Some(wanted) = version
            && (wanted <= self.local.load(Ordering::Acquire)
                || self.version().is_some_and(|held| wanted <= held))
        {
            return;
        }
        self.wake.notify_one();
    }

    /// A write of this process will publish its own patch up to `version` once it commits
    /// (see [`super::local`]): until [`EnvHub::end_local`], pokes for versions up to it do
    /// not wake the updater (on Postgres the write's own notification often arrives before
    /// its patch is published, and the read it caused was wasted).
    pub(crate) fn expect_local(&self, version: u64) {
        self.local.fetch_max(version, Ordering::AcqRel);
    }

    /// The local write expected at `version` has published or given up. A later local write
    /// may have raised the mark meanwhile; it ends its own.
    pub(crate) fn end_local(&self, version: u64) {
        let _ = self
            .local
            .compare_exchange(version, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A receiver of every patch published from now on. Subscribe before calling
    /// [`EnvHub::catch_up`], so nothing falls between the two.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<PatchFrame>> {
        self.updates.subscribe()
    }

    /// Applies `patch` to the hub's environment, records it in the ring and fans it out.
    pub(crate) fn publish(&self, patch: Patch) -> Result<(), PublishError> {
        let (from, to) = (patch.from, patch.to);
        // Serialised outside the lock; the environment is updated under it.
        let text = encode(&PatchRef { patch: &patch });
        let mut state = self.lock();
        let env = state.env.as_mut().ok_or(PublishError::NotLoaded)?;
        env.apply(&patch)?;
        let frame = Arc::new(PatchFrame {
            from,
            to,
            text,
            published: Instant::now(),
        });
        state.snapshot = None;
        if state.ring.len() == RING {
            state.ring.pop_front();
        }
        state.ring.push_back(frame.clone());
        // Sent under the lock, so ring order and broadcast order agree. No receivers is
        // fine.
        let _ = self.updates.send(frame);
        metrics::counter!("stream_patches_published_total").increment(1);
        Ok(())
    }

    /// Brings the hub to `env` (the whole environment, read from the database) when the
    /// change history after its own version was pruned: one patch that carries every flag
    /// and segment of `env` and removes what it no longer has, so connections move forward
    /// exactly as with any other patch.
    pub(crate) fn publish_whole(&self, env: &EnvironmentSnapshot) -> Result<(), PublishError> {
        let patch = {
            let state = self.lock();
            let held = state.env.as_ref().ok_or(PublishError::NotLoaded)?;
            if env.version <= held.version {
                return Ok(());
            }
            whole_patch(held, env)
        };
        // A write's own patch (`super::local`) may have moved the hub in between:
        // then this is refused as a gap, and the updater looks again.
        self.publish(patch)
    }

    /// What a connection holding `held` needs to reach the hub's version.
    pub(crate) fn catch_up(&self, held: Option<u64>) -> CatchUp {
        let mut state = self.lock();
        let Some(version) = state.env.as_ref().map(|e| e.version) else {
            // Connections only start on loaded hubs; treat as nothing known yet.
            return CatchUp::Ahead { hub: 0 };
        };
        match held {
            Some(h) if h == version => return CatchUp::Current,
            Some(h) if h > version => return CatchUp::Ahead { hub: version },
            Some(h) => {
                if let Some(start) = state.ring.iter().position(|p| p.from == h) {
                    return CatchUp::Patches(state.ring.iter().skip(start).cloned().collect());
                }
            }
            None => {}
        }
        CatchUp::Snapshot(snapshot_of(&mut state))
    }

    /// The current snapshot frame.
    pub(crate) fn snapshot(&self) -> Option<Arc<SnapshotFrame>> {
        let mut state = self.lock();
        state.env.as_ref()?;
        Some(snapshot_of(&mut state))
    }
}

/// The patch from `held` to `env` that carries all of `env`.
fn whole_patch(held: &EnvironmentSnapshot, env: &EnvironmentSnapshot) -> Patch {
    let gone = |held: Vec<&String>, now: Vec<&String>| -> Vec<String> {
        held.into_iter()
            .filter(|k| !now.contains(k))
            .cloned()
            .collect()
    };
    Patch {
        from: held.version,
        to: env.version,
        flags: env.flags.iter().map(|f| (**f).clone()).collect(),
        removed_flags: gone(
            held.flags.iter().map(|f| &f.flag.key).collect(),
            env.flags.iter().map(|f| &f.flag.key).collect(),
        ),
        segments: env.segments.iter().map(|s| (**s).clone()).collect(),
        removed_segments: gone(
            held.segments.iter().map(|s| &s.key).collect(),
            env.segments.iter().map(|s| &s.key).collect(),
        ),
    }
}

fn snapshot_of(state: &mut HubState) -> Arc<SnapshotFrame> {
    if let Some(frame) = &state.snapshot {
        return frame.clone();
    }
    let env = state.env.as_ref().map(|e| e.version).unwrap_or(0);
    // Borrowing serialisation: the environment is not cloned to build the message.
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "snapshot")]
    struct SnapshotRef<'a> {
        environment: &'a EnvironmentSnapshot,
    }
    let empty = EnvironmentSnapshot::default();
    let environment = state.env.as_ref().unwrap_or(&empty);
    let frame = Arc::new(SnapshotFrame {
        version: env,
        text: encode(&SnapshotRef { environment }),
    });
    state.snapshot = Some(frame.clone());
    frame
}

/// Serialises a message once into shared bytes. `String` → `Utf8Bytes` moves the buffer
/// into a `bytes::Bytes` without copying it.
pub(crate) fn encode<T: Serialize>(message: &T) -> Utf8Bytes {
    // Our message types serialise infallibly (string keys, no custom serialisers).
    Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default())
}

/// `ServerMessage::Patch` by reference, so publishing does not clone the patch.
#[derive(Serialize)]
#[serde(tag = "type", rename = "patch")]
struct PatchRef<'a> {
    #[serde(flatten)]
    patch: &'a Patch,
}
