//! [`ClientBuilder`]: the server URL, SDK key and the few knobs a client has.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache;
use crate::client::Client;
use crate::connection::{self, Endpoint, Options};
use crate::error::BuildError;
use crate::shared::{ConnectionState, Shared, Source};
use crate::telemetry::{self, EventsEndpoint, Telemetry};

/// The stream endpoint's path, appended to the server URL.
const STREAM_PATH: &str = "/sdk/v1/stream";

/// Where batches go when the stream does not take them.
const EVENTS_PATH: &str = "/sdk/v1/events";

/// Configures a [`Client`]; from [`Client::builder`].
pub struct ClientBuilder {
    url: String,
    sdk_key: String,
    options: Options,
    cache_file: Option<PathBuf>,
    cache_debounce: Duration,
    offline: Option<PathBuf>,
    telemetry: telemetry::Settings,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("sdk_key", &"<redacted>")
            .field("options", &self.options)
            .field("cache_file", &self.cache_file)
            .field("offline", &self.offline)
            .field("telemetry", &self.telemetry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: String, sdk_key: String) -> Self {
        ClientBuilder {
            url,
            sdk_key,
            options: Options {
                heartbeat: Duration::from_secs(15),
                backoff_initial: Duration::from_millis(500),
                backoff_max: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(10),
                rejected_retry: crate::connection::REJECTED_RETRY,
            },
            cache_file: None,
            cache_debounce: Duration::from_millis(500),
            offline: None,
            telemetry: telemetry::Settings::default(),
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// Telemetry on or off (default on): evaluation counts, exposures of flags the server
    /// marks, and [`Client::track`] events, sent back in batches. Off, nothing is buffered
    /// or sent, and `track` validates and discards.
    #[must_use]
    pub fn telemetry(mut self, enabled: bool) -> Self {
        self.telemetry.enabled = enabled;
        self
    }

    /// Bounds of the telemetry buffer: at most `max_items` exposures and events (default
    /// 10,000) and `max_bytes` of their JSON (default 4 MiB), counting those sent but not
    /// yet acknowledged. Beyond, new ones are dropped, a warning is logged once, and the
    /// number dropped is reported with the next batch.
    #[must_use]
    pub fn telemetry_buffer(mut self, max_items: usize, max_bytes: usize) -> Self {
        self.telemetry.limits.max_items = max_items;
        self.telemetry.limits.max_bytes = max_bytes;
        self
    }

    /// Time between telemetry flushes (default 10 s; each wait is drawn within ±20% so
    /// that a fleet started together does not post together). A flush also happens as soon
    /// as 1,000 items wait.
    #[must_use]
    pub fn telemetry_flush_interval(mut self, interval: Duration) -> Self {
        self.telemetry.flush_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Bounds of [`crate::Client::shadow`]'s candidates: at most `concurrency` running at
    /// once (default 16; beyond, a candidate is skipped and counted) and each stopped
    /// after `timeout` (default 1 s; counted as a timeout).
    #[must_use]
    pub fn shadow_limits(mut self, concurrency: usize, timeout: Duration) -> Self {
        self.telemetry.shadow_concurrency = concurrency.max(1);
        self.telemetry.shadow_timeout = timeout;
        self
    }

    /// The application's name and version, sent with telemetry so the dashboard can say
    /// which applications evaluate a flag.
    #[must_use]
    pub fn application(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.telemetry.app = name.into();
        self.telemetry.app_version = version.into();
        self
    }

    /// The delay before retrying after the server rejected the SDK key (default 60 s, plus
    /// up to half of it as jitter), instead of the normal reconnect backoff.
    #[must_use]
    pub fn rejected_key_retry(mut self, delay: Duration) -> Self {
        self.options.rejected_retry = delay.max(Duration::from_millis(10));
        self
    }

    /// How often to ping the server (default 15 s, as the server). A connection that is
    /// silent for about two intervals is considered dead and replaced.
    #[must_use]
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.options.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// Reconnect delays: jittered, doubling from `initial` (default 0.5 s) to `max`
    /// (default 30 s), and back to `initial` after a connection that worked.
    #[must_use]
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.options.backoff_initial = initial;
        self.options.backoff_max = max;
        self
    }

    /// Gives up on one connection attempt after this long (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// Keeps the latest environment in this file and loads it at start-up, so a restarted
    /// application has its flags while the server is unreachable. Flags loaded from it are
    /// served with their usual reasons; [`Client::status`] reports them as
    /// [`Source::Cache`] until the server confirms or replaces them.
    #[must_use]
    pub fn cache_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_file = Some(path.into());
        self
    }

    /// Minimum time between cache writes (default 0.5 s): a burst of changes is written once.
    #[must_use]
    pub fn cache_debounce(mut self, debounce: Duration) -> Self {
        self.cache_debounce = debounce;
        self
    }

    /// Offline mode: no network; flags come from this JSON `EnvironmentSnapshot` file (or
    /// a cache file) and never change. For tests and air-gapped use.
    #[must_use]
    pub fn offline(mut self, path: impl Into<PathBuf>) -> Self {
        self.offline = Some(path.into());
        self
    }

    /// The rustls configuration for `wss://` (default: webpki roots, ring provider). Use it
    /// for a private CA.
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Builds the client and starts its connection task on the current tokio runtime.
    /// Returns at once: use [`Client::wait_until_ready`] to wait for the first flags.
    pub fn build(self) -> Result<Client, BuildError> {
        if let Some(path) = self.offline {
            return Ok(Client::offline_from_file(path)?);
        }
        let (url, tls) = stream_url(&self.url)?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.sdk_key))
            .map_err(|_| BuildError::InvalidSdkKey)?;
        authorization.set_sensitive(true);
        #[cfg(feature = "rustls")]
        let tls_config = match (tls, self.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(config),
            (true, None) => Some(default_tls()?),
        };
        let events = EventsEndpoint {
            url: events_url(&url)?,
            authorization: authorization.clone(),
            #[cfg(feature = "rustls")]
            tls: tls_config.clone(),
        };
        let shared = Arc::new(Shared::new(ConnectionState::Connecting));
        if self.telemetry.enabled {
            // Before the first flags (from the cache below) are published: every
            // snapshot evaluated on from now on is drained before it is dropped.
            shared.telemetry.retired.enable();
        }
        let endpoint = Endpoint {
            url,
            authorization,
            telemetry_offered: shared.telemetry.uplink.offered(),
            #[cfg(feature = "rustls")]
            tls: tls_config,
        };
        #[cfg(not(feature = "rustls"))]
        if tls {
            return Err(BuildError::TlsNotEnabled { url: self.url });
        }
        tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;

