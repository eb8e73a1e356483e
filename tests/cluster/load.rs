//! The load every scenario runs under: SDK clients connected through nginx evaluating
//! continuously, and a writer making flag changes through nginx that retries what fails
//! and keeps an account of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flagpole_sdk::{Client, ConnectionState, Context, EvaluationReason};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::http;

/// SDK clients, each with a task evaluating `switch` every few milliseconds.
pub(crate) struct Fleet {
    pub(crate) clients: Vec<Arc<Client>>,
    stop: Arc<AtomicBool>,
    evaluators: Vec<JoinHandle<()>>,
    /// Evaluations made.
    pub(crate) evaluations: Arc<AtomicU64>,
    /// Evaluations that fell back to the caller's default (reason ERROR).
    pub(crate) failures: Arc<AtomicU64>,
    /// Times a client lost its connection (was connected, then was not).
    pub(crate) disconnects: Arc<AtomicU64>,
}

impl Fleet {
    /// Connects `n` clients to `url` and waits until each has its flags.
    pub(crate) async fn connect(url: &str, sdk_key: &str, n: usize) -> Fleet {
        let stop = Arc::new(AtomicBool::new(false));
        let evaluations = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let disconnects = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        let mut evaluators = Vec::new();
        for i in 0..n {
            let client = Arc::new(
                Client::builder(url, sdk_key)
                    .heartbeat_interval(Duration::from_secs(1))
                    .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
                    .connect_timeout(Duration::from_secs(3))
                    .build()
                    .expect("build SDK client"),
            );
            client
                .wait_until_ready(Duration::from_secs(20))
                .await
                .expect("SDK ready");
            let (c, s, e, f) = (
                client.clone(),
                stop.clone(),
                evaluations.clone(),
                failures.clone(),
            );
            evaluators.push(tokio::spawn(async move {
                let ctx = Context::new(format!("user-{i}"));
                while !s.load(Ordering::Relaxed) {
                    let detail = c.bool_detail("switch", &ctx, false);
                    e.fetch_add(1, Ordering::Relaxed);
                    // `switch` is on and never changed: anything but `true` with a
                    // non-error reason is a failed evaluation.
                    let failed =
                        matches!(detail.reason, EvaluationReason::Error { .. }) || !detail.value;
                    if failed && f.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("first failed evaluation: {detail:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
            let mut status = client.watch_status();
            let (d, s) = (disconnects.clone(), stop.clone());
            evaluators.push(tokio::spawn(async move {
                let mut connected = true;
                while !s.load(Ordering::Relaxed) {
                    let changed =
                        tokio::time::timeout(Duration::from_millis(100), status.changed()).await;
                    if matches!(changed, Ok(Err(_))) {
                        return;
                    }
                    let now = status.borrow_and_update().connection == ConnectionState::Connected;
                    if connected && !now {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    connected = now;
                }
            }));
            clients.push(client);
        }
        Fleet {
            disconnects,
            clients,
            stop,
            evaluators,
            evaluations,
            failures,
        }
    }

    /// Waits until every client serves `version` or later; how long that took.
    pub(crate) async fn converge(&self, version: u64, timeout: Duration) -> Duration {
        let started = Instant::now();
        for (i, client) in self.clients.iter().enumerate() {
            let mut status = client.watch_status();
            let left = timeout.saturating_sub(started.elapsed());
            let before = client.status();
            let reached =
                tokio::time::timeout(left, status.wait_for(|s| s.version >= Some(version))).await;
            if std::env::var_os("CLUSTER_DEBUG").is_some() {
                eprintln!("SDK {i}: {:?} from {before:?}", started.elapsed());
            }
            assert!(
                matches!(reached, Ok(Ok(_))),
                "SDK {i} did not reach version {version} within {timeout:?}: {:?}",
                client.status()
            );
        }
        started.elapsed()
    }

    /// Every client holds exactly these flags (by key) at the same version.
    pub(crate) fn assert_identical(&self) {
        let first = self.clients[0].flags();
        let env = first.environment().expect("flags");
        let mut keys: Vec<&str> = env.flags.iter().map(|f| f.flag.key.as_str()).collect();
        keys.sort_unstable();
        for (i, client) in self.clients.iter().enumerate().skip(1) {
            let flags = client.flags();
            let other = flags.environment().expect("flags");
            let mut other_keys: Vec<&str> =
                other.flags.iter().map(|f| f.flag.key.as_str()).collect();
            other_keys.sort_unstable();
            assert_eq!(other.version, env.version, "SDK {i} version");
            assert_eq!(other_keys, keys, "SDK {i} flags");
        }
    }

    /// Number of flags the first client holds.
    pub(crate) fn flag_count(&self) -> usize {
        self.clients[0]
            .flags()
            .environment()
            .map_or(0, |e| e.flags.len())
    }

    /// Stops the evaluators; (evaluations, failed evaluations).
    pub(crate) async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for e in self.evaluators {
            e.await.expect("evaluator");
        }
        for c in &self.clients {
            c.close().await;
        }
        (
            self.evaluations.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

/// What the writer did.
#[derive(Debug, Default)]
pub(crate) struct WriteLog {
    /// Flag keys whose creation is known to have committed.
    pub(crate) committed: Vec<String>,
    /// Attempts that got no 2xx (transport error or an error status).
    pub(crate) failed_attempts: u64,
    /// Failed attempts by cause (`503`, `502`, `transport`...).
    pub(crate) failures_by_cause: BTreeMap<String, u64>,
    /// Writes whose earlier attempt failed ambiguously and whose retry found the flag
    /// already there (409): committed by the earlier attempt.
    pub(crate) confirmed_by_conflict: u64,
    /// Slowest error answer.
    pub(crate) slowest_error: Duration,
    /// Attempts in all.
    pub(crate) attempts: u64,
}

/// Creates flags `<prefix>-0`, `<prefix>-1`... through `lb` until stopped, retrying each
/// until it is known to be committed.
pub(crate) struct Writer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<WriteLog>,
}

impl Writer {
    pub(crate) fn start(lb: SocketAddr, prefix: &'static str, pace: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut log = WriteLog::default();
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                let key = format!("{prefix}-{i}");
                let body = json!({"key": key, "comment": "cluster test writer"});
                let mut failed_before = false;
                loop {
                    log.attempts += 1;
                    let result = http::request(
                        lb,
                        "POST",
                        "/api/v1/projects/shop/flags",
                        Some(&body),
                        Duration::from_secs(10),
                    )
                    .await;
                    let cause = match &result {
                        Ok(r) if r.ok() => {
                            log.committed.push(key.clone());
                            break;
                        }
                        Ok(r) if r.status == 409 && failed_before => {
                            log.committed.push(key.clone());
                            log.confirmed_by_conflict += 1;
                            break;
                        }
                        Ok(r) => {
                            log.slowest_error = log.slowest_error.max(r.took);
                            format!(
                                "{} {}",
                                r.status,
                                r.body["error"]["code"].as_str().unwrap_or("-")
                            )
                        }
                        Err(_) => "transport".to_owned(),
                    };
                    failed_before = true;
                    log.failed_attempts += 1;
                    *log.failures_by_cause.entry(cause).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                i += 1;
                tokio::time::sleep(pace).await;
            }
            log
        });
        Writer { stop, task }
    }

    /// Finishes the write in progress and returns the log.
    pub(crate) async fn stop(self) -> WriteLog {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer")
    }
}

/// Every flag key created through the API, from the audit log (read through `lb`).
pub(crate) async fn audited_creations(lb: SocketAddr) -> Vec<String> {
    let mut keys = Vec::new();
    let mut offset = 0;
    loop {
        let r = http::request(
            lb,
            "GET",
            &format!("/api/v1/audit?project=shop&limit=500&offset={offset}"),
            None,
            Duration::from_secs(10),
        )
        .await
        .expect("read audit log");
        assert!(r.ok(), "audit: {} {}", r.status, r.body);
        let items = r.body["items"].as_array().expect("items").clone();
        keys.extend(
            items
                .iter()
                .filter(|e| e["action"] == "flag.create")
                .filter_map(|e| e["resource_key"].as_str().map(str::to_owned)),
        );
        if items.len() < 500 {
            return keys;
        }
        offset += 500;
    }
}

/// Asserts every committed write is in the audit log exactly once.
pub(crate) async fn assert_audited(lb: SocketAddr, log: &WriteLog) {
    let audited = audited_creations(lb).await;
    for key in &log.committed {
        let n = audited.iter().filter(|k| *k == key).count();
        assert_eq!(n, 1, "flag {key} appears {n} times in the audit log");
    }
}
