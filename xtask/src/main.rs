//! `cargo xtask`: what cargo alone cannot do (the full test run, benchmark tables, codegen,
//! load tests).

use anyhow::Result;
use clap::Parser;

mod bench_eval;
mod postgres;
mod run;
mod test;
mod util;

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
}

fn main() -> Result<()> {
    match Cmd::parse() {
        Cmd::Run(args) => run::run(args),
        Cmd::Test(args) => test::run(args),
        Cmd::BenchEval(args) => bench_eval::run(args),
    }
}
