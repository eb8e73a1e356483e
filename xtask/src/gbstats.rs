//! `cargo xtask gbstats`: flagpole-stats against GrowthBook's real engine.
//!
//! gbstats 0.8.0 (and the numpy, scipy and pandas it needs, pinned in
//! `crates/flagpole-stats/tests/gbstats/requirements.txt`) is installed into a virtualenv
//! under target/; `answers.py recompute` asks it for its answers to the committed fixture
//! inputs, into target/gbstats/; then flagpole-stats' conformance test runs against those
//! answers, and also checks that the committed answers still equal them. So CI compares
//! Flagpole with gbstats itself, while `cargo nextest` anywhere (no Python needed) compares
//! it with the committed answers.
//!
//! `--regenerate` rewrites the committed fixtures: the hand-written edge cases plus
//! `RANDOM_CASES` seeded random ones, with gbstats' answers.
//!
//! Unlike the Kubernetes schema check, a missing Python or package index is an error, not
//! a skip: agreement with gbstats is what the statistics promise (issue 16).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use flagpole_tests::process::{cargo, have, run};
use flagpole_tests::{target_dir, workspace_root};

/// Seed and count of the random fixtures; changing either changes fixtures.json.
const SEED: &str = "16";
const RANDOM_CASES: &str = "120";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Rewrite crates/flagpole-stats/tests/gbstats/fixtures.json (inputs and answers).
    #[arg(long)]
    regenerate: bool,
}

pub(crate) fn run_args(args: Args) -> Result<()> {
    if args.regenerate {
        let python = venv()?;
        let dir = fixtures_dir();
        run(Command::new(&python)
            .arg(dir.join("answers.py"))
            .args([
                "generate",
                "--seed",
                SEED,
                "--random",
                RANDOM_CASES,
                "--edge",
            ])
            .arg(dir.join("edge_cases.json"))
            .arg("--out")
            .arg(dir.join("fixtures.json")))?;
    }
    check()
}

/// The CI step: gbstats' answers now, and flagpole-stats' conformance test against them.
pub(crate) fn check() -> Result<()> {
    let python = venv()?;
    let dir = fixtures_dir();
    let out_dir = target_dir().join("gbstats");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let answers = out_dir.join("fixtures.json");
    run(Command::new(&python)
        .arg(dir.join("answers.py"))
        .arg("recompute")
        .arg("--fixtures")
        .arg(dir.join("fixtures.json"))
        .arg("--out")
        .arg(&answers))?;
    // --no-capture: the test prints the counts and the largest deviations.
    if have("cargo-nextest") {
        run(cargo()
            .args([
                "nextest",
                "run",
                "--workspace",
                "--no-capture",
                "-E",
                "binary(gbstats)",
            ])
            .env("FLAGPOLE_GBSTATS_FIXTURES", &answers))
    } else {
        run(cargo()
            .args([
                "test",
                "--workspace",
                "--test",
                "gbstats",
                "--",
                "--nocapture",
            ])
            .env("FLAGPOLE_GBSTATS_FIXTURES", &answers))
    }
}

fn fixtures_dir() -> PathBuf {
    workspace_root().join("crates/flagpole-stats/tests/gbstats")
}

/// The virtualenv's python, installing the pinned requirements first when the venv is
/// missing or was made from a different requirements file.
fn venv() -> Result<PathBuf> {
    let venv = target_dir().join("gbstats-venv");
    let python = venv.join("bin/python");
    let requirements = fixtures_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    eprintln!(
        "gbstats: installing {} into {}",
        requirements.display(),
        venv.display()
    );
    install(&venv, &requirements).context(
        "could not install gbstats (needs python3 with venv and the PyPI index); \
         the conformance check cannot run without it",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

fn install(venv: &Path, requirements: &Path) -> Result<()> {
    if !have("python3") {
        bail!("python3 is not installed");
    }
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements))
}
