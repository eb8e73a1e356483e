//! `cargo xtask bench-eval`: placeholder replaced by the benchmark runner.

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> Result<()> {
    bail!("bench-eval is being written")
}
