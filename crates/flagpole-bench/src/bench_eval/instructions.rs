//! `cargo xtask bench-eval --instructions`: instructions per evaluation under valgrind's
//! callgrind, for Flagpole with counting off and on and for yggdrasil, one JSON line per
//! case:
//! `{"case": "a_no_rules", "flagpole_instr": 124.0, "flagpole_counted_instr": 139.0,
//! "yggdrasil_instr": 412.0, "counting_added_instr": 15.0, "ratio": 3.32}`.
//!
//! Wall time on this machine swings by 2× between runs, so a few nanoseconds cannot be
//! seen in it; callgrind counts the same instructions for the same binary and input
//! whatever else runs. The benchmark binary (`crates/flagpole-core/benches/instructions.rs`)
//! evaluates `n` times in `run_once` and `2n` times in `run_twice`, in one process; the
//! difference of their inclusive counts over `n` is one evaluation, with setup cancelled.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};

const ENGINES: [&str; 3] = ["flagpole", "flagpole_counted", "yggdrasil"];

pub(crate) fn run(root: &Path, cargo: &std::ffi::OsStr, target_dir: &Path, n: u64) -> Result<()> {
    ensure!(n > 0, "--evaluations must be at least 1");
    let exe = build(root, cargo)?;
    let list = Command::new(&exe)
        .arg("--list")
        .output()
        .context("listing the cases")?;
    ensure!(list.status.success(), "{} --list failed", exe.display());
    let out_dir = target_dir.join("bench-eval-instructions");
    std::fs::create_dir_all(&out_dir)?;
    for case in String::from_utf8(list.stdout)?.lines() {
        let mut per_engine = Vec::new();
        for engine in ENGINES {
            let file = out_dir.join(format!("callgrind.{engine}.{case}"));
            per_engine.push(per_evaluation(&exe, engine, case, n, &file)?);
        }
        let [ours, counted, theirs] = per_engine[..] else {
            unreachable!("one figure per engine")
        };
        println!(
            "{{\"case\": {}, \"flagpole_instr\": {}, \"flagpole_counted_instr\": {}, \
             \"yggdrasil_instr\": {}, \"counting_added_instr\": {}, \"ratio\": {}}}",
            json!(case),
            round(ours, 10.0),
            round(counted, 10.0),
            round(theirs, 10.0),
            round(counted - ours, 10.0),
            round(theirs / ours, 100.0),
        );
    }
    Ok(())
}

fn round(x: f64, scale: f64) -> Value {
    json!((x * scale).round() / scale)
}

/// Builds the benchmark binary with the bench profile (as `cargo bench` would run it) and
/// returns its path.
fn build(root: &Path, cargo: &std::ffi::OsStr) -> Result<PathBuf> {
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "bench",
            "-p",
            "flagpole-core",
            "--bench",
            "instructions",
            "--no-run",
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .context("building the instructions benchmark")?;
    ensure!(output.status.success(), "cargo bench --no-run failed");
    for line in String::from_utf8(output.stdout)?.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if message["target"]["name"] == "instructions"
            && let Some(exe) = message["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo did not report the instructions benchmark's executable")
}

/// Instructions per evaluation of `case` by `engine`.
fn per_evaluation(exe: &Path, engine: &str, case: &str, n: u64, file: &Path) -> Result<f64> {
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .args([engine, case, &n.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running valgrind (apt-get install valgrind)")?;
    ensure!(
        status.success(),
        "{engine} {case} under callgrind: {status}"
    );
    let annotated = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(file)
        .stderr(Stdio::null())
        .output()
        .context("running callgrind_annotate")?;
    ensure!(annotated.status.success(), "callgrind_annotate failed");
    let text = String::from_utf8_lossy(&annotated.stdout);
    let once = inclusive(&text, "run_once").with_context(|| format!("{engine} {case}"))?;
    let twice = inclusive(&text, "run_twice").with_context(|| format!("{engine} {case}"))?;
    Ok((twice - once) as f64 / n as f64)
}

/// The inclusive instruction count of `instructions::<function>` in callgrind_annotate's
/// listing. Inlined code splits a function into one line per source file; the entry's
/// line, the largest, holds the whole.
fn inclusive(listing: &str, function: &str) -> Result<u64> {
    let name = format!("instructions::{function}");
    listing
        .lines()
        // The percentage column is padded (`( 4.42%)` or `(14.42%)`), so the name is not
        // at a fixed position: look at every field of the entry lines.
        .filter(|line| !line.contains("=>"))
        .filter(|line| line.split_whitespace().any(|f| f.ends_with(&name)))
        .filter_map(|line| {
            line.split_whitespace()
                .next()?
                .replace(',', "")
                .parse()
                .ok()
        })
        .max()
        .with_context(|| format!("no `{name}` in callgrind's listing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_largest_inclusive_count_of_the_function() {
        let listing = "\
  4,960,015 ( 4.42%)  /x/benches/instructions.rs:instructions::run_twice [/bin]
  2,480,015 ( 2.21%)  /rustc/abc/library/core/src/cmp.rs:instructions::run_once [/bin]
  2,420,001 ( 2.16%)  /x/benches/instructions.rs:instructions::run_once
2,480,015 ( 2.21%)  => /rustc/abc/library/core/src/cmp.rs:instructions::run_once (1x)";
        assert_eq!(inclusive(listing, "run_once").unwrap(), 2_480_015);
        assert_eq!(inclusive(listing, "run_twice").unwrap(), 4_960_015);
        assert!(inclusive(listing, "run_thrice").is_err());
    }
}
