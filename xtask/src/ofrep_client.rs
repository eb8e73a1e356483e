//! The OpenFeature-client step of `cargo xtask test`: the real OpenFeature Node SDK with its
//! OFREP provider (tests/ofrep-client) against a real `flagpole` process, seeded through the
//! REST API.

use std::process::Command;

use anyhow::{Context, Result, bail};
use flagpole_tests::process::{have, run as sh};
use flagpole_tests::server::{self, Server};
use flagpole_tests::workspace_root as root;

pub(crate) fn run() -> Result<()> {
    if !have("npm") || !have("node") {
        bail!("the OpenFeature client test needs node and npm (Node 18 or later) on PATH");
    }
    let dir = root().join("tests/ofrep-client");
    sh(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir))?;
    let flagpole = crate::workspace_build::flagpole()?;

    let server = Server::start(&flagpole, "warn")?;
    let sdk_key = server::seed(server.addr).context("seeding the server")?;
    let status = Command::new("node")
        .arg("ofrep-client.mjs")
        .current_dir(&dir)
        .env("FLAGPOLE_URL", server.url())
        .env("FLAGPOLE_SDK_KEY", sdk_key)
        .status()
        .context("starting node")?;
    let log = server.log.clone();
    server.stop()?;
    if !status.success() {
        bail!(
            "the OpenFeature client test failed ({status}); server log: {}",
            log.display()
        );
    }
    Ok(())
}
