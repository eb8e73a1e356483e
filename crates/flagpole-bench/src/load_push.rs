//! `cargo xtask load-push`: change propagation to many SDK clients, measured end to end.
//!
//! Starts `--replicas` release `flagpole` servers on one fresh Postgres database, connects
//! `--clients` real SDK clients spread over the replicas (in `push-fleet` processes of at
//! most `--per-process` clients each: one process may hold at most ~20,000 files here),
//! then makes `--changes` config changes, each through the next replica in turn (so with
//! several replicas most clients hear of a change through another replica's LISTEN/NOTIFY).
//! Prints one JSON line:
//! - `latency_ms`: p50/p99/max from the write request being sent to the change applied in
//!   a client, over every (client, change) pair. This includes the write itself (HTTP,
//!   validation, commit), whose own duration is `write_ms`;
//! - `latency_from_ack_ms`: the same pairs measured from the write's response arriving
//!   (the API acknowledging a committed change). The commit happens between the two
//!   origins, just before the response is written, so commit → applied lies between
//!   `latency_from_ack_ms` and `latency_ms`, close to the former;
//! - `delivered`: samples seen / clients × changes (a client that was told of two changes
//!   at once counts once, so slightly under 1.0 can be coalescing, not loss; every client
//!   must still end at the final version or the run fails);
//! - `connect_sync_ms`: from starting the fleet to every client holding flags;
//! - `cpu_us_per_delivery`: CPU time (user, system) the servers and the fleets spent
//!   during the changes, per (client, change) pair: what each delivery costs on this
//!   machine, where both sides share two cores (steadier than latencies for comparing
//!   two builds);
//! - `rss_per_idle_connection_kib`: growth of the servers' RSS with every client connected
//!   and idle, divided by the client count.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::json_child::JsonChild;
use crate::measure::{Cpu, cpu_of, percentiles, round3, unix_ns};
use flagpole_tests::postgres::{FreshDatabase, psql};
use flagpole_tests::server::{self, Server, admin};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// SDK clients to connect.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Server processes on one Postgres database.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Changes to make.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Pause between changes, in milliseconds.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Clients per fleet process (each holds that many sockets; the limit here is 20,000
    /// files per process).
    #[arg(long, default_value_t = 2_500)]
    per_process: usize,
    /// Run the fleet processes under `valgrind --tool=callgrind` (output in
    /// target/callgrind.push-fleet.<pid>) to count the instructions the SDK spends per
    /// change; latencies of such a run mean nothing.
    #[arg(long)]
    callgrind_fleet: bool,
    /// Flags in the environment: `load` (the one changed) and `flags - 1` others that
    /// every client holds but no change touches, each with a rule and a rollout. What an
    /// SDK does per change may grow with the flags it holds; one flag measures only the
    /// fixed cost.
    #[arg(long, default_value_t = 1)]
    flags: usize,
    /// Bare protocol clients instead of SDKs (they decode nothing but the version and the
    /// send time): the server's fan-out without the SDKs' CPU on this machine.
    #[arg(long)]
    raw: bool,
}

const PROJECT: &str = "load";

