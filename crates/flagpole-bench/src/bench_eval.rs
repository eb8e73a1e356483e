//! `cargo xtask bench-eval`: runs a short version of the evaluation benchmarks
//! (`crates/flagpole-core/benches/eval.rs`) and prints one JSON line per case:
//! `{"case": "a_no_rules", "flagpole_ns": 21.3, "flagpole_counted_ns": 22.1,
//! "counting_added_ns": 0.8, "yggdrasil_ns": 97.0, "ratio": 4.55}`, where `counted` is the
//! same snapshot counting its evaluations (telemetry on), measured in the same run.
//! With `--instructions`, instructions per evaluation under callgrind instead
//! ([`instructions`]).
//!
//! Medians are read back from Criterion's `estimates.json` files rather than parsed from its
//! console output, which is meant for people and changes between versions. Cargo's own
//! output and Criterion's report go to stderr, so stdout holds only the JSON lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};

mod instructions;

/// Benchmark groups of interest are `eval/<case>`, each with these three functions.
const GROUP_PREFIX: &str = "eval/";
const OURS: &str = "flagpole";
const COUNTED: &str = "flagpole_counted";
const THEIRS: &str = "yggdrasil";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Count instructions per evaluation under valgrind's callgrind instead of timing.
    #[arg(long)]
    instructions: bool,
    /// With --instructions: evaluations per measurement (n and 2n are run).
    #[arg(long, default_value_t = 20_000)]
    evaluations: u64,
    /// Criterion warm-up time per benchmark, in seconds.
    #[arg(long, default_value_t = 1)]
    warm_up_time: u32,
    /// Criterion measurement time per benchmark, in seconds.
    #[arg(long, default_value_t = 2)]
    measurement_time: u32,
    /// Extra arguments for the benchmark binary, e.g. a filter such as `eval/d_`.
    #[arg(last = true)]
    criterion_args: Vec<String>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let root = flagpole_tests::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = target_dir(&root, &cargo)?;
    if args.instructions {
        return instructions::run(&root, &cargo, &target_dir, args.evaluations);
    }
    // Results older than this run (a previous or filtered-out benchmark) are ignored.
    let started = SystemTime::now();

    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["bench", "-p", "flagpole-core", "--bench", "eval", "--"])
        .args(["--warm-up-time", &args.warm_up_time.to_string()])
        .args(["--measurement-time", &args.measurement_time.to_string()])
        .args(&args.criterion_args)
        .stdout(std::io::stderr())
        .status()
        .context("running cargo bench")?;
    ensure!(status.success(), "cargo bench failed: {status}");

    let cases = read_medians(&target_dir.join("criterion"), started)?;
    if cases.is_empty() {
        bail!("no `{GROUP_PREFIX}*` benchmark results were written by this run");
    }
    for (case, medians) in cases {
        let ours = medians.get(OURS).copied();
        let counted = medians.get(COUNTED).copied();
        let theirs = medians.get(THEIRS).copied();
        // How many times faster we are; written by hand to keep the fields in this order.
        let ratio = ours.zip(theirs).map(|(o, t)| t / o);
        println!(
            "{{\"case\": {}, \"flagpole_ns\": {}, \"flagpole_counted_ns\": {}, \
             \"counting_added_ns\": {}, \"yggdrasil_ns\": {}, \"ratio\": {}}}",
            json!(case),
            number(ours),
            number(counted),
            number(ours.zip(counted).map(|(o, c)| c - o)),
            number(theirs),
            number(ratio),
        );
    }
    Ok(())
}

/// A JSON number rounded to 2 decimals, or `null`.
fn number(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |x| json!((x * 100.0).round() / 100.0))
}

/// Cargo's target directory, as `cargo metadata` reports it (honours `CARGO_TARGET_DIR`
/// and `build.target-dir`).
fn target_dir(root: &Path, cargo: &std::ffi::OsStr) -> Result<PathBuf> {
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    ensure!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Median (ns) of every `eval/<case>` benchmark written since `since`, by case then function.
///
/// Criterion writes `<group dir>/<function dir>/new/{benchmark,estimates}.json`; the
/// directory names are sanitised ids, so the real ids are taken from `benchmark.json`.
fn read_medians(
    criterion_dir: &Path,
    since: SystemTime,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let mut cases: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let groups = std::fs::read_dir(criterion_dir)
        .with_context(|| format!("reading {}", criterion_dir.display()))?;
    for group in groups {
        let group = group?.path();
        if !group.is_dir() {
            continue;
        }
        for function in std::fs::read_dir(&group)? {
            let new = function?.path().join("new");
            let (benchmark, estimates) = (new.join("benchmark.json"), new.join("estimates.json"));
            if !estimates.is_file() || std::fs::metadata(&estimates)?.modified()? < since {
                continue;
            }
            let id = read_json(&benchmark)?;
            let (Some(group_id), Some(function_id)) =
                (id["group_id"].as_str(), id["function_id"].as_str())
            else {
                continue;
            };
            let Some(case) = group_id.strip_prefix(GROUP_PREFIX) else {
                continue;
            };
            let median = read_json(&estimates)?["median"]["point_estimate"]
                .as_f64()
                .with_context(|| format!("no median in {}", estimates.display()))?;
            cases
                .entry(case.to_string())
                .or_default()
                .insert(function_id.to_string(), median);
        }
    }
    Ok(cases)
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
