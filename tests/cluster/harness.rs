//! Real processes for the cluster tests: `flagpole serve` replicas (the binary built next
//! to this test), nginx in front of them with the configuration from
//! `deploy/nginx/flagpole.conf`, and, for the outage test, a private Postgres cluster that
//! can be stopped without touching the machine's shared one.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::process::Child;

use crate::http::{self, ADMIN_TOKEN};

/// The `flagpole` binary, built with the tests by `cargo build --workspace --all-targets`
/// (`cargo xtask test` runs that first): target/<profile>/flagpole, next to the `deps/`
/// folder holding this test.
pub(crate) fn flagpole_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("flagpole");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` first (cargo xtask test \
         does)",
        bin.display()
    );
    bin
}

/// nginx from the Debian package (`cargo xtask test` installs it).
fn nginx_bin() -> PathBuf {
    let bin =
        PathBuf::from(std::env::var("FLAGPOLE_TEST_NGINX").unwrap_or("/usr/sbin/nginx".into()));
    assert!(
        bin.exists(),
        "{} is missing: `apt-get install -y nginx` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A directory under the system temp dir, removed on drop (kept, and named, if the test
/// failed, so the logs in it can be read).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> TempDir {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    pub(crate) fn new_in(parent: &Path, prefix: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = parent.join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CLUSTER_KEEP").is_some() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One `flagpole serve` process (restartable on the same port).
pub(crate) struct Replica {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    db_url: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// A replica on `db_url` logging into `dir`, not started yet.
    pub(crate) fn new(name: String, db_url: String, dir: &Path) -> Replica {
        Replica {
            log: dir.join(format!("{name}.log")),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            name,
            db_url,
            child: None,
        }
    }

    /// Starts the process (returns at once; see [`Replica::wait_ready`]).
    pub(crate) fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("replica log");
        let child = tokio::process::Command::new(flagpole_bin())
            .args(["serve", "--listen", &self.addr.to_string()])
            .args(["--database-url", &self.db_url])
            .args(["--admin-token", ADMIN_TOKEN])
            .args(["--admin-password", "cluster-admin-password"])
            // Short timings so restarts take seconds: the load balancer (nginx here) has
            // no readiness probe, so the delay only needs to cover in-flight requests.
            .args(["--drain-delay-secs", "1", "--shutdown-timeout-secs", "10"])
            .args([
                "--stream-heartbeat-secs",
                "1",
                "--db-acquire-timeout-ms",
                "1000",
            ])
            .args(["--db-max-connections", "6"])
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start flagpole");
        self.child = Some(child);
    }

    /// Polls /readyz until it answers 200; how long that took.
    pub(crate) async fn wait_ready(&mut self, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if http::status_of(self.addr, "/readyz").await == Some(200) {
                return started.elapsed();
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited while starting: {status}\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                started.elapsed() < timeout,
                "{} not ready within {timeout:?}\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the process to exit: its status and how long it took.
    pub(crate) async fn terminate(&mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("pid");
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("wait");
        (status, started.elapsed())
    }

    /// Runs `flagpole healthcheck --url http://<addr><path>`; true if it exited 0.
    pub(crate) async fn healthcheck(&self, path: &str) -> bool {
        tokio::process::Command::new(flagpole_bin())
            .args(["healthcheck", "--timeout-secs", "2", "--url"])
            .arg(format!("http://{}{path}", self.addr))
            .stderr(Stdio::null())
            .status()
            .await
            .expect("run flagpole healthcheck")
            .success()
    }

    /// SIGKILL: no drain, no goodbyes; sockets are reset by the kernel.
    pub(crate) async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().await.expect("SIGKILL");
    }

    /// The last lines of this replica's log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }
}

/// nginx in the foreground with a generated configuration in its own directory.
pub(crate) struct Nginx {
    pub(crate) addr: SocketAddr,
    child: Child,
}

impl Drop for Nginx {
    /// SIGTERM and a short wait, so the master stops its worker: SIGKILLing the master
    /// alone (what `kill_on_drop` does) leaves the worker running, orphaned.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Nginx {
    /// Starts nginx in front of `upstreams`, using the `upstream` and `server` blocks of
    /// `deploy/nginx/flagpole.conf` with only the addresses replaced.
    pub(crate) async fn start(dir: &Path, upstreams: &[SocketAddr]) -> Nginx {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let conf_path = flagpole_tests::workspace_root().join("deploy/nginx/flagpole.conf");
        let deployed = std::fs::read_to_string(&conf_path).expect("deploy/nginx/flagpole.conf");
        let servers: String = upstreams
            .iter()
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let site = replace_between(&deployed, "# BEGIN servers", "# END servers", &servers)
            .replace("listen 80;", &format!("listen {addr};"));
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
        let p = prefix.display();
        // Running as root (CI), nginx would switch its worker to `nobody`, which cannot
        // write into this directory.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}\nworker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n access_log {p}/logs/access.log;\n\
             client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;\n\
             fastcgi_temp_path {p}/fastcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
             {site}\n}}\n"
        );
        let conf_file = prefix.join("nginx.conf");
        std::fs::write(&conf_file, conf).expect("write nginx.conf");
        let child = tokio::process::Command::new(nginx_bin())
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .arg("-c")
            .arg(&conf_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Nginx { addr, child }
    }
}