        let fingerprint = cache::fingerprint(&self.sdk_key);
        if let Some(env) = self
            .cache_file
            .as_deref()
            .and_then(|p| cache::load(p, &fingerprint))
        {
            shared.publish(env, Source::Cache);
        }
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        // Subscribed before the connection starts: `Shared::publish` skips the cache
        // channel while nobody listens, so a first snapshot must not arrive before this.
        let cache_updates = self.cache_file.as_ref().map(|_| shared.watch_persist());
        tasks.spawn(connection::run(
            endpoint,
            shared.clone(),
            self.options,
            shutdown.clone(),
        ));
        if let (Some(path), Some(updates)) = (self.cache_file, cache_updates) {
            tasks.spawn(cache::run_writer(
                path,
                fingerprint,
                updates,
                self.cache_debounce,
                shutdown.clone(),
            ));
        }
        tasks.close();
        // Its own task and stop signal: `close` flushes telemetry while the stream is
        // still up, then stops the connection.
        let telemetry = self
            .telemetry
            .enabled
            .then(|| Telemetry::start(self.telemetry, shared.clone(), events, shutdown.clone()));
        Ok(Client::from_parts(shared, shutdown, tasks, telemetry))
    }
}

/// The stream URL for a server URL (`http[s]://` or `ws[s]://`, with or without the
/// stream path), and whether it needs TLS.
fn stream_url(url: &str) -> Result<(String, bool), BuildError> {
    let invalid = |reason| BuildError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let (scheme, tls) = match uri.scheme_str() {
        Some("http" | "ws") => ("ws", false),
        Some("https" | "wss") => ("wss", true),
        Some(_) => return Err(invalid("the scheme must be http, https, ws or wss")),
        None => return Err(invalid("missing scheme (http:// or https://)")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
    let path = uri.path().trim_end_matches('/');
    let path = if path.ends_with(STREAM_PATH) {
        path.to_owned()
    } else {
        format!("{path}{STREAM_PATH}")
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok((format!("{scheme}://{authority}{path}{query}"), tls))
}

/// `POST /sdk/v1/events` next to the stream URL: same host, same path prefix and query.
fn events_url(stream_url: &str) -> Result<Uri, BuildError> {
    let invalid = |reason| BuildError::InvalidUrl {
        url: stream_url.to_owned(),
        reason,
    };
    let (scheme, rest) = match stream_url.split_once("://") {
        Some(("ws", rest)) => ("http", rest),
        Some(("wss", rest)) => ("https", rest),
        _ => return Err(invalid("not a stream URL")),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let base = path.strip_suffix(STREAM_PATH).unwrap_or(path);
    let url = match query {
        Some(q) => format!("{scheme}://{base}{EVENTS_PATH}?{q}"),
        None => format!("{scheme}://{base}{EVENTS_PATH}"),
    };
    url.parse().map_err(|_| invalid("not a URL"))
}

#[cfg(feature = "rustls")]
fn default_tls() -> Result<Arc<rustls::ClientConfig>, BuildError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // An explicit provider rather than the process default, so the SDK neither depends on
    // nor changes what the application installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls() {
        let ok = |url| stream_url(url).unwrap();
        assert_eq!(
            ok("http://localhost:8080"),
            ("ws://localhost:8080/sdk/v1/stream".into(), false)
        );
        assert_eq!(ok("http://h:1/"), ("ws://h:1/sdk/v1/stream".into(), false));
        assert_eq!(
            ok("https://h/flagpole"),
            ("wss://h/flagpole/sdk/v1/stream".into(), true)
        );
        assert_eq!(
            ok("ws://h/sdk/v1/stream"),
            ("ws://h/sdk/v1/stream".into(), false)
        );
        assert_eq!(
            ok("wss://h/x?a=b"),
            ("wss://h/x/sdk/v1/stream?a=b".into(), true)
        );
        assert!(stream_url("ftp://h").is_err());
        assert!(stream_url("localhost:8080").is_err());
        assert!(stream_url("not a url").is_err());
    }

    #[test]
    fn events_urls_sit_next_to_the_stream() {
        let events = |url| events_url(&stream_url(url).unwrap().0).unwrap().to_string();
        assert_eq!(
            events("http://localhost:8080"),
            "http://localhost:8080/sdk/v1/events"
        );
        assert_eq!(
            events("https://h/flagpole/"),
            "https://h/flagpole/sdk/v1/events"
        );
        assert_eq!(events("ws://h/sdk/v1/stream"), "http://h/sdk/v1/events");
        assert_eq!(events("wss://h/x?a=b"), "https://h/x/sdk/v1/events?a=b");
    }
}
