//! Test support: fresh databases on real Postgres and SQLite.
//!
//! Every call makes a brand-new database, so tests never see each other's data or a
//! previous run's. Postgres is found through `FLAGPOLE_TEST_PG_URL` (an admin connection,
//! default `postgres://postgres@127.0.0.1:5432/postgres`); the test command starts a
//! server when none is reachable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Connection, Executor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::{Backend, Db};
use crate::{App, StartError};

/// Admin URL of the test Postgres server.
pub fn postgres_admin_url() -> String {
    std::env::var("FLAGPOLE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// URL of a new, empty Postgres database.
pub async fn fresh_postgres_url() -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let name = unique_name("fp_test");
    let mut conn = sqlx::AnyConnection::connect(&admin).await?;
    conn.execute(sqlx::AssertSqlSafe(format!("create database {name}")))
        .await?;
    conn.close().await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Ok(format!("{base}/{name}"))
}

/// A new, empty SQLite database file in a fresh temporary directory.
pub fn fresh_sqlite_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique_name("flagpole_test"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A migrated, empty database of the given backend.
pub async fn fresh_db(backend: Backend) -> anyhow::Result<Db> {
    let db = match backend {
        Backend::Postgres => Db::connect(&fresh_postgres_url().await?, 8).await?,
        Backend::Sqlite => Db::open_sqlite_dir(&fresh_sqlite_dir()?, 8).await?,
    };
    db.migrate().await?;
    Ok(db)
}

/// An app served on a real socket (127.0.0.1, port 0) until [`Served::stop`].
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartError>>>,
}

impl Served {
    /// Serves `app` on a fresh port.
    pub async fn start(app: App) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        Served {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful shutdown; panics unless `serve` returns cleanly within `wait`.
    pub async fn stop(&mut self, wait: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(wait, handle)
                .await
                .expect("serve returns after shutdown")
                .expect("serve task")
                .expect("serve");
        }
    }
}
