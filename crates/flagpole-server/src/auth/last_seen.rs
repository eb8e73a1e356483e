//! When each SDK key was last used (a stream connection, or an OFREP call), for the
//! dashboard's "waiting for the first connection → connected". Requests only note the time
//! in memory; [`SdkSeen::run`] writes what changed every [`FLUSH_INTERVAL`], one UPDATE
//! per key used since the last flush, however many requests it made. A write per request
//! would turn the evaluation hot path into a database write path, which is exactly what
//! the architecture rules out ("no database on the evaluation path").
//!
//! Streams are noted when they connect and again at every revocation check of their key
//! (`push::keys`, once a heartbeat interval per key), so a connection open for days still
//! reads as seen now. What this replica has noted but not written yet is overlaid on the
//! stored value when keys are listed ([`SdkSeen::pending`]), so the replica an SDK talks to
//! shows it at once and the others within a flush interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::{Db, now_ms};
use crate::store;

/// How often noted times are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Key id → last use (epoch ms) noted since the last flush. Cheap to clone.
#[derive(Clone, Default)]
pub struct SdkSeen {
    // std Mutex: held for one map insert or a swap, never across an await. One lock for
    // all keys: an insert is tens of nanoseconds, small next to an OFREP request.
    noted: Arc<Mutex<HashMap<i64, i64>>>,
}

impl SdkSeen {
    /// Notes that SDK key `key_id` was used now.
    pub fn note(&self, key_id: i64) {
        self.lock().insert(key_id, now_ms());
    }

    /// The last use of `key_id` noted here and not written yet.
    pub fn pending(&self, key_id: i64) -> Option<i64> {
        self.lock().get(&key_id).copied()
    }

    /// Writes every noted time and forgets them; returns how many keys were written. On a
    /// database error the times are kept (merged with newer ones) for the next flush.
    pub async fn flush(&self, db: &Db) -> Result<usize, store::StoreError> {
        let noted = std::mem::take(&mut *self.lock());
        if noted.is_empty() {
            return Ok(0);
        }
        let seen: Vec<(i64, i64)> = noted.iter().map(|(&k, &t)| (k, t)).collect();
        let written = async {
            let mut conn = db.pool.acquire().await?;
            store::sdk_key::record_seen(&mut conn, &seen).await
        }
        .await;
        if let Err(error) = written {
            let mut map = self.lock();
            for (key, at) in noted {
                let slot = map.entry(key).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(error);
        }
        Ok(seen.len())
    }

    /// Flushes every [`FLUSH_INTERVAL`] until `shutdown`, then once more, so what was seen
    /// just before a restart is not lost.
    pub async fn run(self, db: Db, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            if let Err(error) = self.flush(&db).await {
                tracing::warn!(%error, "writing SDK keys' last use failed; retrying later");
            }
            if stopping {
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
        self.noted.lock().unwrap_or_else(|e| e.into_inner())
    }
}
