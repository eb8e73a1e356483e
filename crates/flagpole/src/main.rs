//! The `flagpole` binary: parse settings, start the server, stop on SIGTERM or Ctrl-C.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser;
use flagpole_server::Config;
use flagpole_server::config::LogFormat;

/// mimalloc rather than glibc's allocator: a request or a push delivery allocates and
/// frees a few dozen small blocks, and under load glibc's malloc and free were a tenth of
/// the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "flagpole",
    version,
    about = "Feature flags with real-time push"
)]
enum Cli {
    /// Run the server (API, dashboard, OFREP, SDK stream).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit (a deploy's migration step; `serve`
    /// also applies them at start).
    Migrate(MigrateArgs),
    /// Probe a running server: exit 0 if the URL answers 2xx, 1 otherwise. For container
    /// images without curl (Docker HEALTHCHECK, exec probes).
    Healthcheck(HealthcheckArgs),
    /// Print the OpenAPI document of the REST API (what `cargo xtask codegen` commits as
    /// openapi/openapi.json). Hidden: a build tool's entry point, not an operator's.
    #[command(hide = true)]
    Openapi,
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// Postgres URL (or sqlite:path).
    #[arg(long, env = "FLAGPOLE_DATABASE_URL")]
    database_url: flagpole_server::config::Secret,
}

#[derive(clap::Args)]
struct HealthcheckArgs {
    /// The probe to call: /readyz (ready for traffic) or /healthz (alive).
    #[arg(
        long,
        env = "FLAGPOLE_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8080/readyz"
    )]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout_secs: u64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FLAGPOLE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Serve(args) => serve(*args).await,
        Cli::Migrate(args) => migrate(args).await,
        Cli::Healthcheck(args) => healthcheck(&args),
        Cli::Openapi => openapi(),
    }
}

/// Pretty-printed with a trailing newline, as committed: paths and schemas live in ordered
/// maps, so the output is the same from run to run and a diff shows only API changes.
fn openapi() -> anyhow::Result<()> {
    let document = flagpole_server::http::openapi()
        .to_pretty_json()
        .context("serialising the OpenAPI document")?;
    // Not println!, which panics when the reader has gone (`flagpole openapi | head`).
    writeln!(std::io::stdout().lock(), "{document}").context("writing the document")
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Json);
    let db = flagpole_server::Db::connect(args.database_url.expose(), 1)
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("applying migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let timeout = std::time::Duration::from_secs(args.timeout_secs.max(1));
    match flagpole_server::probe::get_status(&args.url, timeout) {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => {
            eprintln!("{}: HTTP {status}", args.url);
            std::process::exit(1)
        }
        Err(error) => {
            eprintln!("{}: {error}", args.url);
            std::process::exit(1)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.config.log_format);
    let listener =
        flagpole_server::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "flagpole listening");
    flagpole_server::run(args.config, listener, shutdown_signal()).await?;
    // Exit now: `run` returns at the latest at the shutdown deadline, and dropping the
    // runtime would otherwise wait for any blocking task still running past it.
    std::process::exit(0)
}

/// Logs to stdout, one JSON object per line (or human-readable with `--log-format pretty`),
/// filtered by `RUST_LOG` (default `info`). Each request's lines carry its span: request id,
/// method, route and path.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
}

/// Completes on SIGTERM (what Kubernetes and systemd send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
