//! Prometheus and Alertmanager from Debian's packages (`cargo xtask test` installs them),
//! run in the foreground with generated configuration, on free ports, in a directory of
//! their own; and the programs' own checks of the configuration shipped in deploy/.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Child;

use crate::harness::free_port;

/// A Debian package's program, or the one the environment variable names.
fn program(env: Option<&str>, default: &str, package: &str) -> PathBuf {
    let chosen = env.and_then(|name| std::env::var(name).ok());
    let bin = PathBuf::from(chosen.unwrap_or(default.into()));
    assert!(
        bin.exists(),
        "{} is missing: `apt-get install -y --no-install-recommends {package}` (cargo xtask \
         test does)",
        bin.display()
    );
    bin
}

/// Runs `promtool check rules` or `amtool check-config` on a file as shipped.
pub(crate) fn check_shipped(tool: &str, args: &[&str], file: &Path) {
    let package = if tool == "amtool" {
        "prometheus-alertmanager"
    } else {
        "prometheus"
    };
    let bin = program(None, &format!("/usr/bin/{tool}"), package);
    let out = Command::new(bin)
        .args(args)
        .arg(file)
        .output()
        .expect("run the check");
    assert!(
        out.status.success(),
        "{tool} {args:?} {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One of the two programs, running.
pub(crate) struct Process {
    pub(crate) name: &'static str,
    pub(crate) addr: SocketAddr,
    log: PathBuf,
    // Killed on drop: each is one Go process without children.
    _child: Child,
}

impl Process {
    async fn start(
        name: &'static str,
        bin: PathBuf,
        dir: &Path,
        args: impl Fn(&Path, SocketAddr) -> Vec<String>,
    ) -> Process {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).expect("program directory");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = home.join("log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(bin)
            .args(args(&home, addr))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let process = Process {
            name,
            addr,
            log,
            _child: child,
        };
        process.wait_ready().await;
        process
    }

    /// Polls `/-/ready` (both programs have it) until it answers 200.
    async fn wait_ready(&self) {
        let started = Instant::now();
        let url = format!("http://{}/-/ready", self.addr);
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} not ready within 30 s:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET a JSON API path (`/api/v1/alerts`); its `data` member.
    pub(crate) async fn api(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.addr);
        let body: Value = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("{} {path}: {e}", self.name))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{} {path}: {e}", self.name));
        body["data"].clone()
    }

    /// The last lines of the program's log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// Alertmanager with `config` (YAML), gossip off.
pub(crate) async fn alertmanager(dir: &Path, config: &str) -> Process {
    let bin = program(
        Some("FLAGPOLE_TEST_ALERTMANAGER"),
        "/usr/bin/prometheus-alertmanager",
        "prometheus-alertmanager",
    );
    let file = dir.join("alertmanager.yml");
    std::fs::write(&file, config).expect("write alertmanager.yml");
    Process::start("alertmanager", bin, dir, |home, addr| {
        vec![
            format!("--config.file={}", file.display()),
            format!("--storage.path={}", home.join("data").display()),
            format!("--web.listen-address={addr}"),
            // Empty: no cluster gossip (a single Alertmanager, no port to find).
            "--cluster.listen-address=".into(),
        ]
    })
    .await
}

/// Prometheus with `config` (YAML; rule files it names must exist).
pub(crate) async fn prometheus(dir: &Path, config: &str) -> Process {
    let bin = program(
        Some("FLAGPOLE_TEST_PROMETHEUS"),
        "/usr/bin/prometheus",
        "prometheus",
    );
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).expect("write prometheus.yml");
    Process::start("prometheus", bin, dir, |home, addr| {
        vec![
            format!("--config.file={}", file.display()),
            format!("--storage.tsdb.path={}", home.join("data").display()),
            format!("--web.listen-address={addr}"),
        ]
    })
    .await
}
