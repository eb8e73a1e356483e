//! A helper process driven over its pipes, one JSON object per line: how the load tools
//! talk to their release helper binaries (`push-fleet`, `push-floor`).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The process, its stdin for commands and its stdout for JSON lines. Killed when dropped.
pub(crate) struct JsonChild {
    pub(crate) child: Child,
    pub(crate) stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    name: &'static str,
}

impl JsonChild {
    /// Starts `cmd` with piped stdin and stdout; `name` is for error messages.
    pub(crate) fn spawn(cmd: &mut Command, name: &'static str) -> Result<JsonChild> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(JsonChild {
            stdin: child.stdin.take().context("stdin")?,
            stdout: BufReader::new(child.stdout.take().context("stdout")?),
            child,
            name,
        })
    }

    /// The next line, parsed.
    pub(crate) fn message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("{} exited: {:?}", self.name, self.child.wait()?);
        }
        serde_json::from_str(&line).with_context(|| format!("{} said {line:?}", self.name))
    }

    /// The next line, which must have `key: true`.
    pub(crate) fn expect(&mut self, key: &str) -> Result<Value> {
        let message = self.message()?;
        if message[key] != true {
            bail!("{}: expected {key}, got {message}", self.name);
        }
        Ok(message)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for JsonChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
