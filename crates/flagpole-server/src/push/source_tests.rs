//! The seam holds: hubs fed by a source that is not a database (as a relay's would be)
//! load, follow changes and notice a deleted environment, through `Push` alone.

use std::sync::Mutex;

use flagpole_core::model::{EnvironmentSnapshot, FlagState};
use flagpole_core::wire::Patch;
use futures_util::future::BoxFuture;
use serde_json::json;

use super::source::EnvSource;
use super::*;

/// An environment kept in memory: every change is one patch to the next version.
#[derive(Default)]
struct Memory {
    /// `None`: the environment does not exist (never made, or deleted).
    env: Mutex<Option<EnvironmentSnapshot>>,
    /// Every patch applied so far, oldest first.
    patches: Mutex<Vec<Patch>>,
}

impl Memory {
    fn change(&self, enabled: bool) -> u64 {
        let mut env = self.env.lock().unwrap();
        let env = env.as_mut().expect("the environment exists");
        let patch = Patch {
            from: env.version,
            to: env.version + 1,
            flags: vec![flag(enabled)],
            removed_flags: vec![],
            segments: vec![],
            removed_segments: vec![],
        };
        env.apply(&patch).unwrap();
        self.patches.lock().unwrap().push(patch);
        env.version
    }
}

impl EnvSource for Memory {
    fn environment(
        &self,
        _: i64,
    ) -> BoxFuture<'_, Result<Option<EnvironmentSnapshot>, SourceError>> {
        let env = self.env.lock().unwrap().clone();
        Box::pin(async move { Ok(env) })
    }

    fn changes_after(&self, _: i64, version: u64) -> BoxFuture<'_, Result<PatchRead, SourceError>> {
        let read = match &*self.env.lock().unwrap() {
            None => PatchRead::Gone,
            Some(env) if env.version <= version => PatchRead::UpToDate,
            Some(_) => {
                // Consecutive one-flag patches fold into one: the last state wins.
                let after: Vec<Patch> = self
                    .patches
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|p| p.from >= version)
                    .cloned()
                    .collect();
                let last = after.last().expect("a newer version has a patch");
                PatchRead::Patch(Patch {
                    from: version,
                    to: last.to,
                    ..last.clone()
                })
            }
        };
        Box::pin(async move { Ok(read) })
    }

    fn version(&self, _: i64) -> BoxFuture<'_, Result<Option<u64>, SourceError>> {
        let version = self.env.lock().unwrap().as_ref().map(|e| e.version);
        Box::pin(async move { Ok(version) })
    }
}

fn flag(enabled: bool) -> FlagState {
    serde_json::from_value(json!({
        "flag": {"key": "a", "kind": "boolean", "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}]},
        "config": {"enabled": enabled, "off_variant": "off", "default_serve": {"variant": "on"}}
    }))
    .unwrap()
}

fn enabled(hub: &EnvHub) -> bool {
    let snapshot = hub.snapshot().expect("a loaded hub has a snapshot");
    let message: serde_json::Value = serde_json::from_str(snapshot.text.as_str()).unwrap();
    message["environment"]["flags"][0]["config"]["enabled"]
        .as_bool()
        .expect("the flag's enabled")
}

#[tokio::test]
async fn hubs_follow_a_source_that_is_not_a_database() {
    let memory = Arc::new(Memory::default());
    *memory.env.lock().unwrap() = Some(EnvironmentSnapshot {
        version: 1,
        flags: vec![flag(false).into()],
        segments: vec![],
    });
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let push = Push::over(
        memory.clone(),
        Duration::from_secs(30),
        shutdown.clone(),
        tasks.clone(),
    );

    let lease = push.lease(7).await.expect("the source has the environment");
    let hub = lease.hub().clone();
    assert_eq!(hub.version(), Some(1));
    assert!(!enabled(&hub));

    // Two changes, one poke: the updater reads what changed and publishes it.
    let mut updates = hub.subscribe();
    memory.change(true);
    memory.change(false);
    let latest = memory.change(true);
    push.poke(7, Some(latest));
    let frame = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("a patch in time")
        .expect("the hub is open");
    assert_eq!((frame.from, frame.to), (1, latest));
    assert_eq!(hub.version(), Some(latest));
    assert!(enabled(&hub));

    // The environment goes away at its source: the hub closes (its streams end with 1008).
    *memory.env.lock().unwrap() = None;
    push.poke(7, None);
    tokio::time::timeout(Duration::from_secs(10), hub.closed.cancelled())
        .await
        .expect("the hub closes");

    shutdown.cancel();
    tasks.close();
    drop(lease);
    tokio::time::timeout(Duration::from_secs(10), tasks.wait())
        .await
        .expect("the updater stops on shutdown");
}
