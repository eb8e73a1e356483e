//! `cargo xtask bench-toggle`: how long the kill switch takes as the API sees it, in a
//! project of `--flags` flags (release server, fresh Postgres database). Prints one JSON
//! line: p50/p90/p99/max of `--toggles` sequential toggles of one flag in `production`,
//! from the request being sent to its response (each on a new loopback connection).

use std::time::Instant;

use anyhow::{Result, bail};
use serde_json::json;

use crate::measure::percentiles;
use crate::ofrep_server::{self, Server, admin};
use crate::postgres::FreshDatabase;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Flags in the project (one of them is toggled).
    #[arg(long, default_value_t = 500)]
    flags: usize,
    /// Toggles to time.
    #[arg(long, default_value_t = 200)]
    toggles: usize,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.flags == 0 || args.toggles == 0 {
        bail!("--flags and --toggles must be at least 1");
    }
    ofrep_server::build_release()?;
    let pg = crate::postgres::ensure()?;
    let database = FreshDatabase::create(&pg, "fp_toggle")?;
    let server = Server::start_on(
        &ofrep_server::binary("release"),
        "warn",
        Some(&database.url),
    )?;
    admin(server.addr, "POST", "/api/v1/projects", json!({"key": "p"}))?;
    for i in 0..args.flags {
        admin(
            server.addr,
            "POST",
            "/api/v1/projects/p/flags",
            json!({"key": format!("f{i}")}),
        )?;
    }
    let mut micros = Vec::with_capacity(args.toggles);
    for i in 0..args.toggles {
        let begun = Instant::now();
        admin(
            server.addr,
            "POST",
            "/api/v1/projects/p/flags/f0/environments/production/toggle",
            json!({"enabled": i % 2 == 0}),
        )?;
        micros.push(u32::try_from(begun.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
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
