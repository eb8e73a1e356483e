//! `cargo xtask run`: Flagpole on embedded SQLite, no set-up, with the dashboard built
//! first (the server embeds `web-ui/dist` and serves it at `/`).

use anyhow::Result;

use flagpole_tests::process::{cargo, run as sh};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

pub(crate) fn run(args: Args) -> Result<()> {
    crate::web_ui::build()?;
    sh(cargo().args([
        "run",
        "--release",
        "-p",
        "flagpole",
        "--",
        "serve",
        "--log-format",
        "pretty",
        "--listen",
        &args.listen,
    ]))
}
