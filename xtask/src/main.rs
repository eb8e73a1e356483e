//! `cargo xtask`: what cargo alone cannot do (the full test run, benchmark tables, codegen,
//! load tests).

use anyhow::Result;
use clap::Parser;

mod bench_eval;
mod bench_writes;
mod codegen;
mod deploy_check;
mod json_child;
mod load_ofrep;
mod load_push;
mod measure;
mod ofrep_client;
mod ofrep_server;
mod postgres;
mod push_floor;
mod run;
mod test;
mod util;
mod web_ui;

#[derive(Parser)]
#[command(about = "Flagpole project automation")]
enum Cmd {
    /// Build and run Flagpole locally on embedded SQLite.
    Run(run::Args),
    /// Run every test: formatting, lints, unit, integration and end-to-end, starting
    /// Postgres when it is not running. This is what CI runs.
    Test(test::Args),
    /// Run the evaluation benchmarks (short) and print one JSON line per case.
    BenchEval(bench_eval::Args),
    /// Time the kill switch (toggle) through the API in a project of N flags (release
    /// server, real Postgres); prints one JSON line.
    BenchToggle(bench_writes::ToggleArgs),
    /// Time flag writes (create, config replace, toggle) through the API in an empty
    /// project and in one of N flags, in the same run (release server, SQLite and
    /// Postgres); prints one JSON line per backend.
    BenchWrites(bench_writes::Args),
    /// Regenerate committed generated files (openapi/openapi.json); `--check` fails if
    /// they are stale.
    Codegen(codegen::Args),
    /// Check deploy/: every YAML parses; the Kubernetes, compose, Dockerfile and nginx
    /// settings zero-downtime deploys rely on are present and consistent.
    CheckDeploy,
    /// Load-test OFREP single-flag evaluation against a trivial axum server with wrk
    /// (release builds) and print one JSON line.
    LoadOfrep(load_ofrep::Args),
    /// Load-test push: change propagation from a write to many SDK clients, over one or
    /// more replicas (release builds, real Postgres); prints one JSON line.
    LoadPush(load_push::Args),
    /// The kernel's floor under load-push: one message to N loopback TCP connections with
    /// nothing else (no WebSocket, JSON or runtime); prints one JSON line.
    PushFloor(push_floor::Args),
    /// Only the OpenFeature-client step of `test`: the Node OFREP provider against a
    /// running debug server.
    OfrepClient,
    /// Only the dashboard steps of `test`: build web-ui, vitest, and the browser scenario
    /// against a debug server on a fresh Postgres database.
    TestWeb,
}

fn main() -> Result<()> {
    match Cmd::parse() {
        Cmd::Run(args) => run::run(args),
        Cmd::Test(args) => test::run(args),
        Cmd::BenchEval(args) => bench_eval::run(args),
        Cmd::BenchToggle(args) => bench_writes::run_toggle(args),
        Cmd::BenchWrites(args) => bench_writes::run(args),
        Cmd::Codegen(args) => codegen::run(args),
        Cmd::CheckDeploy => deploy_check::run(),
        Cmd::LoadOfrep(args) => load_ofrep::run(args),
        Cmd::LoadPush(args) => load_push::run(args),
        Cmd::PushFloor(args) => push_floor::run(args),
        Cmd::OfrepClient => ofrep_client::run(),
        Cmd::TestWeb => web_ui::test_all(),
    }
}
