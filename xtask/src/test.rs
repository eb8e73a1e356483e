//! `cargo xtask test`: every test, as CI runs it, on a fresh machine.
//!
//! One build is shared by everything (a single target dir; nextest runs all test binaries
//! of the workspace from one compilation).

use anyhow::Result;

use crate::postgres;
use crate::util::{cargo, have, run as sh};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Skip `cargo fmt --check` and clippy (faster local iteration).
    #[arg(long)]
    no_lint: bool,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let started = std::time::Instant::now();
    // The dashboard first: the server embeds web-ui/dist, and its build checks that the
    // generated API types match openapi/openapi.json.
    crate::web_ui::build()?;
    if !args.no_lint {
        sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
        sh(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // The committed OpenAPI document must match the code.
    crate::codegen::check()?;

    let pg = postgres::ensure()?;
    postgres::drop_stale_test_databases(&pg)?;
    eprintln!("postgres: using {pg}");

    if have("cargo-nextest") {
        sh(cargo()
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .env("FLAGPOLE_TEST_PG_URL", &pg))?;
    } else {
        sh(cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .env("FLAGPOLE_TEST_PG_URL", &pg))?;
    }
    // The dashboard: unit tests, then the browser scenario against a real server on a
    // fresh Postgres database.
    crate::web_ui::unit_tests()?;
    crate::web_ui::e2e(&pg)?;
    // A real OpenFeature SDK (Node, OFREP provider) against a running server.
    crate::ofrep_client::run()?;
    // nextest does not run doctests.
    sh(cargo().args(["test", "--workspace", "--doc"]))?;
    eprintln!(
        "xtask test: all passed in {} s",
        started.elapsed().as_secs()
    );
    Ok(())
}
