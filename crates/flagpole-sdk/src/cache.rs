//! The optional on-disk cache of the last environment, and offline files.
//!
//! The cache lets a restarted application serve its flags while the server is down. It is
//! written atomically (temporary file, fsync, rename) so a crash mid-write leaves the old
//! file, and it records a fingerprint of the SDK key: a cache left by another environment
//! is ignored, because its version would otherwise make the real environment's (lower)
//! versions look like steps backwards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flagpole_core::model::EnvironmentSnapshot;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::OfflineError;

/// Bumped if the file layout changes; other formats are ignored.
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct CacheFileRef<'a> {
    format: u32,
    /// `sha256("flagpole-sdk-cache:" + key)`, truncated: identifies the environment
    /// without storing the key.
    key: &'a str,
    environment: &'a EnvironmentSnapshot,
}

#[derive(Deserialize)]
struct CacheFile {
    format: u32,
    key: String,
    environment: EnvironmentSnapshot,
}

/// The SDK key's fingerprint as stored in the cache file.
pub(crate) fn fingerprint(sdk_key: &str) -> String {
    let digest = Sha256::digest(format!("flagpole-sdk-cache:{sdk_key}").as_bytes());
    hex::encode(&digest[..16])
}

/// The cached environment, if the file exists, parses and belongs to this SDK key.
/// Problems are logged, not returned: a missing or bad cache must never stop a client.
pub(crate) fn load(path: &Path, fingerprint: &str) -> Option<EnvironmentSnapshot> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "flagpole: cannot read the cache file");
            return None;
        }
    };
    match serde_json::from_slice::<CacheFile>(&bytes) {
        Ok(file) if file.format == FORMAT && file.key == fingerprint => Some(file.environment),
        Ok(_) => {
            tracing::info!(path = %path.display(), "flagpole: ignoring a cache file of another environment or format");
            None
        }
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "flagpole: ignoring an unreadable cache file");
            None
        }
    }
}

/// Writes the cache atomically: a temporary file beside it, fsynced, renamed over it.
pub(crate) fn write(
    path: &Path,
    fingerprint: &str,
    env: &EnvironmentSnapshot,
) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Unique per process and write, so two clients sharing a cache file never write
    // through the same temporary file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let body = serde_json::to_vec(&CacheFileRef {
        format: FORMAT,
        key: fingerprint,
        environment: env,
    })?;
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads an offline file: a plain JSON `EnvironmentSnapshot`, or a cache file (whose key
/// is not checked: the operator chose the file).
pub(crate) fn load_offline(path: &Path) -> Result<EnvironmentSnapshot, OfflineError> {
    let bytes = std::fs::read(path).map_err(|source| OfflineError::Io {
        path: path.to_owned(),
        source,
    })?;
    // The cache layout first: every field of EnvironmentSnapshot has a default, so a cache
    // file would also parse, wrongly, as an empty snapshot.
    if let Ok(file) = serde_json::from_slice::<CacheFile>(&bytes) {
        return Ok(file.environment);
    }
    serde_json::from_slice(&bytes).map_err(|source| OfflineError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes each new server environment to `path`, at most once per `debounce`, and once
/// more on shutdown if a change is still unwritten.
pub(crate) async fn run_writer(
    path: PathBuf,
    fingerprint: String,
    mut updates: watch::Receiver<Option<Arc<EnvironmentSnapshot>>>,
    debounce: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            changed = updates.changed() => if changed.is_err() { break },
        }
        // Coalesce a burst of changes into one write of the latest.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(debounce) => {}
        }
        let latest = updates.borrow_and_update().clone();
        save(&path, &fingerprint, latest).await;
        if shutdown.is_cancelled() {
            return;
        }
    }
    if updates.has_changed().unwrap_or(false) {
        let latest = updates.borrow_and_update().clone();
        save(&path, &fingerprint, latest).await;
    }
}

async fn save(path: &Path, fingerprint: &str, env: Option<Arc<EnvironmentSnapshot>>) {
    let Some(env) = env else { return };
    let (path, fingerprint) = (path.to_owned(), fingerprint.to_owned());
    // File IO and fsync block: keep them off the runtime's worker threads.
    let result = tokio::task::spawn_blocking(move || {
        write(&path, &fingerprint, &env).map_err(|e| (path, e))
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err((path, error))) => {
            tracing::warn!(%error, path = %path.display(), "flagpole: cannot write the cache file");
        }
        Err(error) => tracing::warn!(%error, "flagpole: cache writer failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.json");
        let env = EnvironmentSnapshot {
            version: 9,
            ..EnvironmentSnapshot::default()
        };
        write(&path, &fingerprint("key-a"), &env).unwrap();
        assert_eq!(load(&path, &fingerprint("key-a")), Some(env.clone()));
        assert_eq!(load(&path, &fingerprint("key-b")), None);
        assert_eq!(
            load_offline(&path).unwrap(),
            env,
            "offline mode reads cache files too"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        assert!(!std::fs::read_to_string(&path).unwrap().contains("key-a"));
    }

    #[test]
    fn bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.json");
        assert_eq!(load(&path, "x"), None, "missing");
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load(&path, "x"), None, "corrupt");
        assert!(matches!(
            load_offline(&path),
            Err(OfflineError::Json { .. })
        ));
        assert!(matches!(
            load_offline(&dir.path().join("nope.json")),
            Err(OfflineError::Io { .. })
        ));
    }
}
