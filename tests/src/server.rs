//! A real `flagpole` process run from the outside (the dashboard's browser test, the
//! OpenFeature client test, the load tools and benchmarks): start it on SQLite in a
//! temporary directory or on a Postgres database, on a free port, wait for readiness, seed it
//! through the REST API, stop it with SIGTERM.
//!
//! HTTP is spoken with a few lines over `std::net::TcpStream` (one request per connection)
//! rather than pulling an HTTP client into xtask for a handful of set-up calls.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::target_dir;

/// The admin token the server is started with (first-start bootstrap takes it from the
/// environment), used only for seeding.
pub const ADMIN_TOKEN: &str = "fp_api_xtask_admin_0000000000000000000000000000";

/// The first admin's password (the bootstrap takes it from the environment too), for tests
/// that sign in to the dashboard.
pub const ADMIN_PASSWORD: &str = "xtask-admin-password";

/// Key of the project the seed creates.
pub const PROJECT: &str = "ofrep-e2e";

/// A running flagpole process; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

/// The debug or release `flagpole` binary in the workspace's target directory.
pub fn binary(profile: &str) -> PathBuf {
    target_dir().join(profile).join("flagpole")
}

/// A port nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts `binary` on a fresh SQLite data directory and waits until /readyz says ready.
    /// `rust_log` is its log filter (`warn` keeps load runs from measuring log output).
    pub fn start(binary: &Path, rust_log: &str) -> Result<Server> {
        Server::start_on(binary, rust_log, None)
    }

    /// Like [`Server::start`], on the Postgres database `database_url` when given (several
    /// servers on one database are replicas).
    pub fn start_on(binary: &Path, rust_log: &str, database_url: Option<&str>) -> Result<Server> {
        Server::start_with(binary, rust_log, database_url, None)
    }

    /// Like [`Server::start`], with its SQLite database in `data_dir` (kept when it stops,
    /// so a later server can open it again).
    pub fn start_in(binary: &Path, rust_log: &str, data_dir: &Path) -> Result<Server> {
        Server::start_with(binary, rust_log, None, Some(data_dir))
    }

    fn start_with(
        binary: &Path,
        rust_log: &str,
        database_url: Option<&str>,
        data_dir: Option<&Path>,
    ) -> Result<Server> {
        if !binary.exists() {
            bail!("{} does not exist; build it first", binary.display());
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let dir = std::env::temp_dir().join(format!(
            "flagpole-xtask-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log)?;
        // FLAGPOLE_XTASK_SERVER_WRAPPER (e.g. `valgrind --tool=callgrind`) runs the server
        // under a profiler; load tools measure nothing meaningful then, but count instructions.
        let mut command = match std::env::var("FLAGPOLE_XTASK_SERVER_WRAPPER") {
            Ok(wrapper) if !wrapper.trim().is_empty() => {
                let mut words = wrapper.split_whitespace();
                let mut command = Command::new(words.next().unwrap_or_default());
                command.args(words).arg(binary);
                command
            }
            _ => Command::new(binary),
        };
        command
            .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
            .arg(data_dir.map_or_else(|| dir.join("data"), Path::to_path_buf))
            .env("FLAGPOLE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("FLAGPOLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("FLAGPOLE_LOG_FORMAT", "json")
            .env("RUST_LOG", rust_log);
        match database_url {
            Some(url) => command.env("FLAGPOLE_DATABASE_URL", url),
            None => command.env_remove("FLAGPOLE_DATABASE_URL"),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Server {
            child: Some(child),
            addr,
            log,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "flagpole exited with {status} before becoming ready; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok((200, _)) = request(self.addr, "GET", "/readyz", None, None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("flagpole at {} not ready after 60 s", self.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGTERM (a graceful shutdown) and fails if it does not exit
    /// cleanly within 15 s.
    pub fn stop(mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("flagpole exited with {status} on SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("flagpole did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 request on a new connection; returns the status and body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    if let Some(token) = token {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("unreadable HTTP response: {response:.200}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// An admin request that must answer 2xx with JSON.
pub fn admin(addr: SocketAddr, method: &str, path: &str, body: Value) -> Result<Value> {
    let (status, text) = request(addr, method, path, Some(ADMIN_TOKEN), Some(&body))?;
    if !(200..300).contains(&status) {
        bail!("{method} {path} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
}

fn post(addr: SocketAddr, path: &str, body: Value) -> Result<Value> {
    admin(addr, "POST", path, body)
}

fn bool_variants() -> Value {
    json!([{"key": "on", "value": true}, {"key": "off", "value": false}])
}

fn half_and_half() -> Value {
    json!({"rollout": {"weights": [
        {"variant": "on", "weight": 50_000}, {"variant": "off", "weight": 50_000}]}})
}

/// Creates project [`PROJECT`] (with its default environments) and these flags in
/// `production`, then an SDK key for `production`, which it returns:
/// - `static-on` (boolean, on, nothing to match: `STATIC`), `kill-switch` (off: `DISABLED`);
/// - `new-checkout` (boolean: target `vip`, rule `nordics` on `country` in no/se, else off);
/// - `rollout` (boolean, 50/50 on the targeting key);
/// - `banner-text` (string, `Welcome`), `load-flag` (boolean: rule `pro-plans` on `plan`
///   serving a 50/50 rollout; what the load test evaluates).
pub fn seed(addr: SocketAddr) -> Result<String> {
    post(addr, "/api/v1/projects", json!({"key": PROJECT}))?;
    let flags = [
        json!({"key": "static-on", "kind": "boolean", "variants": bool_variants(),
            "environments": {"production": {"enabled": true, "off_variant": "off",
                "default_serve": {"variant": "on"}}}}),
        json!({"key": "kill-switch", "kind": "boolean", "variants": bool_variants(),
            "environments": {"production": {"enabled": false, "off_variant": "off",
                "default_serve": {"variant": "on"}}}}),
        json!({"key": "new-checkout", "kind": "boolean", "variants": bool_variants(),
            "environments": {"production": {"enabled": true, "off_variant": "off",
                "targets": [{"variant": "on", "keys": ["vip"]}],
                "rules": [{"id": "nordics", "clauses": [
                    {"attribute": "country", "op": "in", "values": ["no", "se"]}],
                    "serve": {"variant": "on"}}],
                "default_serve": {"variant": "off"}}}}),
        json!({"key": "rollout", "kind": "boolean", "variants": bool_variants(),
            "environments": {"production": {"enabled": true, "off_variant": "off",
                "default_serve": half_and_half()}}}),
        json!({"key": "banner-text", "kind": "string", "variants": [
                {"key": "welcome", "value": "Welcome"}, {"key": "hello", "value": "Hello"}],
            "environments": {"production": {"enabled": true, "off_variant": "hello",
                "default_serve": {"variant": "welcome"}}}}),
        json!({"key": "load-flag", "kind": "boolean", "variants": bool_variants(),
            "environments": {"production": {"enabled": true, "off_variant": "off",
                "rules": [{"id": "pro-plans", "clauses": [
                    {"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}],
                    "serve": half_and_half()}],
                "default_serve": {"variant": "off"}}}}),
    ];
    for flag in flags {
        post(addr, &format!("/api/v1/projects/{PROJECT}/flags"), flag)?;
    }
    let created = post(
        addr,
        &format!("/api/v1/projects/{PROJECT}/environments/production/sdk-keys"),
        json!({"name": "xtask"}),
    )?;
    created["key"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("SDK key response without `key`: {created}"))
}
