//! The one debug build that the steps of `cargo xtask test` share: every target of the
//! workspace, tests included, in a single cargo invocation.
//!
//! Cargo resolves features per invocation. `cargo build -p flagpole` alone leaves out the
//! test-only features (tokio's `test-util`, reqwest's HTTP client in hyper, the server's
//! `test-support`), so its tokio, hyper, axum, sqlx and flagpole-server differ from the test
//! build's and were compiled twice. Built here with the tests, the `flagpole` binary links
//! the very libraries the test binaries link, nextest then finds nothing left to compile,
//! and tests/cluster finds the binary next to its own executable.

use std::path::PathBuf;

use anyhow::Result;
use flagpole_tests::process::{cargo, run};
use flagpole_tests::server;

/// Builds everything (a no-op when nothing changed) and returns the debug `flagpole`
/// binary it made. Every xtask step that runs the server calls this rather than building
/// `-p flagpole` on its own.
pub(crate) fn flagpole() -> Result<PathBuf> {
    run(cargo().args(["build", "--workspace", "--all-targets"]))?;
    Ok(server::binary("debug"))
}
