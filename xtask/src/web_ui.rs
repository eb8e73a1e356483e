//! The dashboard (`web-ui/`) in the xtask commands: installing its npm dependencies when they
//! are missing or stale, building it before the server (which embeds `web-ui/dist`),
//! checking its generated API types, its unit tests (vitest) and the browser end-to-end run
//! (playwright-core driving Debian's Chromium against a real server on a fresh Postgres
//! database).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use flagpole_tests::postgres::FreshDatabase;
use flagpole_tests::process::{have, run as sh};
use flagpole_tests::server::{ADMIN_PASSWORD, ADMIN_TOKEN, Server};
use flagpole_tests::workspace_root as root;

/// Where the dashboard lives.
fn dir() -> PathBuf {
    root().join("web-ui")
}

fn npm(args: &[&str]) -> Result<()> {
    sh(Command::new("npm").args(args).current_dir(dir()))
}

/// `npm ci` unless `node_modules` is already installed from the current lockfile (npm
/// writes `node_modules/.package-lock.json` on install; a lockfile newer than it means the
/// dependencies changed since).
pub(crate) fn ensure_dependencies() -> Result<()> {
    if !have("npm") || !have("node") {
        bail!("the dashboard needs node (20 or later) and npm on PATH");
    }
    let lock = dir().join("package-lock.json");
    let installed = dir().join("node_modules/.package-lock.json");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (modified(&lock), modified(&installed)) {
        (Some(lock), Some(installed)) => installed >= lock,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    npm(&["ci", "--no-audit", "--no-fund", "--loglevel=error"])
}

/// Installs what is needed and builds `web-ui/dist` (the build first checks that
/// `src/api/schema.gen.ts` matches openapi/openapi.json).
pub(crate) fn build() -> Result<()> {
    ensure_dependencies()?;
    npm(&["run", "build"])
}

/// Regenerates the typed API client from openapi/openapi.json (`cargo xtask codegen`).
pub(crate) fn generate_types() -> Result<()> {
    ensure_dependencies()?;
    npm(&["run", "--silent", "gen:api"])
}

/// Fails if the generated API types are stale (`cargo xtask codegen --check`).
pub(crate) fn check_types() -> Result<()> {
    ensure_dependencies()?;
    npm(&["run", "--silent", "check:api"])
}

/// vitest.
pub(crate) fn unit_tests() -> Result<()> {
    npm(&["test"])
}

/// `cargo xtask test-web`: the dashboard's share of `cargo xtask test`.
pub(crate) fn test_all() -> Result<()> {
    build()?;
    unit_tests()?;
    let pg = flagpole_tests::postgres::ensure()?;
    e2e(&pg)
}

/// Chromium from Debian, installed when missing.
fn ensure_chromium() -> Result<PathBuf> {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if path.exists() {
        return Ok(path);
    }
    eprintln!(
        "web-ui: {} is missing; installing Debian's chromium",
        path.display()
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        sh(Command::new("apt-get").args(["update", "-q"]))?;
        if !install() {
            bail!("`apt-get install -y chromium` failed; install Chromium or set CHROMIUM");
        }
    }
    if !path.exists() {
        bail!(
            "chromium was installed but {} does not exist",
            path.display()
        );
    }
    Ok(path)
}

/// The browser scenario (web-ui/e2e/run.mjs) against one `flagpole serve` on a fresh
/// Postgres database. Expects `build()` to have run (the `flagpole` binary, built or found
/// up to date here, then embeds the current dashboard).
pub(crate) fn e2e(pg_admin_url: &str) -> Result<()> {
    let chromium = ensure_chromium()?;
    let flagpole = crate::workspace_build::flagpole()?;
    let db = FreshDatabase::create(pg_admin_url, "fp_webui_e2e")?;
    let server = Server::start_on(&flagpole, "warn", Some(&db.url))?;
    let status = Command::new("node")
        .arg("e2e/run.mjs")
        .current_dir(dir())
        .env("FLAGPOLE_URL", server.url())
        .env("FLAGPOLE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("FLAGPOLE_ADMIN_EMAIL", "admin@flagpole.local")
        .env("FLAGPOLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // The throwaway database, for the steps that must move a flag back in time (the
        // lifecycle's rules count days on the server's clock).
        .env("FLAGPOLE_E2E_DATABASE_URL", &db.url)
        .env("CHROMIUM", &chromium)
        .status()
        .context("starting node")?;
    let log = server.log.clone();
    server.stop()?;
    drop(db);
    if !status.success() {
        bail!(
            "the dashboard end-to-end test failed ({status}); screenshots in \
             web-ui/e2e/screenshots, server log: {}",
            log.display()
        );
    }
    Ok(())
}