fn replace_between(text: &str, begin: &str, end: &str, with: &str) -> String {
    let b = text.find(begin).expect("begin marker") + begin.len();
    let e = text.find(end).expect("end marker");
    format!("{}\n{with}    {}", &text[..b], &text[e..])
}

/// Three (or `n`) replicas on one database, nginx in front.
pub(crate) struct Cluster {
    pub(crate) replicas: Vec<Replica>,
    pub(crate) nginx: Nginx,
    _dir: TempDir,
}

impl Cluster {
    /// Starts `n` replicas on `db_url` (the first alone, so it migrates and bootstraps the
    /// admin), waits until all are ready, then starts nginx.
    pub(crate) async fn start(db_url: &str, n: usize) -> Cluster {
        let dir = TempDir::new("flagpole-cluster");
        let mut replicas: Vec<Replica> = (0..n)
            .map(|i| Replica::new(format!("replica-{i}"), db_url.to_owned(), &dir.0))
            .collect();
        replicas[0].spawn();
        replicas[0].wait_ready(Duration::from_secs(60)).await;
        for r in &mut replicas[1..] {
            r.spawn();
        }
        for r in &mut replicas[1..] {
            r.wait_ready(Duration::from_secs(60)).await;
        }
        let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
        let nginx = Nginx::start(&dir.0, &addrs).await;
        Cluster {
            replicas,
            nginx,
            _dir: dir,
        }
    }

    /// The URL SDKs and the writer use: nginx.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.nginx.addr)
    }

    /// Project `shop`, flag `switch` (on in production), an SDK key of shop/production.
    pub(crate) async fn seed(&self) -> String {
        let lb = self.nginx.addr;
        let post = |path: &'static str, body: serde_json::Value| async move {
            let r = http::request(lb, "POST", path, Some(&body), Duration::from_secs(10))
                .await
                .expect("seed request");
            assert!(r.ok(), "{path}: {} {}", r.status, r.body);
            r.body
        };
        post("/api/v1/projects", json!({"key": "shop"})).await;
        post(
            "/api/v1/projects/shop/flags",
            json!({"key": "switch", "environments": {"production": {
                "enabled": true, "off_variant": "off", "default_serve": {"variant": "on"}}}}),
        )
        .await;
        let key = post(
            "/api/v1/projects/shop/environments/production/sdk-keys",
            json!({"name": "cluster-test"}),
        )
        .await;
        key["key"].as_str().expect("sdk key").to_owned()
    }

    /// shop/production's `data_version`, read through nginx.
    pub(crate) async fn data_version(&self) -> u64 {
        let r = http::request(
            self.nginx.addr,
            "GET",
            "/api/v1/projects/shop/environments/production",
            None,
            Duration::from_secs(10),
        )
        .await
        .expect("read environment");
        assert!(r.ok(), "{} {}", r.status, r.body);
        r.body["data_version"].as_u64().expect("data_version")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for r in &self.replicas {
                eprintln!("--- {} (last lines)\n{}", r.name, r.log_tail());
            }
        }
    }
}

/// A throwaway Postgres cluster of its own (initdb in a temp dir, its own port), run as
/// user `postgres` when the test runs as root (initdb refuses root). Stopping it affects
/// only this test.
pub(crate) struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    pub(crate) port: u16,
}

impl PrivatePostgres {
    pub(crate) fn start() -> PrivatePostgres {
        let bin = postgres_bin_dir();
        // Under /tmp rather than $TMPDIR: the `postgres` user must be able to reach it,
        // and a TMPDIR under /root would not be.
        let dir = TempDir::new_in(Path::new("/tmp"), "flagpole-cluster-pg");
        let port = free_port();
        if is_root() {
            sh(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.0));
        }
        let pg = PrivatePostgres { dir, bin, port };
        pg.as_postgres(&format!(
            "{}/initdb -D {}/data -U postgres --auth=trust >{}/initdb.log 2>&1",
            pg.bin.display(),
            pg.dir.0.display(),
            pg.dir.0.display()
        ));
        pg.start_server();
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start -w`.
    pub(crate) fn start_server(&self) {
        let d = self.dir.0.display();
        self.as_postgres(&format!(
            "{}/pg_ctl -D {d}/data -l {d}/postgres.log -w -o '-p {} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null",
            self.bin.display(),
            self.port
        ));
    }

    /// `pg_ctl stop -m fast`: running statements are cancelled, connections closed.
    pub(crate) fn stop_server(&self) {
        self.as_postgres(&format!(
            "{}/pg_ctl -D {}/data -m fast -w stop >/dev/null",
            self.bin.display(),
            self.dir.0.display()
        ));
    }

    fn as_postgres(&self, script: &str) {
        if is_root() {
            sh(Command::new("su").args(["postgres", "-c", script]));
        } else {
            sh(Command::new("sh").args(["-c", script]));
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let script = format!(
            "{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            self.bin.display(),
            self.dir.0.display()
        );
        let _ = if is_root() {
            Command::new("su")
                .args(["postgres", "-c", &script])
                .status()
        } else {
            Command::new("sh").args(["-c", &script]).status()
        };
    }
}

/// The newest /usr/lib/postgresql/<version>/bin.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql")
        .1
}

fn sh(cmd: &mut Command) {
    let status = cmd.status().expect("run command");
    assert!(status.success(), "{cmd:?} failed: {status}");
}
