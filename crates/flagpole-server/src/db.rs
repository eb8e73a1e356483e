//! The database: Postgres in production, an embedded SQLite file when no URL is given.
//!
//! Both go through `sqlx::Any` so there is one set of queries. The SQL in this crate sticks
//! to what both dialects accept: `$N` placeholders, `returning`, `on conflict`, bigint
//! epoch-millisecond times, JSON as text. Each backend has its own migration folder because
//! DDL is where the dialects really differ.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyPool, Executor};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Shared by every replica.
    Postgres,
    /// One process, one file.
    Sqlite,
}

/// A pool plus the knowledge of which dialect it speaks.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool. Prefer [`Db::begin_write`] for writes.
    pub pool: AnyPool,
    /// The engine.
    pub backend: Backend,
    url: String,
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Connecting or a statement failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] MigrateError),
    /// The data directory for SQLite could not be created.
    #[error("creating data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The URL names an engine Flagpole does not support.
    #[error("unsupported database URL (expected postgres:// or sqlite:)")]
    UnsupportedUrl,
}

impl Db {
    /// Opens a pool for `url` (`postgres://…` or `sqlite:…`), waiting at most 5 s for a
    /// connection from it.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        Self::connect_with_timeout(url, max_connections, Duration::from_secs(5)).await
    }

    /// Like [`Db::connect`]; a query waits at most `acquire_timeout` for a connection (while
    /// the database is down, that is how long a request takes to get its 503).
    pub async fn connect_with_timeout(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(DbError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; busy_timeout makes a
                        // second writer wait instead of failing; foreign keys are off by
                        // default in SQLite.
                        conn.execute("pragma journal_mode = wal").await?;
                        conn.execute("pragma busy_timeout = 5000").await?;
                        conn.execute("pragma foreign_keys = on").await?;
                        conn.execute("pragma synchronous = normal").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db {
            pool,
            backend,
            url: url.to_owned(),
        })
    }

    /// Opens (creating if needed) `flagpole.db` in `data_dir`.
    pub async fn open_sqlite_dir(data_dir: &Path, max_connections: u32) -> Result<Db, DbError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DbError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("flagpole.db").display()
        );
        Self::connect(&url, max_connections).await
    }

    /// Applies pending migrations. On Postgres sqlx holds an advisory lock while it does,
    /// so replicas starting together apply each migration once.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// True when every migration this binary knows is applied (for /readyz).
    pub async fn migrations_applied(&self) -> Result<bool, sqlx::Error> {
        let expected = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        let latest = expected.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied.unwrap_or(0) >= latest)
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, taking the write lock
    /// up front: a deferred transaction that upgrades from read to write fails with
    /// SQLITE_BUSY under concurrency instead of waiting.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Postgres => self.pool.begin().await,
            Backend::Sqlite => self.pool.begin_with("begin immediate").await,
        }
    }

    /// A transaction whose reads all see one point in time. Postgres's default isolation
    /// (read committed) takes a new snapshot per statement, so a write committing between
    /// two selects would mix versions; repeatable read fixes the snapshot at the first
    /// statement. SQLite in WAL mode already reads from one snapshot for a whole
    /// transaction.
    pub async fn begin_consistent_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Postgres => {
                self.pool
                    .begin_with("begin isolation level repeatable read read only")
                    .await
            }
            Backend::Sqlite => self.pool.begin().await,
        }
    }

    /// The URL this pool was opened with (may contain a password: do not log it).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Milliseconds since the Unix epoch: the one time representation in the database.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
