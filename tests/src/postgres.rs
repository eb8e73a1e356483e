//! Making sure a Postgres server is reachable for the tests.
//!
//! In order: the one named by FLAGPOLE_TEST_PG_URL or on 127.0.0.1:5432; the Debian
//! cluster started with pg_ctlcluster; a throwaway cluster under target/ (initdb as the
//! `postgres` user, since initdb refuses to run as root).

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{have, run};
use crate::workspace_root;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const THROWAWAY_PORT: u16 = 55432;

/// Returns an admin URL of a running Postgres, starting one if needed.
pub fn ensure() -> Result<String> {
    if let Ok(url) = std::env::var("FLAGPOLE_TEST_PG_URL") {
        return Ok(url);
    }
    if reachable(5432) && psql_ok(DEFAULT_URL) {
        return Ok(DEFAULT_URL.into());
    }
    if have("pg_ctlcluster") && !reachable(5432) {
        eprintln!("postgres: not reachable on 5432, trying pg_ctlcluster");
        let _ = Command::new("sh")
            .args([
                "-c",
                "pg_ctlcluster $(ls /etc/postgresql | sort -V | tail -1) main start",
            ])
            .status();
        if wait_for(5432) && psql_ok(DEFAULT_URL) {
            return Ok(DEFAULT_URL.into());
        }
    }
    start_throwaway()
}

fn start_throwaway() -> Result<String> {
    let url = format!("postgres://postgres@127.0.0.1:{THROWAWAY_PORT}/postgres");
    if reachable(THROWAWAY_PORT) {
        return Ok(url);
    }
    let bin = find_pg_bin()
        .context("no Postgres server binaries found; install the postgresql package")?;
    let dir = workspace_root().join("target/pg-test-cluster");
    let dir_s = dir.display().to_string();
    eprintln!("postgres: starting a throwaway cluster in {dir_s} on port {THROWAWAY_PORT}");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let as_postgres = |script: String| -> Result<()> {
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres", &dir_s]))?;
            run(Command::new("su").args(["postgres", "-c", &script]))
        } else {
            run(Command::new("sh").args(["-c", &script]))
        }
    };
    as_postgres(format!(
        "{bin}/initdb -D {dir_s} -U postgres --auth=trust >/dev/null"
    ))?;
    as_postgres(format!(
        "{bin}/pg_ctl -D {dir_s} -o '-p {THROWAWAY_PORT} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300' -l {dir_s}/log -w start"
    ))?;
    if !wait_for(THROWAWAY_PORT) {
        bail!("throwaway Postgres did not come up; see {dir_s}/log");
    }
    Ok(url)
}

fn find_pg_bin() -> Option<String> {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|p| p.join("bin"))
        .find(|b| b.join("initdb").exists())
        .map(|p| p.display().to_string())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn reachable(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

fn wait_for(port: u16) -> bool {
    (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        reachable(port)
    })
}

fn psql_ok(url: &str) -> bool {
    !have("psql")
        || Command::new("psql")
            .args([url, "-tAc", "select 1"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Drops databases left by earlier test runs (the tests create one per test).
pub fn drop_stale_test_databases(url: &str) -> Result<()> {
    if !have("psql") {
        return Ok(());
    }
    let out = Command::new("psql")
        .args([
            url,
            "-tAc",
            "select datname from pg_database where datname like 'fp_test_%'",
        ])
        .output()?;
    let names = String::from_utf8_lossy(&out.stdout);
    for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
        let _ = Command::new("psql")
            .args([
                url,
                "-qc",
                &format!("drop database if exists {name} with (force)"),
            ])
            .output();
    }
    Ok(())
}

/// Runs one SQL statement with psql; returns what it printed (tuples only, unaligned).
pub fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([url, "-tAqc", sql])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh database on the Postgres at `admin_url`, named `<prefix>_<pid>`, dropped when
/// this is dropped.
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl FreshDatabase {
    pub fn create(admin_url: &str, prefix: &str) -> Result<FreshDatabase> {
        let name = format!("{prefix}_{}", std::process::id());
        psql(
            admin_url,
            &format!("drop database if exists {name} with (force)"),
        )?;
        psql(admin_url, &format!("create database {name}"))?;
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => bail!("unexpected Postgres URL {admin_url}"),
        };
        Ok(FreshDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin_url,
            &format!("drop database if exists {} with (force)", self.name),
        );
    }
}
