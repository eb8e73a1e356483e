//! Postgres outage: a private Postgres cluster (never the machine's shared one) is stopped
//! for about 10 s under load. SDKs keep answering from their last flags; writes get a
//! clear 503 quickly; /readyz fails; within seconds of Postgres returning everything
//! recovers without restarting Flagpole, and nothing committed is lost.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Cluster, PrivatePostgres};
use crate::http;
use crate::load::{Fleet, Writer, assert_audited};
use crate::{CONVERGE_WITHIN, ms, report};

const OUTAGE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_degrades_cleanly_and_recovers() {
    let pg = tokio::task::block_in_place(PrivatePostgres::start);
    let mut cluster = Cluster::start(&pg.url(), 3).await;
    let sdk_key = cluster.seed().await;
    let fleet = Fleet::connect(&cluster.url(), &sdk_key, 6).await;
    let writer = Writer::start(cluster.nginx.addr, "outage", Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lb = cluster.nginx.addr;

    tokio::task::block_in_place(|| pg.stop_server());
    let down = Instant::now();
    let evaluations_at_stop = fleet.evaluations.load(Ordering::Relaxed);

    // Every replica reports not ready (probed concurrently: each probe may take up to
    // the server's readiness check timeout).
    let probes: Vec<_> = cluster
        .replicas
        .iter()
        .map(|r| {
            let (addr, name) = (r.addr, r.name.clone());
            tokio::spawn(async move {
                while http::status_of(addr, "/readyz").await != Some(503) {
                    assert!(
                        down.elapsed() < Duration::from_secs(5),
                        "{name} still ready"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();
    for p in probes {
        p.await.expect("readiness probe");
    }
    let not_ready_after = down.elapsed();

    // Writes through nginx answer 503 `unavailable`, quickly, for the whole outage.
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    let mut other = Vec::new();
    while down.elapsed() < OUTAGE {
        let r = http::request(
            lb,
            "POST",
            "/api/v1/projects/shop/flags",
            Some(&json!({"key": format!("never-{probes}")})),
            Duration::from_secs(10),
        )
        .await
        .expect("an answer, not a hang");
        probes += 1;
        slowest = slowest.max(r.took);
        if r.status != 503 || r.body["error"]["code"] != "unavailable" {
            other.push(format!("{} {}", r.status, r.body));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let evaluations_during = fleet.evaluations.load(Ordering::Relaxed) - evaluations_at_stop;
    let failed_during = fleet.failures.load(Ordering::Relaxed);

    tokio::task::block_in_place(|| pg.start_server());
    let up = Instant::now();
    // Recovery: a write through nginx succeeds, and every replica is ready again.
    let mut n = 0;
    let write_recovered = loop {
        let r = http::request(
            lb,
            "POST",
            "/api/v1/projects/shop/flags",
            Some(&json!({"key": format!("recovered-{n}")})),
            Duration::from_secs(10),
        )
        .await;
        n += 1;
        if r.is_ok_and(|r| r.ok()) {
            break up.elapsed();
        }
        assert!(
            up.elapsed() < Duration::from_secs(15),
            "writes did not recover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for r in &mut cluster.replicas {
        r.wait_ready(Duration::from_secs(15)).await;
    }
    let ready_recovered = up.elapsed();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = writer.stop().await;
    let stopped = Instant::now();
    let version = cluster.data_version().await;
    fleet.converge(version, CONVERGE_WITHIN).await;
    let converged = stopped.elapsed();
    let recovered_to_converged = up.elapsed();
    fleet.assert_identical();
    // `switch`, the writer's flags and the one recovery write that succeeded.
    assert_eq!(fleet.flag_count(), 2 + log.committed.len());
    assert_audited(lb, &log).await;
    let disconnects = fleet.disconnects.load(Ordering::Relaxed);
    let (evaluations, failed) = fleet.stop().await;

    report(
        "postgres-outage",
        &[
            ("replicas", "3".into()),
            ("sdks", "6".into()),
            ("outage", ms(OUTAGE)),
            ("stop_to_all_not_ready", ms(not_ready_after)),
            ("write_probes_during_outage", probes.to_string()),
            ("write_probes_not_503", other.len().to_string()),
            ("slowest_503", ms(slowest)),
            ("evaluations_during_outage", evaluations_during.to_string()),
            (
                "failed_evaluations_during_outage",
                failed_during.to_string(),
            ),
            ("start_to_first_write", ms(write_recovered)),
            ("start_to_all_ready", ms(ready_recovered)),
            ("start_to_sdks_converged", ms(recovered_to_converged)),
            ("sdk_reconnects", disconnects.to_string()),
            ("evaluations", evaluations.to_string()),
            ("failed_evaluations", failed.to_string()),
            ("writes_committed", log.committed.len().to_string()),
            ("writer_errors", log.failed_attempts.to_string()),
            (
                "writer_errors_by_cause",
                format!("{:?}", log.failures_by_cause),
            ),
            (
                "retries_confirmed_by_409",
                log.confirmed_by_conflict.to_string(),
            ),
            ("converge_after_last_write", ms(converged)),
        ],
    );
    assert!(other.is_empty(), "writes during the outage: {other:?}");
    assert!(slowest < Duration::from_secs(3), "a 503 took {slowest:?}");
    assert!(evaluations_during > 0, "SDKs kept evaluating");
    assert_eq!(failed, 0, "SDK evaluations failed");
}
