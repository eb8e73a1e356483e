//! `cargo xtask push-floor`: the kernel's own cost of fanning one message out to N
//! loopback TCP connections on this machine (release `push-floor` writer and reader
//! processes, no WebSocket, no JSON, no async runtime). It is the floor under
//! `load-push`: a real server and real SDKs do all of this plus their own work, on the
//! same cores. Prints one JSON line:
//! - `latency_ms`: p50/p99/max from the writer stamping a round's message (just before
//!   its first `write`) to each connection reading it, over every (connection, round);
//! - `cpu_us_per_delivery`: CPU time (user, system) of the writer and of the reader per
//!   (connection, round): the kernel's share of a delivery is almost all of it.

use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::json_child::JsonChild;
use crate::measure::{cpu_of, percentiles, round3};
use flagpole_tests::server;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Connections.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Messages sent to every connection.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Pause between rounds, in milliseconds.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Message size: 439 is a one-flag `load-push` patch (435 bytes) in its WebSocket frame.
    #[arg(long, default_value_t = 439)]
    bytes: usize,
    /// Writer threads, and reader threads (the server's workers, the fleet's).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.clients == 0 || args.rounds == 0 || args.threads == 0 || args.bytes < 8 {
        bail!("--clients, --rounds and --threads must be at least 1, --bytes at least 8");
    }
    // One connection per file on each side; one process may hold at most ~20,000 here.
    if args.clients > 19_000 {
        bail!("--clients over 19,000 would pass the open-file limit of one process");
    }
    crate::release::build()?;
    let exe = server::binary("release").with_file_name("push-floor");
    let samples =
        std::env::temp_dir().join(format!("flagpole-push-floor-{}.json", std::process::id()));
    // What both sides are told: how many connections, threads and bytes per message.
    let shape = |role: &str| {
        let mut cmd = Command::new(&exe);
        cmd.arg(role)
            .args(["--clients", &args.clients.to_string()])
            .args(["--threads", &args.threads.to_string()])
            .args(["--bytes", &args.bytes.to_string()]);
        cmd
    };
    let mut writer = JsonChild::spawn(&mut shape("writer"), "push-floor writer")?;
    let listen = writer.message()?["listen"]
        .as_str()
        .context("writer's address")?
        .to_owned();
    let mut reader = JsonChild::spawn(
        shape("reader")
            .args(["--connect", &listen])
            .args(["--rounds", &args.rounds.to_string()])
            .arg("--samples")
            .arg(&samples),
        "push-floor reader",
    )?;
    writer.expect("ready")?;
    reader.expect("ready")?;
    std::thread::sleep(Duration::from_millis(500));

    let cpu = |side: &JsonChild| cpu_of([side.pid()]);
    let (writer_before, reader_before) = (cpu(&writer)?, cpu(&reader)?);
    for _ in 0..args.rounds {
        writeln!(writer.stdin, "send")?;
        writer.expect("sent")?;
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
    reader.expect("done")?;
    let deliveries = (args.clients * args.rounds) as f64;
    let writer_cpu = (cpu(&writer)? - writer_before).per(deliveries);
    let reader_cpu = (cpu(&reader)? - reader_before).per(deliveries);

    let recorded: Vec<(u64, u32)> = serde_json::from_slice(&std::fs::read(&samples)?)?;
    let _ = std::fs::remove_file(&samples);
    let mut micros: Vec<u32> = recorded.iter().map(|&(_, us)| us).collect();
    micros.sort_unstable();
    let result = json!({
        "clients": args.clients,
        "rounds": args.rounds,
        "bytes": args.bytes,
        "threads": args.threads,
        "delivered": round3(recorded.len() as f64 / deliveries),
        "latency_ms": percentiles(&micros),
        "cpu_us_per_delivery": {"writer": writer_cpu, "reader": reader_cpu},
    });
    println!("{result}");
    Ok(())
}
