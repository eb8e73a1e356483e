//! `cargo xtask load-events`: telemetry ingestion (issue 15) under a sustained load.
//!
//! Starts a release `flagpole` server on a fresh Postgres database, seeds `--flags` flags
//! and an SDK key, opens `--connections` stream connections in `events-fleet` processes
//! of at most `--per-process` each (one process may hold ~20,000 files here), and has each
//! send one telemetry batch every `--interval-ms` for `--secs` seconds, waiting for its
//! acknowledgement. Then it checks that the database holds exactly what was acknowledged
//! and prints one JSON line:
//! - `counter_increments_per_s`: acknowledged counters (one per flag, variant, reason per
//!   batch) per second; `evaluations_per_s` is what they counted;
//! - `raw_events_per_s`: acknowledged exposures and tracked events per second;
//! - `ack_ms`: p50/p99/max from a batch sent to its acknowledgement (which follows the
//!   commit);
//! - `server_peak_rss_mib`: the server's peak resident set (VmHWM);
//! - `stored_matches`: the stored counts and raw rows equal the acknowledged ones.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::json_child::JsonChild;
use crate::measure::{cpu_of, percentiles, round3};
use flagpole_tests::postgres::{FreshDatabase, psql};
use flagpole_tests::server::{self, Server, admin};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Stream connections reporting at once.
    #[arg(long, default_value_t = 2_000)]
    connections: usize,
    /// Seconds of sustained load.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Each connection sends one batch this often, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    interval_ms: u64,
    /// Flags counted in each batch (three counters each).
    #[arg(long, default_value_t = 20)]
    flags: usize,
    /// Exposures and tracked events in each batch.
    #[arg(long, default_value_t = 12)]
    raw: usize,
    /// Connections per fleet process.
    #[arg(long, default_value_t = 15_000)]
    per_process: usize,
}

const PROJECT: &str = "load";

pub(crate) fn run(args: Args) -> Result<()> {
    if args.connections == 0 || args.secs == 0 || args.flags == 0 {
        bail!("--connections, --secs and --flags must be at least 1");
    }
    crate::release::build()?;
    let pg = flagpole_tests::postgres::ensure()?;
    let database = FreshDatabase::create(&pg, "fp_load")?;
    let server = Server::start_on(&server::binary("release"), "warn", Some(&database.url))?;
    let sdk_key = seed(server.addr, args.flags)?;
    let pid = server.pid().context("server exited")?;

    let samples_dir =
        std::env::temp_dir().join(format!("flagpole-load-events-{}", std::process::id()));
    std::fs::create_dir_all(&samples_dir)?;
    let mut fleets = Vec::new();
    let mut left = args.connections;
    while left > 0 {
        let n = left.min(args.per_process);
        left -= n;
        let index = fleets.len();
        let exe = server::binary("release").with_file_name("events-fleet");
        let mut cmd = Command::new(exe);
        cmd.arg("--url")
            .arg(server.url())
            .args(["--sdk-key", &sdk_key])
            .args(["--connections", &n.to_string()])
            .args(["--fleet", &index.to_string()])
            .args(["--interval-ms", &args.interval_ms.to_string()])
            .args(["--flags", &args.flags.to_string()])
            .args(["--raw", &args.raw.to_string()])
            .arg("--samples")
            .arg(samples_dir.join(format!("{index}.json")));
        fleets.push(JsonChild::spawn(&mut cmd, "events-fleet")?);
    }
    for fleet in &mut fleets {
        fleet.expect("ready")?;
    }
    let cpu_before = cpu_of([pid])?;
    let started = Instant::now();
    for fleet in &mut fleets {
        writeln!(fleet.stdin, "go {}", args.secs)?;
    }
    let (mut acked, mut nacked, mut counts, mut evaluations, mut raw) = (0, 0, 0, 0, 0);
    for fleet in &mut fleets {
        let done = fleet.expect("done")?;
        let field = |k: &str| done[k].as_u64().unwrap_or(0);
        acked += field("acked");
        nacked += field("nacked");
        counts += field("counts");
        evaluations += field("evaluations");
        raw += field("raw");
    }
    let elapsed = started.elapsed().as_secs_f64().min(args.secs as f64 + 1.0);
    let cpu = cpu_of([pid])? - cpu_before;
    let peak_rss_kib = peak_rss_kib(pid)?;
    let mut samples: Vec<u32> = Vec::new();
    for i in 0..fleets.len() {
        let bytes = std::fs::read(samples_dir.join(format!("{i}.json")))?;
        samples.extend(serde_json::from_slice::<Vec<u32>>(&bytes)?);
    }
    let _ = std::fs::remove_dir_all(&samples_dir);
    samples.sort_unstable();
    drop(fleets);

    let stored_evaluations = scalar(&database, "select coalesce(sum(n), 0) from eval_count_hour")?;
    let stored_raw = scalar(
        &database,
        "select (select count(*) from exposure) + (select count(*) from tracked_event)",
    )?;
    let stored_batches = scalar(&database, "select count(*) from telemetry_batch")?;
    server.stop()?;
    drop(database);

    let result = json!({
        "connections": args.connections,
        "secs": args.secs,
        "interval_ms": args.interval_ms,
        "batches_acked": acked,
        "batches_nacked": nacked,
        "counter_increments_per_s": round3(counts as f64 / elapsed),
        "evaluations_per_s": round3(evaluations as f64 / elapsed),
        "raw_events_per_s": round3(raw as f64 / elapsed),
        "ack_ms": percentiles(&samples),
        "server_cpu_cores": round3(cpu.seconds() / elapsed),
        "server_peak_rss_mib": round3(peak_rss_kib as f64 / 1024.0),
        "stored_matches": stored_evaluations == evaluations
            && stored_raw == raw
            && stored_batches == acked,
    });
    println!("{result}");
    Ok(())
}

fn scalar(database: &FreshDatabase, sql: &str) -> Result<u64> {
    let out = psql(&database.url, sql)?;
    out.trim()
        .parse()
        .with_context(|| format!("{sql}: {out:?}"))
}

/// Project `load` with `flags` flags (`flag-0`, ...) and an SDK key of production.
fn seed(addr: SocketAddr, flags: usize) -> Result<String> {
    admin(addr, "POST", "/api/v1/projects", json!({"key": PROJECT}))?;
    for f in 0..flags {
        admin(
            addr,
            "POST",
            &format!("/api/v1/projects/{PROJECT}/flags"),
            json!({"key": format!("flag-{f}")}),
        )?;
    }
    let created = admin(
        addr,
        "POST",
        &format!("/api/v1/projects/{PROJECT}/environments/production/sdk-keys"),
        json!({"name": "load-events"}),
    )?;
    // The stream's telemetry needs no more than the key; give the key cache a moment to
    // see the new key's environment.
    std::thread::sleep(Duration::from_millis(200));
    created["key"]
        .as_str()
        .map(str::to_owned)
        .context("SDK key")
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM")
}
