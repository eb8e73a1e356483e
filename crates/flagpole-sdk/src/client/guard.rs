//! `guard` and `shadow`: run flag-controlled code and report what it did per variant
//! (issues 17 and 18; docs/protocol.md, "Telemetry", `outcomes`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flagpole_core::Context;
use flagpole_core::wire::OutcomeKind;
use serde_json::Value;
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Client;
use crate::telemetry::{Recorder, Run};

/// Default bound on shadow candidates running at once.
pub(crate) const SHADOW_CONCURRENCY: usize = 16;
/// Default time limit of one shadow candidate.
pub(crate) const SHADOW_TIMEOUT: Duration = Duration::from_secs(1);

/// Where shadow candidates run: at most `permits` at once, each within `timeout`,
/// stopped and awaited when the client closes.
pub(crate) struct Shadows {
    permits: Arc<Semaphore>,
    timeout: Duration,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Shadows {
    pub(crate) fn new(concurrency: usize, timeout: Duration) -> Shadows {
        Shadows {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            timeout,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Stops the candidates still running (not recorded) and waits for their tasks.
    pub(crate) async fn close(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The flag's variant key (`""` on error), version, and whether its value says "on".
fn evaluated(client: &Client, flag: &str, ctx: &Context) -> (String, u64, bool) {
    let flags = client.flags();
    let e = flags.evaluate(flag, ctx);
    let on = match e.value {
        Some(Value::Bool(b)) => *b,
        _ => false,
    };
    let variant = e.variant.unwrap_or("").to_owned();
    let version = flags.snapshot().flag_version(flag).unwrap_or(0);
    (variant, version, on)
}

impl Client {
    fn recorder(&self) -> Option<&Arc<Recorder>> {
        Some(&self.inner.telemetry.as_ref()?.recorder)
    }

    /// Evaluates `flag` for `ctx`, runs `path` with the variant's key (`""` when the
    /// evaluation failed), and reports whether it returned an error and how long it took,
    /// attributed to that variant (`guard` outcomes: what a rollout's guardian compares).
    /// Returns `path`'s result unchanged. With telemetry off it only runs `path`.
    ///
    /// ```no_run
    /// # async fn f(client: flagpole_sdk::Client, ctx: flagpole_core::Context) {
    /// let total = client
    ///     .guard("new-checkout", &ctx, |variant| async move {
    ///         if variant == "on" { Ok::<_, std::io::Error>(2) } else { Ok(1) }
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub async fn guard<T, E, F, Fut>(&self, flag: &str, ctx: &Context, path: F) -> Result<T, E>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let (variant, version, _) = evaluated(self, flag, ctx);
        let Some(recorder) = self.recorder() else {
            return path(variant).await;
        };
        let recorder = recorder.clone();
        let start = Instant::now();
        let result = path(variant.clone()).await;
        let took = start.elapsed();
        let run = match &result {
            Ok(_) => Run::Ok { mismatch: false },
            Err(_) => Run::Failed { mismatch: false },
        };
        recorder
            .outcomes
            .record(flag, version, &variant, OutcomeKind::Guard, run, took);
        result
    }

    /// Runs `current` for the user and returns its result. When `flag` evaluates to `true`
    /// for `ctx` (a boolean flag: its rollout is the share of calls shadowed), `candidate`
    /// runs beside it on a background task: at most a bounded number at once (16 by
    /// default; beyond, the candidate is not run and counted as `skipped`), each stopped
    /// after a time limit (1 s by default; counted as a timeout). Once both are done,
    /// `compare(current, candidate)` says whether they agree; an error on one side only is
    /// a mismatch, errors on both are not. Reported as `shadow_current` and `shadow_new`
    /// outcomes: calls, errors, mismatches and both latencies. The candidate never delays
    /// the user's call nor changes its result. With telemetry off only `current` runs.
    pub async fn shadow<T, E, Cur, New, Cmp>(
        &self,
        flag: &str,
        ctx: &Context,
        current: Cur,
        candidate: New,
        compare: Cmp,
    ) -> Result<T, E>
    where
        Cur: Future<Output = Result<T, E>>,
        New: Future<Output = Result<T, E>> + Send + 'static,
        T: Clone + Send + 'static,
        E: Send + 'static,
        Cmp: FnOnce(&T, &T) -> bool + Send + 'static,
    {
        let (variant, version, on) = evaluated(self, flag, ctx);
        let Some(telemetry) = self.inner.telemetry.as_ref() else {
            return current.await;
        };
        let recorder = telemetry.recorder.clone();
        // The current path's result (None: it failed or was cancelled) for the comparison.
        let mut to_compare: Option<oneshot::Sender<Option<T>>> = None;
        if on {
            let shadows = &telemetry.shadows;
            match shadows.permits.clone().try_acquire_owned() {
                Err(_) => recorder.outcomes.skipped(flag, version, &variant),
                Ok(permit) => {
                    let (tx, rx) = oneshot::channel::<Option<T>>();
                    to_compare = Some(tx);
                    let (flag, variant, limit) =
                        (flag.to_owned(), variant.clone(), shadows.timeout);
                    let stop = shadows.stop.clone();
                    let recorder = recorder.clone();
                    shadows.tasks.spawn(async move {
                        let _permit = permit;
                        let start = Instant::now();
                        let finished = tokio::select! {
                            () = stop.cancelled() => return,
                            r = tokio::time::timeout(limit, candidate) => r,
                        };
                        let took = start.elapsed();
                        let run = match finished {
                            Err(_) => Run::TimedOut,
                            Ok(result) => {
                                let theirs = tokio::select! {
                                    () = stop.cancelled() => return,
                                    t = rx => t,
                                };
                                match (theirs, result) {
                                    // The user's call was dropped: nothing to compare.
                                    (Err(_), Ok(_)) => Run::Ok { mismatch: false },
                                    (Err(_), Err(_)) => Run::Failed { mismatch: false },
                                    (Ok(Some(ours)), Ok(new)) => Run::Ok {
                                        mismatch: !compare(&ours, &new),
                                    },
                                    (Ok(None), Ok(_)) => Run::Ok { mismatch: true },
                                    (Ok(Some(_)), Err(_)) => Run::Failed { mismatch: true },
                                    (Ok(None), Err(_)) => Run::Failed { mismatch: false },
                                }
                            }
                        };
                        recorder.outcomes.record(
                            &flag,
                            version,
                            &variant,
                            OutcomeKind::ShadowNew,
                            run,
                            took,
                        );
                    });
                }
            }
        }
        let start = Instant::now();
        let result = current.await;
        let took = start.elapsed();
        if let Some(tx) = to_compare {
            let _ = tx.send(result.as_ref().ok().cloned());
        }
        let run = match &result {
            Ok(_) => Run::Ok { mismatch: false },
            Err(_) => Run::Failed { mismatch: false },
        };
        recorder.outcomes.record(
            flag,
            version,
            &variant,
            OutcomeKind::ShadowCurrent,
            run,
            took,
        );
        result
    }
}
