//! `cargo xtask bench-results`: how long an experiment's results take to compute at
//! 1,000,000 units and 5,000,000 events (issue 16 asks for at most 1 s), on a release
//! server over a fresh Postgres database.
//!
//! The experiment is created and started through the API (a binomial primary metric on
//! `purchase`, a sum of its value, a count guardrail on `pageview`). Its per-unit
//! aggregates are then written with SQL as the ingest writer leaves them after those
//! events: every unit exposed once (every 1,000th to both arms, so excluded), 4,000,000
//! pageviews (3 to 5 per unit) and 1,000,000 purchases (2 each by half of the units).
//! Sending the events through the SDK protocol would measure ingestion, which
//! `load-events` does; here only the read is timed: `--samples` sequential
//! `GET …/results`, each on a new loopback connection.

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::measure::percentiles;
use flagpole_tests::postgres::{FreshDatabase, psql};
use flagpole_tests::server::{self, Server, admin, request};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Units in the experiment.
    #[arg(long, default_value_t = 1_000_000)]
    units: u64,
    /// Timed results requests.
    #[arg(long, default_value_t = 20)]
    samples: usize,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.units < 1000 || args.samples == 0 {
        bail!("--units must be at least 1000 and --samples at least 1");
    }
    crate::release::build()?;
    let database = FreshDatabase::create(&flagpole_tests::postgres::ensure()?, "fp_bench_results")?;
    let server = Server::start_on(&server::binary("release"), "warn", Some(&database.url))?;
    let addr = server.addr;
    admin(addr, "POST", "/api/v1/projects", json!({"key": "p"}))?;
    admin(
        addr,
        "POST",
        "/api/v1/projects/p/flags",
        json!({"key": "f"}),
    )?;
    admin(
        addr,
        "POST",
        "/api/v1/projects/p/flags/f/environments/production/toggle",
        json!({"enabled": true}),
    )?;
    let created = admin(
        addr,
        "POST",
        "/api/v1/projects/p/experiments",
        json!({"environment": "production", "flag": "f", "name": "bench",
            "arms": [{"variant": "off", "weight": 50}, {"variant": "on", "weight": 50}],
            "metrics": {
                "primary": {"key": "bought", "kind": "binomial", "event": "purchase"},
                "secondary": [{"key": "revenue", "kind": "sum", "event": "purchase"}],
                "guardrail": [{"key": "views", "kind": "count", "event": "pageview"}]}}),
    )?;
    let id = created["id"].as_i64().context("experiment id")?;
    admin(
        addr,
        "POST",
        &format!("/api/v1/projects/p/experiments/{id}/start"),
        json!({}),
    )?;

    let begun = Instant::now();
    let n = args.units;
    let seed = [
        format!(
            "insert into experiment_unit (experiment_id, unit, variant, first_exposure_at, multiple) \
             select {id}, 'user-' || g, case when g % 2 = 0 then 'off' else 'on' end, \
               1800000000000 + g, case when g % 1000 = 0 then 1 else 0 end \
             from generate_series(1, {n}) g"
        ),
        // 3, 4 or 5 pageviews per unit: 4 per unit on average.
        format!(
            "insert into experiment_unit_metric (experiment_id, metric, unit, a, b) \
             select {id}, 'views', 'user-' || g, 3 + g % 3, 0 from generate_series(1, {n}) g"
        ),
        // Half of the units buy twice: 1 purchase per unit on average.
        format!(
            "insert into experiment_unit_metric (experiment_id, metric, unit, a, b) \
             select {id}, 'bought', 'user-' || g, 1, 0 from generate_series(1, {n}) g \
             where (g * 2654435761) % 7 < 4 and g % 9 <> 0"
        ),
        format!(
            "insert into experiment_unit_metric (experiment_id, metric, unit, a, b) \
             select {id}, 'revenue', unit, 2 * (10 + length(unit) % 7), 0 \
             from experiment_unit_metric where experiment_id = {id} and metric = 'bought'"
        ),
        "analyze experiment_unit; analyze experiment_unit_metric".to_owned(),
    ];
    for sql in &seed {
        psql(&database.url, sql)?;
    }
    let bought: u64 = psql(
        &database.url,
        &format!("select count(*) from experiment_unit_metric where experiment_id = {id} and metric = 'bought'"),
    )?
    .trim()
    .parse()?;
    let seed_s = begun.elapsed().as_secs_f64();
    let events = 4 * n + 2 * bought;
    eprintln!("bench: seeded {n} units ({events} events' aggregates) in {seed_s:.1} s");

    let path = format!("/api/v1/projects/p/experiments/{id}/results");
    let mut micros = Vec::with_capacity(args.samples);
    let mut last = serde_json::Value::Null;
    // One untimed request first: the server's pool and Postgres's caches warm up.
    for i in 0..=args.samples {
        let begun = Instant::now();
        let (status, body) = request(addr, "GET", &path, Some(server::ADMIN_TOKEN), None)?;
        let us = u32::try_from(begun.elapsed().as_micros()).unwrap_or(u32::MAX);
        if status != 200 {
            bail!("results answered {status}: {body}");
        }
        if i > 0 {
            micros.push(us);
        }
        last = serde_json::from_str(&body)?;
    }
    server.stop()?;
    micros.sort_unstable();
    let units: u64 = last["arms"]
        .as_array()
        .context("arms")?
        .iter()
        .filter_map(|a| a["units"].as_u64())
        .sum();
    println!(
        "{}",
        json!({
            "units": n,
            "events": events,
            "included_units": units,
            "excluded_units": last["excluded_multiple_exposures"],
            "metrics": 3,
            "samples": args.samples,
            "results_ms": percentiles(&micros),
            "seed_s": (seed_s * 10.0).round() / 10.0,
            "backend": "postgres",
        })
    );
    Ok(())
}
