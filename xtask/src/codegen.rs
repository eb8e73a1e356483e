//! `cargo xtask codegen`: writes generated files that are committed, so reviewers see the
//! API change in the diff; `--check` (run by `cargo xtask test`) fails when they are stale.
//!
//! That is `openapi/openapi.json`, produced from the server's own annotations and printed
//! by the `flagpole` binary (`flagpole openapi`, a hidden subcommand; xtask links no server
//! code, see `workspace_build.rs`), and the dashboard's typed client
//! `web-ui/src/api/schema.gen.ts`, generated from that document by openapi-typescript
//! (`npm run gen:api`; `npm run check:api` for `--check`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use flagpole_tests::workspace_root as root;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Do not write: fail if the committed files differ from what would be generated.
    #[arg(long)]
    check: bool,
}

/// One generated file: where it goes and what it should contain.
struct Generated {
    path: PathBuf,
    contents: String,
}

fn generate() -> Result<Vec<Generated>> {
    let flagpole = crate::workspace_build::flagpole()?;
    let printed = Command::new(&flagpole)
        .arg("openapi")
        .output()
        .with_context(|| format!("starting {}", flagpole.display()))?;
    if !printed.status.success() {
        bail!(
            "`flagpole openapi` failed ({}): {}",
            printed.status,
            String::from_utf8_lossy(&printed.stderr)
        );
    }
    let openapi = String::from_utf8(printed.stdout).context("`flagpole openapi` printed")?;
    Ok(vec![Generated {
        path: root().join("openapi/openapi.json"),
        contents: openapi,
    }])
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.check {
        return check();
    }
    for file in generate()? {
        if let Some(dir) = file.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&file.path, &file.contents)
            .with_context(|| format!("writing {}", file.path.display()))?;
        eprintln!("codegen: wrote {}", relative(&file.path));
    }
    crate::web_ui::generate_types()?;
    eprintln!("codegen: wrote web-ui/src/api/schema.gen.ts");
    Ok(())
}

/// Fails, naming every stale file, if a committed file differs from its generated form.
pub(crate) fn check() -> Result<()> {
    let mut stale = Vec::new();
    for file in generate()? {
        let current = std::fs::read_to_string(&file.path).unwrap_or_default();
        if current != file.contents {
            stale.push(relative(&file.path));
        }
    }
    if crate::web_ui::check_types().is_err() {
        stale.push("web-ui/src/api/schema.gen.ts".into());
    }
    if !stale.is_empty() {
        bail!(
            "generated files are stale: {}\n  the API changed without regenerating them; run \
             `cargo xtask codegen` and commit the result",
            stale.join(", ")
        );
    }
    eprintln!("codegen: generated files are up to date");
    Ok(())
}

fn relative(path: &std::path::Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}
