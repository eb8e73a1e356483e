//! `cargo xtask bench-writes` and `bench-toggle`: what a flag write costs as the API sees
//! it, on a release server.
//!
//! `bench-writes` times creating a flag, replacing one flag's config in `production` and
//! toggling it, in an empty project and in a project of `--flags` flags on the same server,
//! the two interleaved sample by sample so that both see the same machine. It prints one
//! JSON line per backend (SQLite, then Postgres) with p50/p99/max of each and the ratios
//! at N / empty. "Empty" means: each create goes to a project of its own with no flags
//! (creates would otherwise fill it), and the config writes go to a project holding only
//! the written flag.
//!
//! The big project is seeded before the server starts, through the store in one
//! transaction (`flagpole_server::testing::seed_flags`): through the API, where a create
//! has cost O(flags), 10,000 flags took ~25 minutes. Every request is timed from being sent
//! to its response, on a new loopback connection (as `curl` would).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::measure::{percentiles, round3};
use flagpole_tests::postgres::FreshDatabase;
use flagpole_tests::server::{self, Server, admin};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Flags in the big project.
    #[arg(long, default_value_t = 10_000)]
    flags: usize,
    /// Timed writes of each kind in each project.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Timed writes of each kind in the big project, when fewer than `--samples` (a write
    /// that costs O(flags) is slow at 10,000).
    #[arg(long)]
    samples_at_n: Option<usize>,
    /// Backends to run on, one JSON line each.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["sqlite", "postgres"])]
    backend: Vec<Backend>,
}

#[derive(clap::Args)]
pub(crate) struct ToggleArgs {
    /// Flags in the project (one of them is toggled).
    #[arg(long, default_value_t = 500)]
    flags: usize,
    /// Toggles to time.
    #[arg(long, default_value_t = 200)]
    toggles: usize,
}

/// Where the server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// The embedded default, in a fresh data directory.
    Sqlite,
    /// A fresh database on the Postgres `cargo xtask test` uses.
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The environment config writes go to.
const ENV: &str = "production";
/// Prefix of the seeded flags' keys; `f0` is the one written to.
const SEEDED: &str = "f";

pub(crate) fn run(args: Args) -> Result<()> {
    let at_n = args.samples_at_n.unwrap_or(args.samples).min(args.samples);
    if args.flags == 0 || at_n == 0 {
        bail!("--flags, --samples and --samples-at-n must be at least 1");
    }
    crate::release::build()?;
    for backend in args.backend {
        // `empty` holds only the flag `w`; `big` is seeded with `f0`… before the server
        // starts again.
        let bench = Seeded::start(backend, &[("empty", 0), ("big", args.flags)], |addr| {
            admin(
                addr,
                "POST",
                "/api/v1/projects/empty/flags",
                json!({"key": "w"}),
            )?;
            Ok(())
        })?;
        let addr = bench.server.addr;
        let mut empty = Target::new(addr, "empty", "w");
        let mut big = Target::new(addr, "big", &format!("{SEEDED}0"));
        let mut times = Times::default();
        // Warm-up, untimed: the first requests open the pool's connections.
        for _ in 0..3 {
            for target in [&mut empty, &mut big] {
                target.replace()?;
                target.toggle()?;
            }
        }
        for i in 0..args.samples {
            let project = format!("e{i}");
            admin(addr, "POST", "/api/v1/projects", json!({"key": project}))?;
            times
                .empty
                .create
                .push(timed(|| create(addr, &project, "c"))?);
            if i < at_n {
                times
                    .big
                    .create
                    .push(timed(|| create(addr, "big", &format!("c{i}")))?);
            }
        }
        for i in 0..args.samples {
            times.empty.replace.push(timed(|| empty.replace())?);
            if i < at_n {
                times.big.replace.push(timed(|| big.replace())?);
            }
        }
        for i in 0..args.samples {
            times.empty.toggle.push(timed(|| empty.toggle())?);
            if i < at_n {
                times.big.toggle.push(timed(|| big.toggle())?);
            }
        }
        let seed_s = bench.seed_s;
        bench.stop()?;
        println!(
            "{}",
            json!({
                "backend": backend.name(),
                "flags": args.flags,
                "samples": args.samples,
                "samples_at_n": at_n,
                "seed_s": round3(seed_s),
                "empty": times.empty.summary(),
                "at_n": times.big.summary(),
                "ratio": ratios(&times.empty.summary(), &times.big.summary()),
            })
        );
    }
    Ok(())
}

