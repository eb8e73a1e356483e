//! Where hubs read environments from: the one seam between the fan-out and the database.
//!
//! Hubs, their updaters and the connections only ever ask three questions of the world
//! outside them: what is environment E now, what changed in E after version V, and which
//! version E is at. This server answers them from its database ([`Database`]). A relay
//! would answer them from its upstream stream and serve SDKs with the same hubs and
//! connections, without a database; the database-only machinery (LISTEN/NOTIFY, the
//! periodic version check, history pruning, SDK key revocation) is started separately by
//! [`super::Push::start`] and is not part of the seam.

use std::sync::Arc;

use flagpole_core::model::EnvironmentSnapshot;
use futures_util::future::BoxFuture;

use crate::db::Db;
pub(crate) use crate::store::snapshot::PatchRead;

/// Why a source could not answer; the caller logs it and retries on its next poke.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SourceError(Box<dyn std::error::Error + Send + Sync>);

/// What hubs and connections read. Object-safe, so a [`super::Push`] holds any source
/// behind one `Arc`.
pub(crate) trait EnvSource: Send + Sync + 'static {
    /// Environment `id` as it is now; `None` if it does not exist.
    fn environment(
        &self,
        id: i64,
    ) -> BoxFuture<'_, Result<Option<EnvironmentSnapshot>, SourceError>>;

    /// What changed in environment `id` after `version`.
    fn changes_after(&self, id: i64, version: u64)
    -> BoxFuture<'_, Result<PatchRead, SourceError>>;

    /// The version environment `id` is at; `None` if it does not exist. Asked when a client
    /// claims a version this replica's hub has not reached.
    fn version(&self, id: i64) -> BoxFuture<'_, Result<Option<u64>, SourceError>>;
}

/// A shared source.
pub(crate) type Source = Arc<dyn EnvSource>;

/// The server's own source: its database, read through the store.
pub(crate) struct Database(pub(crate) Db);

impl EnvSource for Database {
    fn environment(
        &self,
        id: i64,
    ) -> BoxFuture<'_, Result<Option<EnvironmentSnapshot>, SourceError>> {
        Box::pin(async move {
            crate::store::snapshot::load_environment(&self.0, id)
                .await
                .map_err(source_error)
        })
    }

    fn changes_after(
        &self,
        id: i64,
        version: u64,
    ) -> BoxFuture<'_, Result<PatchRead, SourceError>> {
        Box::pin(async move {
            crate::store::snapshot::load_patch(&self.0, id, version)
                .await
                .map_err(source_error)
        })
    }

    fn version(&self, id: i64) -> BoxFuture<'_, Result<Option<u64>, SourceError>> {
        Box::pin(async move {
            let versions = crate::store::change_log::data_versions(&self.0, &[id])
                .await
                .map_err(source_error)?;
            Ok(versions.first().map(|&(_, version)| version))
        })
    }
}

fn source_error(error: impl std::error::Error + Send + Sync + 'static) -> SourceError {
    SourceError(Box::new(error))
}
