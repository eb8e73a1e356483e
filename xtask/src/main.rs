//! `cargo xtask`: what cargo alone cannot do (benchmark tables, codegen, load tests).

use anyhow::Result;
use clap::Parser;

mod bench_eval;

#[derive(Parser)]
#[command(about = "Flagpole project automation")]
enum Cmd {
    /// Run the evaluation benchmarks (short) and print one JSON line per case.
    BenchEval(bench_eval::Args),
}

fn main() -> Result<()> {
    match Cmd::parse() {
        Cmd::BenchEval(args) => bench_eval::run(args),
    }
}
