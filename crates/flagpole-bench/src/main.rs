//! `flagpole-bench`: Flagpole's benchmarks and load tests, each printing one JSON line per
//! result on stdout. Run through `cargo xtask <tool>` (which is
//! `cargo run --release -p flagpole-bench -- <tool>`); the tools build the release server and
//! their helper binaries themselves (`release.rs`).

use anyhow::Result;
use clap::Parser;

mod bench_eval;
mod bench_results;
mod bench_writes;
mod json_child;
mod load_events;
mod load_ofrep;
mod load_push;
mod measure;
mod push_floor;
mod release;

#[derive(Parser)]
#[command(about = "Flagpole's benchmarks and load tests")]
enum Tool {
    /// Run the evaluation benchmarks (short) and print one JSON line per case.
    BenchEval(bench_eval::Args),
    /// Time an experiment's results at 1,000,000 units and 5,000,000 events (release
    /// server, real Postgres); prints one JSON line.
    BenchResults(bench_results::Args),
    /// Time the kill switch (toggle) through the API in a project of N flags (release
    /// server, real Postgres); prints one JSON line.
    BenchToggle(bench_writes::ToggleArgs),
    /// Time flag writes (create, config replace, toggle) through the API in an empty
    /// project and in one of N flags, in the same run (release server, SQLite and
    /// Postgres); prints one JSON line per backend.
    BenchWrites(bench_writes::Args),
    /// Load-test OFREP single-flag evaluation against a trivial axum server with wrk
    /// (release builds) and print one JSON line.
    LoadOfrep(load_ofrep::Args),
    /// Load-test push: change propagation from a write to many SDK clients, over one or
    /// more replicas (release builds, real Postgres); prints one JSON line.
    LoadPush(load_push::Args),
    /// Load-test telemetry ingestion: many stream connections reporting evaluation counts,
    /// exposures and events for a sustained period (release server, real Postgres);
    /// prints one JSON line.
    LoadEvents(load_events::Args),
    /// The kernel's floor under load-push: one message to N loopback TCP connections with
    /// nothing else (no WebSocket, JSON or runtime); prints one JSON line.
    PushFloor(push_floor::Args),
}

fn main() -> Result<()> {
    match Tool::parse() {
        Tool::BenchEval(args) => bench_eval::run(args),
        Tool::BenchResults(args) => bench_results::run(args),
        Tool::BenchToggle(args) => bench_writes::run_toggle(args),
        Tool::BenchWrites(args) => bench_writes::run(args),
        Tool::LoadOfrep(args) => load_ofrep::run(args),
        Tool::LoadPush(args) => load_push::run(args),
        Tool::LoadEvents(args) => load_events::run(args),
        Tool::PushFloor(args) => push_floor::run(args),
    }
}
