//! Scheduled changes on three replicas: 20 changes fall due over a few seconds while one
//! replica is SIGKILLed half-way. Every change must be applied exactly once (one flag
//! version and one `system:scheduler` toggle each), and the delays from due time to
//! application are printed (p50, max).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Cluster;
use crate::http;
use crate::{ms, report};

const CHANGES: usize = 20;
/// The first change is due this long after scheduling starts, the others every `SPACING`.
const FIRST_DUE: Duration = Duration::from_millis(2500);
const SPACING: Duration = Duration::from_millis(150);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rfc3339_ms(text: &str) -> i64 {
    // `2026-12-08T00:41:02.123Z` (the server always answers UTC with `Z`).
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A request through nginx, retried while a replica is going away.
async fn call(cluster: &Cluster, method: &str, path: &str, body: Option<&Value>) -> Value {
    let started = Instant::now();
    loop {
        match http::request(
            cluster.nginx.addr,
            method,
            path,
            body,
            Duration::from_secs(5),
        )
        .await
        {
            Ok(r) if r.ok() => return r.body,
            Ok(r) if r.status < 500 => panic!("{method} {path}: {} {}", r.status, r.body),
            other => assert!(
                started.elapsed() < Duration::from_secs(20),
                "{method} {path}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_changes_apply_once_across_replicas_when_one_is_killed() {
    let db = flagpole_server::testing::fresh_postgres_url()
        .await
        .expect("fresh database on the shared Postgres");
    let mut cluster = Cluster::start(&db, 3).await;
    cluster.seed().await;
    for i in 0..CHANGES {
        call(
            &cluster,
            "POST",
            "/api/v1/projects/shop/flags",
            Some(&json!({"key": format!("s{i}")})),
        )
        .await;
    }
    let first_due = now_ms() + FIRST_DUE.as_millis() as i64;
    for i in 0..CHANGES {
        let at = first_due + (SPACING.as_millis() as i64) * i as i64;
        let path =
            format!("/api/v1/projects/shop/flags/s{i}/environments/production/scheduled-changes");
        let created = call(
            &cluster,
            "POST",
            &path,
            Some(&json!({"at": rfc3339(at), "enabled": true, "comment": format!("c{i}")})),
        )
        .await;
        assert_eq!(created["state"], "scheduled", "{created}");
    }
    // Kill a replica half-way through the due times.
    let half_way = first_due + (SPACING.as_millis() as i64) * (CHANGES as i64 / 2);
    tokio::time::sleep(Duration::from_millis((half_way - now_ms()).max(0) as u64)).await;
    cluster.replicas[1].kill().await;
    let killed_at = now_ms();

    let last_due = first_due + (SPACING.as_millis() as i64) * (CHANGES as i64 - 1);
    let changes = loop {
        let list = call(
            &cluster,
            "GET",
            "/api/v1/projects/shop/scheduled-changes?limit=1000",
            None,
        )
        .await;
        let list = list.as_array().expect("list").clone();
        assert_eq!(list.len(), CHANGES);
        if list.iter().all(|c| c["state"] != "scheduled") {
            break list;
        }
        assert!(
            now_ms() - last_due < 30_000,
            "changes still waiting 30 s after the last was due: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut delays = Vec::new();
    for c in &changes {
        assert_eq!(c["state"], "applied", "{c}");
        assert_eq!(c["applied_by"], "system:scheduler");
        delays.push(
            rfc3339_ms(c["applied_at"].as_str().unwrap()) - rfc3339_ms(c["at"].as_str().unwrap()),
        );
    }
    // Exactly once: each flag went from version 1 to 2, and the audit log holds one
    // toggle by the scheduler per flag.
    for i in 0..CHANGES {
        let f = call(
            &cluster,
            "GET",
            &format!("/api/v1/projects/shop/flags/s{i}"),
            None,
        )
        .await;
        assert_eq!(f["version"], 2, "s{i} written once: {f}");
        assert_eq!(f["environments"]["production"]["enabled"], true);
    }
    let audit = call(
        &cluster,
        "GET",
        "/api/v1/audit?project=shop&action=flag.toggle&actor=system:scheduler&limit=500",
        None,
    )
    .await;
    let toggles = audit["items"].as_array().expect("items");
    assert_eq!(toggles.len(), CHANGES, "one toggle per change: {audit}");
    let applied_after_kill = changes
        .iter()
        .filter(|c| rfc3339_ms(c["applied_at"].as_str().unwrap()) >= killed_at)
        .count();
    delays.sort_unstable();
    let p50 = delays[delays.len() / 2];
    let max = delays[delays.len() - 1];
    report(
        "scheduler",
        &[
            ("replicas", "3".into()),
            ("changes", CHANGES.to_string()),
            ("spacing", ms(SPACING)),
            ("killed", "replica-1 (SIGKILL) half-way".into()),
            ("applied_after_kill", applied_after_kill.to_string()),
            ("applied_once", format!("{}/{}", toggles.len(), CHANGES)),
            ("delay_p50", format!("{p50}ms")),
            ("delay_max", format!("{max}ms")),
            ("delays_ms", format!("{delays:?}")),
        ],
    );
    assert!(applied_after_kill > 0, "the kill was half-way");
    assert!(max < 5_000, "worst delay {max} ms");
}
