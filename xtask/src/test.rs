//! `cargo xtask test`: every test, as CI runs it, on a fresh machine.
//!
//! One build is shared by everything: clippy's check, then one `cargo build --workspace
//! --all-targets` (`workspace_build.rs`) that makes the test binaries and the `flagpole`
//! binary from one feature resolution; codegen, nextest, the browser and OpenFeature steps
//! and the doctests reuse it.

use anyhow::Result;
use flagpole_tests::postgres;
use flagpole_tests::process::{cargo, have, run as sh};

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
    // Every target, the `flagpole` binary with them: tests/cluster starts it as real
    // `flagpole serve` processes and needs it next to the test executables (nextest
    // builds only test targets).
    crate::workspace_build::flagpole()?;
    // The committed OpenAPI document must match the code.
    crate::codegen::check()?;
    // deploy/: YAML parses, rollout settings present and consistent.
    crate::deploy_check::run()?;
    // Experiment statistics against the real gbstats (a few seconds once its venv exists).
    crate::gbstats::check()?;
    // The rollout guardian simulated: false rollbacks and regressions caught (about 4 s,
    // with the debug binary the workspace build made).
    crate::sim_guard::check()?;

    let pg = postgres::ensure()?;
    postgres::drop_stale_test_databases(&pg)?;
    eprintln!("postgres: using {pg}");
    // tests/cluster runs real nginx in front of the servers, and real Prometheus and
    // Alertmanager pulling a kill switch.
    ensure_packages()?;

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

/// Programs tests/cluster runs, with the Debian package that provides each.
const PACKAGES: &[(&str, &str)] = &[
    ("/usr/sbin/nginx", "nginx"),
    ("/usr/bin/prometheus", "prometheus"),
    (
        "/usr/bin/prometheus-alertmanager",
        "prometheus-alertmanager",
    ),
];

/// The Debian packages of [`PACKAGES`] that are missing, installed in one go. Their own
/// services are not used (and do not start in a container): the tests run each program
/// in the foreground with a generated configuration.
fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(program, _)| !std::path::Path::new(program).exists())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "not installed: {}; installing the Debian packages",
        missing.join(", ")
    );
    let install = || {
        sh(std::process::Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        // A fresh machine may have no package lists yet.
        sh(std::process::Command::new("apt-get").args(["update"]))?;
        install()?;
    }
    Ok(())
}
