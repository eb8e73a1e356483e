//! A write's own patch: a config write (toggle or replace, `domain::configs`) knows exactly
//! what it changed, so its replica's hub gets the patch from the write instead of reading
//! back from `env_change` what the write just committed (that read sat between every
//! commit and its fan-out: ~1 ms at the median here, more under load).
//!
//! Exact because every write bumps each environment it touches once, first in its
//! transaction and under the environment row's lock: version N is N-1 with this write
//! applied. The hub takes the patch only if it holds exactly N-1; otherwise (it is behind,
//! or moved on) it reads from the database as for any other change.
//!
//! Announced before the commit ([`Push::begin_local`]), so that the write's own Postgres
//! notification, which often arrives before the patch is published, does not make the
//! updater read it anyway.

use std::sync::Arc;

use flagpole_core::wire::Patch;

use super::Push;
use super::hub::EnvHub;

/// A local write between its announcement and its publication. Dropped without
/// [`LocalWrite::publish`] (the commit failed, or the request was cancelled), it hands the
/// version back to the updater.
pub(crate) struct LocalWrite {
    hub: Option<Arc<EnvHub>>,
    version: u64,
}

impl Push {
    /// Announces that a write of this process, not yet committed, will publish its own
    /// patch to `version` of environment `environment_id`. Does nothing if this replica
    /// has no hub for it (no SDK connected here).
    pub(crate) fn begin_local(&self, environment_id: i64, version: u64) -> LocalWrite {
        let hub = super::lock(&self.inner.hubs).get(&environment_id).cloned();
        if let Some(hub) = &hub {
            hub.expect_local(version);
        }
        LocalWrite { hub, version }
    }
}

impl LocalWrite {
    /// Publishes the committed write's `patch` (which must end at the announced version)
    /// if the hub holds exactly `patch.from`; otherwise the updater catches the hub up.
    pub(crate) fn publish(mut self, patch: Patch) {
        let Some(hub) = self.hub.take() else {
            return;
        };
        debug_assert_eq!(patch.to, self.version);
        // Checked again under the hub's lock: if the updater moved the hub meanwhile (a
        // periodic check), this is refused as a gap and the updater's patch holds it.
        let published = hub.version() == Some(patch.from) && hub.publish(patch).is_ok();
        hub.end_local(self.version);
        if published {
            metrics::counter!("stream_local_patches_total").increment(1);
        } else {
            hub.poke(None);
        }
    }
}

impl Drop for LocalWrite {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.end_local(self.version);
            hub.poke(None);
        }
    }
}
