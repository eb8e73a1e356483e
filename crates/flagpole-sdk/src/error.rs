//! The SDK's errors: building a client, loading an offline file, and not being ready.

use std::path::PathBuf;

use crate::shared::Status;

/// [`crate::Client::wait_until_ready`] gave up: no flags from the server (or the offline
/// file) arrived within the timeout, or the client was closed first.
///
/// The client keeps trying in the background; evaluations serve the defaults (or the
/// flags of its disk cache, see [`Status::source`]) until it is ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flagpole client not ready: {status}")]
pub struct NotReady {
    /// The client's status when the wait ended.
    pub status: Status,
}

/// Why [`crate::ClientBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The server URL could not be turned into a stream URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `wss://` / `https://` URL without the crate's `rustls` feature.
    #[error("{url:?} needs TLS: enable flagpole-sdk's `rustls` feature")]
    TlsNotEnabled {
        /// The URL as given.
        url: String,
    },
    /// The TLS configuration could not be built (only with the `rustls` feature).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The SDK key cannot be sent as an HTTP header.
    #[error("the SDK key contains characters that cannot be sent in a header")]
    InvalidSdkKey,
    /// `build()` was called outside a tokio runtime; the connection task needs one.
    #[error("Client::build must be called inside a tokio runtime")]
    NoRuntime,
    /// Offline mode could not load its file.
    #[error(transparent)]
    Offline(#[from] OfflineError),
}

/// An offline or cache file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Reading the file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JSON environment snapshot.
    #[error("parsing {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
}
