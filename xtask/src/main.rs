//! `cargo xtask`: what cargo alone cannot do (the full test run, codegen, checks, running
//! Flagpole locally). The benchmarks and load tests live in crates/flagpole-bench; their
//! `cargo xtask <tool>` commands forward to it.

use anyhow::Result;
use clap::Parser;

mod bench;
mod codegen;
mod deploy_check;
mod gbstats;
mod ofrep_client;
mod run;
mod sim_guard;
mod test;
mod web_ui;
mod workspace_build;

#[derive(Parser)]
#[command(about = "Flagpole project automation")]
enum Cmd {
    /// Build and run Flagpole locally on embedded SQLite.
    Run(run::Args),
    /// Run every test: formatting, lints, unit, integration and end-to-end, starting
    /// Postgres when it is not running. This is what CI runs.
    Test(test::Args),
    /// Regenerate committed generated files (openapi/openapi.json, the dashboard's API
    /// types); `--check` fails if they are stale.
    Codegen(codegen::Args),
    /// Check deploy/: every YAML parses; the Kubernetes, compose, Dockerfile and nginx
    /// settings zero-downtime deploys rely on are present and consistent.
    CheckDeploy,
    /// Experiment statistics against GrowthBook's gbstats 0.8.0 (installed into
    /// target/gbstats-venv): its answers now, flagpole-stats' conformance test against
    /// them. `--regenerate` rewrites the committed fixtures.
    Gbstats(gbstats::Args),
    /// The rollout guardian simulated (issue 17): 1,000 A/A plans and 1,000 with errors up
    /// by half, one JSON line; fails when a threshold is missed.
    SimGuard(sim_guard::Args),
    /// Only the OpenFeature-client step of `test`: the Node OFREP provider against a
    /// running debug server.
    OfrepClient,
    /// Only the dashboard steps of `test`: build web-ui, vitest, and the browser scenario
    /// against a debug server on a fresh Postgres database.
    TestWeb,
    /// Evaluation benchmarks (short), one JSON line per case [flagpole-bench].
    BenchEval(bench::Forward),
    /// The kill switch through the API in a project of N flags [flagpole-bench].
    BenchToggle(bench::Forward),
    /// An experiment's results at 1,000,000 units and 5,000,000 events [flagpole-bench].
    BenchResults(bench::Forward),
    /// Flag writes in an empty project and at N flags, SQLite and Postgres [flagpole-bench].
    BenchWrites(bench::Forward),
    /// OFREP evaluation under wrk against a trivial axum server [flagpole-bench].
    LoadOfrep(bench::Forward),
    /// A write reaching many SDK clients over one or more replicas [flagpole-bench].
    LoadPush(bench::Forward),
    /// SDK telemetry ingestion under sustained load, real Postgres [flagpole-bench].
    LoadEvents(bench::Forward),
    /// The kernel's floor under load-push: loopback TCP fan-out alone [flagpole-bench].
    PushFloor(bench::Forward),
}

fn main() -> Result<()> {
    match Cmd::parse() {
        Cmd::Run(args) => run::run(args),
        Cmd::Test(args) => test::run(args),
        Cmd::Codegen(args) => codegen::run(args),
        Cmd::CheckDeploy => deploy_check::run(),
        Cmd::Gbstats(args) => gbstats::run_args(args),
        Cmd::SimGuard(args) => sim_guard::run_args(args),
        Cmd::OfrepClient => ofrep_client::run(),
        Cmd::TestWeb => web_ui::test_all(),
        Cmd::BenchEval(_)
        | Cmd::BenchToggle(_)
        | Cmd::BenchResults(_)
        | Cmd::BenchWrites(_)
        | Cmd::LoadOfrep(_)
        | Cmd::LoadPush(_)
        | Cmd::LoadEvents(_)
        | Cmd::PushFloor(_) => bench::run(),
    }
}