/// `cargo xtask bench-toggle`: the kill switch alone, on Postgres, in a project of
/// `--flags` flags: p50/p90/p99/max of `--toggles` sequential toggles of one flag.
pub(crate) fn run_toggle(args: ToggleArgs) -> Result<()> {
    if args.flags == 0 || args.toggles == 0 {
        bail!("--flags and --toggles must be at least 1");
    }
    crate::release::build()?;
    let bench = Seeded::start(Backend::Postgres, &[("p", args.flags)], |_| Ok(()))?;
    let mut target = Target::new(bench.server.addr, "p", &format!("{SEEDED}0"));
    let mut micros = Vec::with_capacity(args.toggles);
    for _ in 0..args.toggles {
        micros.push(timed(|| target.toggle())?);
    }
    bench.stop()?;
    micros.sort_unstable();
    let p90 = micros[(micros.len() - 1) * 9 / 10];
    let mut toggle_ms = percentiles(&micros);
    toggle_ms["p90"] = json!(f64::from(p90) / 1e3);
    println!(
        "{}",
        json!({"flags": args.flags, "toggles": args.toggles, "toggle_ms": toggle_ms})
    );
    Ok(())
}

/// A release server on a fresh database whose projects were seeded while it was stopped.
struct Seeded {
    server: Server,
    /// Seconds the seeding took.
    seed_s: f64,
    /// Dropped after the server: the Postgres database, or the SQLite data directory.
    _database: Database,
}