pub(crate) fn run(args: Args) -> Result<()> {
    if args.clients == 0 || args.replicas == 0 || args.changes == 0 || args.flags == 0 {
        bail!("--clients, --replicas, --changes and --flags must be at least 1");
    }
    crate::release::build()?;
    let pg = flagpole_tests::postgres::ensure()?;
    let database = FreshDatabase::create(&pg, "fp_load")?;
    let servers = (0..args.replicas)
        .map(|_| Server::start_on(&server::binary("release"), "warn", Some(&database.url)))
        .collect::<Result<Vec<_>>>()?;
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let sdk_key = seed(addrs[0], args.flags)?;
    let mut flag_version = 2; // created, then configured by `seed`
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib(&servers)?;

    let samples_dir =
        std::env::temp_dir().join(format!("flagpole-load-push-{}", std::process::id()));
    std::fs::create_dir_all(&samples_dir)?;
    let started = Instant::now();
    let mut fleets = Vec::new();
    let mut left = args.clients;
    while left > 0 {
        let n = left.min(args.per_process);
        left -= n;
        let samples = samples_dir.join(format!("{}.json", fleets.len()));
        fleets.push(Fleet::start(
            &servers,
            &sdk_key,
            n,
            &samples,
            args.callgrind_fleet,
            args.raw,
        )?);
    }
    for fleet in &mut fleets {
        fleet.wait_ready()?;
    }
    let connect_sync = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = rss_kib(&servers)?;

    let server_cpu_before = cpu_of(servers.iter().filter_map(Server::pid))?;
    let fleet_cpu_before = cpu_of(fleets.iter().map(|f| f.0.pid()))?;
    let mut writes = Vec::with_capacity(args.changes);
    // Send time (Unix ns, which also identifies the change) → µs until its response.
    let mut acked_after_us = std::collections::HashMap::with_capacity(args.changes);
    for i in 0..args.changes {
        let addr = addrs[i % addrs.len()];
        let sent = unix_ns();
        let begun = Instant::now();
        let view = admin(
            addr,
            "PUT",
            &format!("/api/v1/projects/{PROJECT}/flags/load/environments/production"),
            json!({"version": flag_version, "config": config(Some(sent))}),
        )?;
        let took = begun.elapsed();
        writes.push(took);
        acked_after_us.insert(sent, took.as_micros() as u32);
        flag_version = view["version"].as_i64().context("flag version")?;
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
    let final_version = environment_version(&database)?;
    let mut samples = Vec::new();
    let mut fleet_cpu = Cpu::default();
    for fleet in &mut fleets {
        fleet_cpu += fleet.finish(final_version)?;
    }
    let server_cpu = cpu_of(servers.iter().filter_map(Server::pid))? - server_cpu_before;
    let fleet_cpu = fleet_cpu - fleet_cpu_before;
    let deliveries = (args.clients * args.changes) as f64;
    for i in 0..fleets.len() {
        let bytes = std::fs::read(samples_dir.join(format!("{i}.json")))?;
        samples.extend(serde_json::from_slice::<Vec<(u64, u32)>>(&bytes)?);
    }
    let _ = std::fs::remove_dir_all(&samples_dir);
    let fanout = servers
        .iter()
        .map(|s| summary_ms(s.addr, "stream_fanout_seconds"))
        .collect::<Result<Vec<_>>>()?;
    let patch_read = servers
        .iter()
        .map(|s| summary_ms(s.addr, "stream_patch_read_seconds"))
        .collect::<Result<Vec<_>>>()?;
    for server in servers {
        server.stop()?;
    }
    drop(database);

    let mut from_sent: Vec<u32> = samples.iter().map(|&(_, us)| us).collect();
    let mut from_ack: Vec<u32> = samples
        .iter()
        .map(|(sent, us)| us.saturating_sub(acked_after_us.get(sent).copied().unwrap_or(0)))
        .collect();
    from_sent.sort_unstable();
    from_ack.sort_unstable();
    let mut write_us: Vec<u32> = writes.iter().map(|d| d.as_micros() as u32).collect();
    write_us.sort_unstable();
    let per_connection = (rss_after.saturating_sub(rss_before)) as f64 / args.clients as f64;
    let result = json!({
        "client": if args.raw { "raw" } else { "sdk" },
        "clients": args.clients,
        "replicas": args.replicas,
        "changes": args.changes,
        "flags": args.flags,
        "latency_ms": percentiles(&from_sent),
        "latency_from_ack_ms": percentiles(&from_ack),
        "write_ms": percentiles(&write_us),
        "cpu_us_per_delivery": {
            "server": server_cpu.per(deliveries),
            "fleet": fleet_cpu.per(deliveries),
        },
        "server_fanout_ms": fanout,
        "server_patch_read_ms": patch_read,
        "delivered": round3(samples.len() as f64 / (args.clients * args.changes) as f64),
        "connect_sync_ms": round3(connect_sync.as_secs_f64() * 1e3),
        "rss_per_idle_connection_kib": round3(per_connection),
        "server_rss_mib": round3(rss_after as f64 / 1024.0),
    });
    println!("{result}");
    Ok(())
}

/// A `push-fleet` process.
struct Fleet(JsonChild);

impl Fleet {
    fn start(
        servers: &[Server],
        sdk_key: &str,
        clients: usize,
        samples: &std::path::Path,
        callgrind: bool,
        raw: bool,
    ) -> Result<Fleet> {
        let exe = server::binary("release").with_file_name("push-fleet");
        let mut cmd = if callgrind {
            let out = flagpole_tests::workspace_root().join("target/callgrind.push-fleet.%p");
            let mut cmd = Command::new("valgrind");
            cmd.arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&exe);
            cmd
        } else {
            Command::new(&exe)
        };
        for server in servers {
            cmd.arg("--url").arg(server.url());
        }
        if raw {
            cmd.arg("--raw");
        }
        cmd.args([
            "--sdk-key",
            sdk_key,
            "--clients",
            &clients.to_string(),
            "--samples",
        ])
        .arg(samples)
        .env("RUST_LOG", "warn");
        Ok(Fleet(JsonChild::spawn(&mut cmd, "push-fleet")?))
    }

    fn wait_ready(&mut self) -> Result<()> {
        self.0.expect("ready").map(drop)
    }

    /// Tells the fleet the final version and waits for it to finish; returns the CPU
    /// time it had used once every client held that version (before closing them).
    fn finish(&mut self, final_version: i64) -> Result<Cpu> {
        writeln!(self.0.stdin, "final {final_version}")?;
        let message = self.0.message()?;
        let cpu = cpu_of([self.0.pid()]);
        let status = self.0.child.wait()?;
        if message["done"] != true || !status.success() {
            bail!("push-fleet failed ({status}): {message}");
        }
        cpu
    }
}

