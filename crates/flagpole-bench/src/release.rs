//! The release builds the tools measure: the `flagpole` server and this crate's helper
//! binaries (`baseline`, `push-fleet`, `push-floor`), found next to each other in the
//! target directory.

use anyhow::Result;
use flagpole_tests::process::{cargo, run};

/// Builds them in one cargo invocation, so both packages share one feature resolution and
/// flagpole-server is compiled once (two invocations resolve features separately). It is
/// the resolution of `cargo run --release -p flagpole-bench` too (this crate's dependencies
/// cover the server binary's), so after `cargo xtask <tool>` this finds nothing to build.
pub(crate) fn build() -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "flagpole",
        "-p",
        "flagpole-bench",
        "--bins",
    ]))
}
