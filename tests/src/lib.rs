//! Shared harness for running Flagpole from the outside: locating the workspace and its
//! build output, and starting the real services (Postgres, `flagpole` processes) that the
//! end-to-end tests, the steps of `cargo xtask test` and the benchmarks
//! (crates/flagpole-bench) need.
//!
//! Only std, anyhow and serde_json: xtask links this, and xtask must build in seconds on a
//! fresh machine, before anything else of the workspace.

use std::path::PathBuf;

pub mod postgres;
pub mod process;
pub mod server;

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
