//! `cargo xtask sim-guard`: the rollout guardian's decision simulated over whole release
//! plans (flagpole-stats' `sim-guard` binary), failing when its false rollback rate or its
//! share of regressions caught before the 25% step misses issue 17's thresholds.
//!
//! Standalone it builds the binary in release (seconds of simulation either way; the
//! release build is what a person waits for least from cold). `cargo xtask test` runs the
//! debug binary its workspace build already made instead of building anything again.

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use flagpole_tests::process::{cargo, run};
use flagpole_tests::target_dir;

/// Extra arguments for the binary (`--seed N`, `--runs N`).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// RNG seed.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Plans simulated per scenario.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
}

pub(crate) fn run_args(args: Args) -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "flagpole-stats",
        "--bin",
        "sim-guard",
    ]))?;
    simulate(
        &target_dir().join("release/sim-guard"),
        args.seed,
        args.runs,
    )
}

/// The CI step, after `workspace_build::flagpole` built every target in debug.
pub(crate) fn check() -> Result<()> {
    simulate(&target_dir().join("debug/sim-guard"), 17, 1000)
}

fn simulate(binary: &Path, seed: u64, runs: u64) -> Result<()> {
    // The binary prints its JSON line and exits non-zero when a threshold is missed.
    run(Command::new(binary)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--runs")
        .arg(runs.to_string()))
}