enum Database {
    Postgres(FreshDatabase),
    Sqlite(PathBuf),
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Database::Sqlite(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Seeded {
    /// Starts a server, creates `projects` and runs `set_up` through the API, stops it,
    /// seeds each project with its count of flags `f0`, `f1`…, and starts it again.
    fn start(
        backend: Backend,
        projects: &[(&str, usize)],
        set_up: impl FnOnce(SocketAddr) -> Result<()>,
    ) -> Result<Seeded> {
        let binary = server::binary("release");
        let database = match backend {
            Backend::Postgres => Database::Postgres(FreshDatabase::create(
                &flagpole_tests::postgres::ensure()?,
                "fp_bench_writes",
            )?),
            Backend::Sqlite => {
                let dir = std::env::temp_dir()
                    .join(format!("flagpole-bench-writes-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                Database::Sqlite(dir)
            }
        };
        let start = || match &database {
            Database::Postgres(db) => Server::start_on(&binary, "warn", Some(&db.url)),
            Database::Sqlite(dir) => Server::start_in(&binary, "warn", dir),
        };
        let server = start()?;
        for (key, _) in projects {
            admin(server.addr, "POST", "/api/v1/projects", json!({"key": key}))?;
        }
        set_up(server.addr)?;
        server.stop()?;

        let begun = Instant::now();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let db = match &database {
                    Database::Postgres(db) => flagpole_server::Db::connect(&db.url, 1).await?,
                    Database::Sqlite(dir) => flagpole_server::Db::open_sqlite_dir(dir, 1).await?,
                };
                for &(key, n) in projects.iter().filter(|(_, n)| *n > 0) {
                    flagpole_server::testing::seed_flags(&db, key, SEEDED, n).await?;
                }
                db.pool.close().await;
                anyhow::Ok(())
            })
            .context("seeding")?;
        let seed_s = begun.elapsed().as_secs_f64();
        eprintln!(
            "bench: seeded {} flags on {} in {seed_s:.1} s",
            projects.iter().map(|(_, n)| n).sum::<usize>(),
            backend.name()
        );
        Ok(Seeded {
            server: start()?,
            seed_s,
            _database: database,
        })
    }

    fn stop(self) -> Result<()> {
        self.server.stop()
    }
}

/// A flag that config writes go to, with its version as last seen.
struct Target {
    addr: SocketAddr,
    path: String,
    version: i64,
    writes: u64,
}

impl Target {
    fn new(addr: SocketAddr, project: &str, flag: &str) -> Target {
        Target {
            addr,
            path: format!("/api/v1/projects/{project}/flags/{flag}/environments/{ENV}"),
            version: 1,
            writes: 0,
        }
    }

    /// Replaces the config with one that differs from the last (a new targeted key).
    fn replace(&mut self) -> Result<()> {
        self.writes += 1;
        let config = json!({
            "enabled": true,
            "off_variant": "off",
            "targets": [{"variant": "on", "keys": [format!("user-{}", self.writes)]}],
            "rules": [{"id": "nordics", "clauses": [
                {"attribute": "country", "op": "in", "values": ["no", "se"]}],
                "serve": {"variant": "on"}}],
            "default_serve": {"variant": "off"},
        });
        let view = admin(
            self.addr,
            "PUT",
            &self.path,
            json!({"config": config, "version": self.version}),
        )?;
        self.seen(&view)
    }

    /// Flips `enabled` (no version: the kill switch does not need one).
    fn toggle(&mut self) -> Result<()> {
        self.writes += 1;
        let view = admin(
            self.addr,
            "POST",
            &format!("{}/toggle", self.path),
            json!({"enabled": self.writes.is_multiple_of(2)}),
        )?;
        self.seen(&view)
    }

    fn seen(&mut self, view: &Value) -> Result<()> {
        self.version = view["version"]
            .as_i64()
            .with_context(|| format!("flag without a version: {view}"))?;
        Ok(())
    }
}

fn create(addr: SocketAddr, project: &str, key: &str) -> Result<()> {
    let path = format!("/api/v1/projects/{project}/flags");
    admin(addr, "POST", &path, json!({"key": key})).map(drop)
}

/// Microseconds `write` took.
fn timed(write: impl FnOnce() -> Result<()>) -> Result<u32> {
    let begun = Instant::now();
    write()?;
    Ok(u32::try_from(begun.elapsed().as_micros()).unwrap_or(u32::MAX))
}

/// Samples of one project, µs.
#[derive(Default)]
struct Kinds {
    create: Vec<u32>,
    replace: Vec<u32>,
    toggle: Vec<u32>,
}

impl Kinds {
    fn summary(&self) -> Value {
        let of = |samples: &[u32]| {
            let mut sorted = samples.to_vec();
            sorted.sort_unstable();
            percentiles(&sorted)
        };
        json!({
            "create_ms": of(&self.create),
            "replace_ms": of(&self.replace),
            "toggle_ms": of(&self.toggle),
        })
    }
}

#[derive(Default)]
struct Times {
    empty: Kinds,
    big: Kinds,
}

/// `at_n / empty` of each kind's p50 and p99.
fn ratios(empty: &Value, at_n: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for kind in ["create", "replace", "toggle"] {
        let field = format!("{kind}_ms");
        let ratio = |q: &str| {
            let (e, n) = (empty[&field][q].as_f64(), at_n[&field][q].as_f64());
            e.zip(n)
                .map_or(Value::Null, |(e, n)| json!((n / e * 100.0).round() / 100.0))
        };
        out.insert(
            kind.into(),
            json!({"p50": ratio("p50"), "p99": ratio("p99")}),
        );
    }
    Value::Object(out)
}
