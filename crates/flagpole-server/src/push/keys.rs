//! Open streams by SDK key, so revoking a key closes its streams (1008) instead of leaving
//! them served until they happen to reconnect.
//!
//! One check per distinct key, not per connection: every heartbeat interval the watcher
//! asks the SDK key cache about each key that has open streams. Revoking through this
//! replica invalidates the cache entry at once, so its streams close within one interval;
//! other replicas' caches expire within their TTL. A database that cannot answer closes
//! nothing: an outage must not disconnect every SDK.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::{SdkKeyCache, SdkSeen};
use crate::db::Db;

/// Keys with open streams. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct StreamKeys {
    // std Mutex: held only to look up, insert or remove, never across an await.
    keys: Arc<Mutex<HashMap<String, Watched>>>,
}

struct Watched {
    revoked: CancellationToken,
    streams: usize,
}

/// A stream's registration under its key; `revoked` fires when the key is revoked.
pub(crate) struct KeyLease {
    keys: StreamKeys,
    hash: String,
    pub(crate) revoked: CancellationToken,
}

impl Drop for KeyLease {
    fn drop(&mut self) {
        let mut keys = self.keys.lock();
        if let Some(watched) = keys.get_mut(&self.hash) {
            watched.streams -= 1;
            if watched.streams == 0 {
                keys.remove(&self.hash);
            }
        }
    }
}

impl StreamKeys {
    /// Registers a stream authenticated by the key whose stored hash is `hash`.
    pub(crate) fn register(&self, hash: String) -> KeyLease {
        let revoked = {
            let mut keys = self.lock();
            let watched = keys.entry(hash.clone()).or_insert_with(|| Watched {
                revoked: CancellationToken::new(),
                streams: 0,
            });
            watched.streams += 1;
            watched.revoked.clone()
        };
        KeyLease {
            keys: self.clone(),
            hash,
            revoked,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watched>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks every watched key each `interval` until `shutdown`, noting the live ones as
    /// seen.
    pub(crate) async fn watch(
        self,
        sdk_keys: SdkKeyCache,
        seen: SdkSeen,
        db: Db,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let watched: Vec<(String, CancellationToken)> = self
                .lock()
                .iter()
                .filter(|(_, w)| !w.revoked.is_cancelled())
                .map(|(hash, w)| (hash.clone(), w.revoked.clone()))
                .collect();
            for (hash, revoked) in watched {
                match sdk_keys.lookup_hash(&db, hash).await {
                    // An open stream is a connected application: its key stays seen.
                    Ok(Some(client)) => seen.note(client.key_id),
                    Ok(None) => {
                        metrics::counter!("stream_revoked_keys_total").increment(1);
                        revoked.cancel();
                    }
                    Err(error) => {
                        tracing::debug!(%error, "checking stream keys failed; keeping streams");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_share_a_token_per_key_and_unregister_when_dropped() {
        let keys = StreamKeys::default();
        let a = keys.register("h1".into());
        let b = keys.register("h1".into());
        let c = keys.register("h2".into());
        a.revoked.cancel();
        assert!(b.revoked.is_cancelled());
        assert!(!c.revoked.is_cancelled());
        drop(a);
        assert_eq!(keys.lock().get("h1").map(|w| w.streams), Some(1));
        drop(b);
        assert!(!keys.lock().contains_key("h1"));
        // A key registered again after its streams are gone starts unrevoked.
        let d = keys.register("h1".into());
        assert!(!d.revoked.is_cancelled());
        drop(c);
    }
}
