//! Rolling restart under load: three replicas behind nginx, restarted one at a time the
//! way Kubernetes does it (SIGTERM, wait until gone, start, wait until ready) while SDKs
//! evaluate and a writer changes flags through nginx.

use std::time::{Duration, Instant};

use crate::harness::Cluster;
use crate::load::{Fleet, Writer, assert_audited};
use crate::{CONVERGE_WITHIN, ms, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_loses_nothing() {
    let db = flagpole_server::testing::fresh_postgres_url()
        .await
        .expect("fresh database on the shared Postgres");
    let mut cluster = Cluster::start(&db, 3).await;
    let sdk_key = cluster.seed().await;
    let fleet = Fleet::connect(&cluster.url(), &sdk_key, 9).await;
    let writer = Writer::start(cluster.nginx.addr, "roll", Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut slowest_exit = Duration::ZERO;
    let mut slowest_ready = Duration::ZERO;
    let rollout = Instant::now();
    for i in 0..cluster.replicas.len() {
        let replica = &mut cluster.replicas[i];
        let (status, took) = replica.terminate().await;
        assert!(
            status.success(),
            "{} exited with {status} after SIGTERM\n{}",
            replica.name,
            replica.log_tail()
        );
        slowest_exit = slowest_exit.max(took);
        assert!(
            !replica.healthcheck("/healthz").await,
            "`flagpole healthcheck` of a stopped replica"
        );
        replica.spawn();
        slowest_ready = slowest_ready.max(replica.wait_ready(Duration::from_secs(30)).await);
        assert!(
            replica.healthcheck("/readyz").await,
            "`flagpole healthcheck` of a ready replica"
        );
    }
    let rollout = rollout.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let log = writer.stop().await;
    let stopped = Instant::now();
    let version = cluster.data_version().await;
    let converged = fleet.converge(version, CONVERGE_WITHIN).await;
    let after_last_write = stopped.elapsed();
    fleet.assert_identical();
    assert_eq!(
        fleet.flag_count(),
        1 + log.committed.len(),
        "SDKs hold `switch` plus every committed flag"
    );
    assert_audited(cluster.nginx.addr, &log).await;
    let disconnects = fleet.disconnects.load(std::sync::atomic::Ordering::Relaxed);
    let (evaluations, failed) = fleet.stop().await;

    report(
        "rolling-restart",
        &[
            ("replicas", "3".into()),
            ("sdks", "9".into()),
            ("rollout", ms(rollout)),
            ("slowest_sigterm_to_exit", ms(slowest_exit)),
            ("slowest_start_to_ready", ms(slowest_ready)),
            ("evaluations", evaluations.to_string()),
            ("failed_evaluations", failed.to_string()),
            ("sdk_reconnects", disconnects.to_string()),
            ("writes_committed", log.committed.len().to_string()),
            ("write_attempts", log.attempts.to_string()),
            ("rest_errors", log.failed_attempts.to_string()),
            (
                "rest_errors_by_cause",
                format!("{:?}", log.failures_by_cause),
            ),
            (
                "retries_confirmed_by_409",
                log.confirmed_by_conflict.to_string(),
            ),
            ("final_version", version.to_string()),
            ("converge_after_last_write", ms(after_last_write)),
            ("converge_wait", ms(converged)),
        ],
    );
    assert_eq!(failed, 0, "SDK evaluations failed during the rollout");
    assert!(
        disconnects >= 9,
        "every SDK was moved off a stopping replica at least once"
    );
}
