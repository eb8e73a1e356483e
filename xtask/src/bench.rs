//! `cargo xtask bench-* / load-* / push-floor`: forwarded to crates/flagpole-bench, which
//! holds the benchmarks and load tests, so that xtask links none of the server, the SDK or
//! a runtime. `cargo xtask <tool> ARGS` is `cargo run --release -p flagpole-bench -- <tool>
//! ARGS`; `--help` after the tool's name is the tool's own.

use anyhow::Result;
use flagpole_tests::process::{cargo, run as sh};

/// Whatever follows the tool's name. Accepted so that `cargo xtask --help` lists the tools
/// and clap lets any argument through; [`run`] then forwards the command line itself, since
/// clap drops a leading `--` (bench-eval passes what follows `--` on to Criterion).
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct Forward {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    _args: Vec<String>,
}

/// Runs the tool named by this process's first argument with the arguments after it.
pub(crate) fn run() -> Result<()> {
    sh(cargo()
        .args(["run", "--release", "-p", "flagpole-bench", "--"])
        .args(std::env::args_os().skip(1)))
}