/// The `production` environment's data version of project [`PROJECT`].
fn environment_version(database: &FreshDatabase) -> Result<i64> {
    let out = psql(
        &database.url,
        &format!(
            "select e.data_version from environment e join project p on p.id = e.project_id \
             where p.key = '{PROJECT}' and e.key = 'production'"
        ),
    )?;
    out.trim()
        .parse()
        .with_context(|| format!("data_version: {out:?}"))
}

/// Project `load`, boolean flag `load` on in production, `flags - 1` other flags, and an
/// SDK key.
fn seed(addr: SocketAddr, flags: usize) -> Result<String> {
    admin(addr, "POST", "/api/v1/projects", json!({"key": PROJECT}))?;
    admin(
        addr,
        "POST",
        &format!("/api/v1/projects/{PROJECT}/flags"),
        json!({"key": "load"}),
    )?;
    admin(
        addr,
        "PUT",
        &format!("/api/v1/projects/{PROJECT}/flags/load/environments/production"),
        json!({"version": 1, "config": config(None)}),
    )?;
    for i in 1..flags {
        let key = format!("other-{i}");
        admin(
            addr,
            "POST",
            &format!("/api/v1/projects/{PROJECT}/flags"),
            json!({"key": key, "name": format!("Other flag {i}"),
                   "description": "Held by every client, never changed by the run."}),
        )?;
        admin(
            addr,
            "PUT",
            &format!("/api/v1/projects/{PROJECT}/flags/{key}/environments/production"),
            json!({"version": 1, "config": other_config(i)}),
        )?;
    }
    let created = admin(
        addr,
        "POST",
        &format!("/api/v1/projects/{PROJECT}/environments/production/sdk-keys"),
        json!({"name": "load-push"}),
    )?;
    created["key"]
        .as_str()
        .map(str::to_owned)
        .context("SDK key")
}

/// A typical flag: on for one country list, a 10% canary for everyone else.
fn other_config(i: usize) -> Value {
    json!({"enabled": true, "off_variant": "off",
           "rules": [{"id": format!("r{i}"), "clauses": [
               {"attribute": "country", "op": "in", "values": ["NZ", "AU", "CA"]}],
               "serve": {"variant": "on"}}],
           "default_serve": {"rollout": {"weights": [
               {"variant": "on", "weight": 10_000}, {"variant": "off", "weight": 90_000}]}}})
}

/// The `load` flag's config; a change carries its send time as a target key.
fn config(sent_ns: Option<u64>) -> Value {
    let targets = match sent_ns {
        Some(ns) => json!([{"variant": "on", "keys": [format!("t{ns}")]}]),
        None => json!([]),
    };
    json!({"enabled": true, "off_variant": "off", "targets": targets,
           "default_serve": {"rollout": {"weights": [
               {"variant": "on", "weight": 50_000}, {"variant": "off", "weight": 50_000}]}}})
}

/// p50/p99/max in ms of one of a server's own timings, from /metrics:
/// `stream_fanout_seconds` (from a patch being published by its hub to its bytes handed
/// to one connection's socket) or `stream_patch_read_seconds` (the database read that
/// builds each patch, before it is published).
fn summary_ms(addr: SocketAddr, name: &str) -> Result<Value> {
    let (status, text) = server::request(addr, "GET", "/metrics", None, None)?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let quantile = |q: &str| -> Option<f64> {
        let prefix = format!("{name}{{quantile=\"{q}\"}} ");
        let line = text.lines().find(|l| l.starts_with(&prefix))?;
        line[prefix.len()..]
            .trim()
            .parse::<f64>()
            .ok()
            .map(|s| round3(s * 1e3))
    };
    Ok(json!({"p50": quantile("0.5"), "p99": quantile("0.99"), "max": quantile("1")}))
}

/// Sum of the servers' resident set sizes.
fn rss_kib(servers: &[Server]) -> Result<u64> {
    let mut total = 0;
    for server in servers {
        let pid = server.pid().context("server exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("VmRSS")?;
    }
    Ok(total)
}
