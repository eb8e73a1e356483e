//! Replica crash: SIGKILL one of three replicas under load (no drain, no goodbye); its
//! SDKs reconnect through nginx to the others and converge; the replica starts again and
//! everything still converges.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::harness::Cluster;
use crate::load::{Fleet, Writer, assert_audited};
use crate::{CONVERGE_WITHIN, ms, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_replica_sdks_reconnect_and_converge() {
    let db = flagpole_server::testing::fresh_postgres_url()
        .await
        .expect("fresh database on the shared Postgres");
    let mut cluster = Cluster::start(&db, 3).await;
    let sdk_key = cluster.seed().await;
    let fleet = Fleet::connect(&cluster.url(), &sdk_key, 9).await;
    let writer = Writer::start(cluster.nginx.addr, "crash", Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let killed = Instant::now();
    cluster.replicas[1].kill().await;
    // Keep writing through the survivors, then check every SDK caught up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let version = cluster.data_version().await;
    let read = Instant::now();
    fleet.converge(version, CONVERGE_WITHIN).await;
    let converged_after_kill = read.elapsed();
    let disconnects = fleet.disconnects.load(Ordering::Relaxed);
    let since_kill = killed.elapsed();

    let restarted = Instant::now();
    cluster.replicas[1].spawn();
    let ready = cluster.replicas[1]
        .wait_ready(Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = writer.stop().await;
    let stopped = Instant::now();
    let version = cluster.data_version().await;
    fleet.converge(version, CONVERGE_WITHIN).await;
    let converged_final = stopped.elapsed();
    fleet.assert_identical();
    assert_eq!(fleet.flag_count(), 1 + log.committed.len());
    assert_audited(cluster.nginx.addr, &log).await;
    let (evaluations, failed) = fleet.stop().await;

    report(
        "replica-crash",
        &[
            ("replicas", "3".into()),
            ("sdks", "9".into()),
            ("sdks_disconnected_by_kill", disconnects.to_string()),
            ("kill_to_all_converged", ms(since_kill)),
            ("converge_wait_after_kill", ms(converged_after_kill)),
            ("restart_to_ready", ms(ready)),
            ("restart_to_end", ms(restarted.elapsed())),
            ("evaluations", evaluations.to_string()),
            ("failed_evaluations", failed.to_string()),
            ("writes_committed", log.committed.len().to_string()),
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
            ("converge_after_last_write", ms(converged_final)),
        ],
    );
    assert_eq!(failed, 0, "SDK evaluations failed");
    assert!(
        disconnects >= 1,
        "some SDKs were connected to the killed replica"
    );
}
