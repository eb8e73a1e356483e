//! Flagpole's flag server as a library: [`run`] serves the API on a listener until a
//! shutdown future completes. The `flagpole` binary is a thin wrapper around it; tests build
//! an [`App`] over a fresh database and serve it on port 0.

// Public: what the binary (config, run, bind, probe, the OpenAPI document), the benchmarks
// in flagpole-bench (databases, `testing::seed_flags`) and the integration tests (the
// store, databases, credentials helpers, bootstrap, pruning, state) use. Everything else is crate-private, so the compiler can point at dead code.
pub(crate) mod alerts;
pub mod auth;
pub mod bootstrap;
pub(crate) mod changes;
pub mod config;
pub mod db;
pub(crate) mod domain;
pub mod error;
pub(crate) mod experiment;
pub mod http;
pub mod ingest;
pub mod probe;
pub mod push;
pub(crate) mod role;
pub mod scheduler;
pub mod snapshots;
pub mod state;
pub mod store;
pub(crate) mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::future::{Future, IntoFuture as _};
use std::time::Duration;

use tokio::net::TcpListener;

pub use config::Config;
pub use db::Db;
pub use state::AppState;

/// Why the server could not start. Failures after start are logged, not returned.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Opening or migrating the database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// Creating the first admin failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[source] anyhow::Error),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A configured server, ready to serve.
pub struct App {
    state: AppState,
}

impl App {
    /// Opens the configured database (Postgres URL or SQLite in the data dir), migrates it
    /// and prepares the state.
    pub async fn build(config: Config) -> Result<App, StartError> {
        let db = match &config.database_url {
            Some(url) => {
                Db::connect_with_timeout(
                    url.expose(),
                    config.db_max_connections,
                    Duration::from_millis(config.db_acquire_timeout_ms.max(1)),
                )
                .await?
            }
            None => Db::open_sqlite_dir(&config.data_dir, config.db_max_connections).await?,
        };
        Self::with_db(db, config).await
    }

    /// Like [`App::build`] over an already opened database.
    pub async fn with_db(db: Db, config: Config) -> Result<App, StartError> {
        db.migrate().await?;
        bootstrap::bootstrap(&db, &config)
            .await
            .map_err(StartError::Bootstrap)?;
        let state = AppState::new(db, config);
        // Subscribe before warming: a write committed during warm-up is then still seen.
        state
            .snapshots
            .spawn_follower(&state.changes, &state.tasks, state.shutdown.clone());
        state.tasks.spawn(telemetry::upkeep(state.shutdown.clone()));
        state.push.start(
            &state.db,
            &state.changes,
            &state.snapshots,
            &state.auth.sdk_keys,
            &state.auth.sdk_seen,
        );
        state.tasks.spawn(
            state
                .auth
                .sdk_seen
                .clone()
                .run(state.db.clone(), state.shutdown.clone()),
        );
        state.ingest.start(
            &state.db,
            &state.snapshots,
            &state.config,
            &state.shutdown,
            &state.tasks,
        );
        // After the warm-up's subscriptions: a change applied by the first pass (one that
        // fell due while no replica ran) reaches the caches like any other write.
        scheduler::start(&state);
        match state.snapshots.warm().await {
            Ok(n) => tracing::info!(environments = n, "snapshot cache warmed"),
            // Not fatal: /readyz reports it and retries; evaluations load on demand.
            Err(error) => tracing::warn!(%error, "warming the snapshot cache failed"),
        }
        Ok(App { state })
    }

    /// The shared state (for tests that want to look inside).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The router, for driving handlers in-process (`tower::ServiceExt::oneshot`).
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Serves until `shutdown` completes, then shuts down in the order a load balancer needs:
    ///
    /// 1. **Drain**: /readyz answers 503 `draining` at once, but everything (new connections
    ///    included) is still served for `drain_delay_secs`, so health checks take the replica
    ///    out of rotation before anything is refused.
    /// 2. **Stop**: the listener closes; SDK streams get a goodbye with a reconnect hint and
    ///    close 1001; background tasks stop; in-flight requests finish.
    /// 3. **Deadline**: `shutdown_timeout_secs` after the signal, whatever is still running
    ///    is abandoned and this returns anyway (the process then exits 0).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let router = self.router();
        let state = self.state.clone();
        let drain_delay = Duration::from_secs(state.config.drain_delay_secs);
        let deadline = Duration::from_secs(state.config.shutdown_timeout_secs);
        let requested = tokio_util::sync::CancellationToken::new();
        let signal = {
            let state = state.clone();
            let requested = requested.clone();
            async move {
                shutdown.await;
                requested.cancel();
                state
                    .draining
                    .store(true, std::sync::atomic::Ordering::Release);
                tracing::info!(
                    drain_delay_secs = drain_delay.as_secs(),
                    "shutdown requested: /readyz now fails; still serving during the drain delay"
                );
                tokio::time::sleep(drain_delay).await;
                tracing::info!("drain delay over: closing the listener and SDK streams");
                // Streams and background tasks stop now, so the drain of requests below is
                // not held up by long-lived connections.
                state.shutdown.cancel();
            }
        };
        // TCP_NODELAY: a pushed patch (or a close frame right after an error) must not wait
        // for the client's delayed ACK of the previous small write (Nagle).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // Connect info gives handlers the peer address (login rate limiting per client).
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .into_future();
        let finish = async {
            let served = served.await;
            state.shutdown.cancel();
            state.tasks.close();
            state.tasks.wait().await;
            served
        };
        let expired = async {
            requested.cancelled().await;
            tokio::time::sleep(deadline).await;
        };
        tokio::select! {
            served = finish => served?,
            () = expired => {
                tracing::warn!(
                    shutdown_timeout_secs = deadline.as_secs(),
                    "shutdown timeout reached; abandoning requests and tasks still running"
                );
            }
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Connections the kernel queues before `accept`. tokio's `TcpListener::bind` asks for
/// 1,024; when a replica restarts, every SDK it served reconnects to the others within a
/// second or two, and a burst beyond the queue costs each dropped client a one-second SYN
/// retransmit. The kernel caps it at `net.core.somaxconn` (4,096 by default).
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a backlog sized for reconnect storms.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted server must not wait for the old one's TIME_WAIT sockets.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Builds the app from `config` and serves it on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    App::build(config).await?.serve(listener, shutdown).await
}
