//! Architecture invariants that span crates, checked mechanically.

mod layers;
mod source;

use std::process::Command;

use flagpole_tests::workspace_root;

/// flagpole-core is pure: no async runtime, no database, no HTTP, in its normal
/// (non-dev) dependency tree. The server and SDK both evaluate through it; if it did IO,
/// evaluation could block or fail.
#[test]
fn core_has_no_io_dependencies() {
    assert_no_io_dependencies("flagpole-core");
}

/// flagpole-stats is pure as well: experiment results and the rollout guardian's
/// decisions are functions of aggregates, so they can be recomputed anywhere (and checked
/// against gbstats) from the numbers an audit entry records.
#[test]
fn stats_has_no_io_dependencies() {
    assert_no_io_dependencies("flagpole-stats");
}

fn assert_no_io_dependencies(package: &str) {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&package),
        "unexpected cargo tree output: {tree}"
    );
    let forbidden = [
        "tokio",
        "sqlx",
        "axum",
        "hyper",
        "reqwest",
        "tokio-tungstenite",
        "tungstenite",
        "mio",
        "async-std",
    ];
    for name in names {
        assert!(
            !forbidden.contains(&name),
            "{package} depends on IO crate `{name}`:\n{tree}"
        );
    }
}
