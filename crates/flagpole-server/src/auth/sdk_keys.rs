//! SDK keys: authenticating an [`SdkClient`], through the cache that keeps the database
//! off the evaluation hot path. The extractor over this, which finds the key in the
//! request, is `http::credentials`.

use std::time::Duration;

use moka::future::Cache;

use super::{API_TOKEN_PREFIX, AuthError, SDK_KEY_PREFIX, hash_secret};
use crate::db::Db;
use crate::store;

/// An SDK authenticated by its SDK key: may read one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkClient {
    /// The key's id (`sdk_key.id`), under which its last use is noted.
    pub key_id: i64,
    /// The environment the key belongs to.
    pub environment_id: i64,
    /// That environment's project.
    pub project_id: i64,
}

/// SDK key → the client it authenticates, or `None` for a key that does not exist or was
/// revoked (cached too, so a client hammering with a bad key costs no queries).
///
/// Requests look keys up by the key as presented: hashing it (SHA-256, then hex) on every
/// OFREP request was a fifth of the request's instructions. The stored hash is the key of
/// a second cache, used where only the hash is known (the stream revocation check). Both
/// load from the database on a miss, so an entry is never older than the TTL.
///
/// Entries live a short time: revoking on this replica invalidates at once
/// ([`SdkKeyCache::invalidate`]); other replicas notice within the TTL.
#[derive(Clone)]
pub struct SdkKeyCache {
    by_key: Cache<String, Option<SdkClient>>,
    by_hash: Cache<String, Option<SdkClient>>,
}

impl SdkKeyCache {
    /// A cache whose entries expire `ttl` after they were loaded.
    pub fn new(ttl: Duration) -> SdkKeyCache {
        let cache = || {
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build()
        };
        SdkKeyCache {
            by_key: cache(),
            by_hash: cache(),
        }
    }

    /// The client for an SDK key (plaintext), from the cache or the database.
    pub async fn lookup(&self, db: &Db, key: &str) -> Result<Option<SdkClient>, sqlx::Error> {
        if let Some(hit) = self.by_key.get(key).await {
            return Ok(hit);
        }
        self.by_key
            .try_get_with(key.to_owned(), load(db, hash_secret(key)))
            .await
            .map_err(unshare)
    }

    /// Like [`SdkKeyCache::lookup`], by the key's stored hash.
    pub async fn lookup_hash(
        &self,
        db: &Db,
        hash: String,
    ) -> Result<Option<SdkClient>, sqlx::Error> {
        // try_get_with runs one load per key even when many requests miss at once.
        self.by_hash
            .try_get_with(hash.clone(), load(db, hash))
            .await
            .map_err(unshare)
    }

    /// Forgets a key (by its stored hash), after it was revoked. The plaintext side cannot
    /// be addressed by hash, so it is emptied: revoking is rare, reloading is one query per
    /// key in use.
    pub async fn invalidate(&self, key_hash: &str) {
        self.by_hash.invalidate(key_hash).await;
        self.by_key.invalidate_all();
    }

    /// Forgets every key, e.g. after an environment or project was deleted.
    pub fn invalidate_all(&self) {
        self.by_key.invalidate_all();
        self.by_hash.invalidate_all();
    }
}

/// A load error shared by every request that waited on it, as one error.
fn unshare(e: std::sync::Arc<sqlx::Error>) -> sqlx::Error {
    match std::sync::Arc::try_unwrap(e) {
        Ok(e) => e,
        Err(shared) => sqlx::Error::Protocol(format!("loading SDK key: {shared}")),
    }
}

async fn load(db: &Db, key_hash: String) -> Result<Option<SdkClient>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let found = store::sdk_key::client_by_hash(&mut conn, &key_hash).await?;
    Ok(found.map(|(key_id, environment_id, project_id)| SdkClient {
        key_id,
        environment_id,
        project_id,
    }))
}

/// The SDK client a request's SDK key names (`key` as presented, unchecked).
pub(crate) async fn authenticate_sdk(
    db: &Db,
    cache: &SdkKeyCache,
    key: Option<&str>,
) -> Result<SdkClient, AuthError> {
    let key = key.ok_or(AuthError::Unauthenticated(
        "this endpoint needs an SDK key (Authorization: Bearer fp_sdk_… or X-API-Key)",
    ))?;
    if key.starts_with(API_TOKEN_PREFIX) {
        return Err(AuthError::Unauthenticated(
            "this endpoint needs an SDK key (fp_sdk_…), not an API token",
        ));
    }
    if !key.starts_with(SDK_KEY_PREFIX) {
        return Err(AuthError::Unauthenticated("invalid SDK key"));
    }
    cache
        .lookup(db, key)
        .await?
        .ok_or(AuthError::Unauthenticated("invalid or revoked SDK key"))
}
