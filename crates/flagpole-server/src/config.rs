//! Server settings. Every setting is a command-line flag and an environment variable;
//! the doc comments are the `--help` text.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A string that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value. Call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// How the server behaves. Shared by `flagpole serve` and tests.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Postgres URL (postgres://user:password@host:5432/db). Without it, Flagpole keeps
    /// everything in an embedded SQLite file under --data-dir (single process only).
    #[arg(long, env = "FLAGPOLE_DATABASE_URL")]
    pub database_url: Option<Secret>,

    /// Directory for the embedded SQLite database when no --database-url is given.
    #[arg(long, env = "FLAGPOLE_DATA_DIR", default_value = ".flagpole-data")]
    pub data_dir: PathBuf,

    /// Maximum database connections in the pool.
    #[arg(long, env = "FLAGPOLE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before it gets 503
    /// `unavailable`, in milliseconds. Also bounds how long a request hangs while the
    /// database is down: keep it below the load balancer's and clients' timeouts.
    #[arg(long, env = "FLAGPOLE_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,

    /// Largest accepted request body, in bytes; larger bodies get 413.
    #[arg(long, env = "FLAGPOLE_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Email of the admin user created on first start.
    #[arg(
        long,
        env = "FLAGPOLE_ADMIN_EMAIL",
        default_value = "admin@flagpole.local"
    )]
    pub admin_email: String,

    /// Password of the admin user created on first start. Generated and printed once if unset.
    #[arg(long, env = "FLAGPOLE_ADMIN_PASSWORD")]
    pub admin_password: Option<Secret>,

    /// Admin API token created on first start. Generated and printed once if unset.
    #[arg(long, env = "FLAGPOLE_ADMIN_TOKEN")]
    pub admin_token: Option<Secret>,

    /// Mark session cookies `Secure` (set this when serving over HTTPS).
    #[arg(long, env = "FLAGPOLE_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Session lifetime in hours.
    #[arg(long, env = "FLAGPOLE_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u64,

    /// Seconds between the server's heartbeats on SDK streams; a stream silent for two
    /// intervals is closed (code 4000).
    #[arg(long, env = "FLAGPOLE_STREAM_HEARTBEAT_SECS", default_value_t = 15)]
    pub stream_heartbeat_secs: u64,

    /// Seconds between SIGTERM and closing the listener. During this delay /readyz answers
    /// 503 (`draining`) while every request is still served, so load balancers take the
    /// replica out of rotation before it stops accepting connections.
    #[arg(long, env = "FLAGPOLE_DRAIN_DELAY_SECS", default_value_t = 5)]
    pub drain_delay_secs: u64,

    /// Seconds from SIGTERM until the process exits whatever is still running (the drain
    /// delay included). In-flight requests and SDK stream goodbyes normally finish well
    /// before; keep it below Kubernetes' terminationGracePeriodSeconds minus the preStop delay.
    #[arg(long, env = "FLAGPOLE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    pub shutdown_timeout_secs: u64,

    /// Log format: `json` (one object per line) or `pretty`.
    #[arg(long, env = "FLAGPOLE_LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,

    /// Telemetry from SDKs waiting to be written, at most, in bytes of encoded batches.
    /// When it is full, SDKs get 429 (stream: `telemetry_nack` `busy`) and retry later, so
    /// a database outage costs memory up to this bound and no more.
    #[arg(long, env = "FLAGPOLE_TELEMETRY_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub telemetry_queue_bytes: usize,

    /// Days raw exposures and tracked events are kept (at least 8: SDKs may deliver
    /// events up to 7 days old).
    #[arg(long, env = "FLAGPOLE_TELEMETRY_RAW_DAYS", default_value_t = 30)]
    pub telemetry_raw_days: u32,

    /// Days hourly evaluation counters are kept.
    #[arg(long, env = "FLAGPOLE_TELEMETRY_HOURLY_DAYS", default_value_t = 90)]
    pub telemetry_hourly_days: u32,

    /// Days daily evaluation counters are kept (13 months by default).
    #[arg(long, env = "FLAGPOLE_TELEMETRY_DAILY_DAYS", default_value_t = 396)]
    pub telemetry_daily_days: u32,

    /// Distinct flag keys that name no flag which one environment may report per day (per
    /// replica); counts for further unknown keys are added up under `(other)`, so a buggy
    /// client cannot create unbounded rows.
    #[arg(long, env = "FLAGPOLE_TELEMETRY_UNKNOWN_FLAGS", default_value_t = 100)]
    pub telemetry_unknown_flags: usize,

    /// Seconds between telemetry upkeep runs (daily rollup, partitions, retention). Daily
    /// insights are at most this old.
    #[arg(long, env = "FLAGPOLE_TELEMETRY_UPKEEP_SECS", default_value_t = 30)]
    pub telemetry_upkeep_secs: u64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log pipelines.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl Config {
    /// Settings for tests and embedding: defaults everywhere, SQLite in `data_dir`.
    pub fn for_tests(data_dir: PathBuf) -> Config {
        Config {
            database_url: None,
            data_dir,
            db_max_connections: 8,
            db_acquire_timeout_ms: 2000,
            body_limit_bytes: 1024 * 1024,
            admin_email: "admin@flagpole.local".into(),
            admin_password: Some("admin-password".into()),
            admin_token: Some("fp_api_test_admin_token_0000000000000000".into()),
            secure_cookies: false,
            session_hours: 12,
            stream_heartbeat_secs: 15,
            drain_delay_secs: 0,
            shutdown_timeout_secs: 10,
            log_format: LogFormat::Pretty,
            telemetry_queue_bytes: 64 * 1024 * 1024,
            telemetry_raw_days: 30,
            telemetry_hourly_days: 90,
            telemetry_daily_days: 396,
            telemetry_unknown_flags: 100,
            telemetry_upkeep_secs: 30,
        }
    }
}
