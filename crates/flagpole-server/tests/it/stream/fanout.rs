//! Fan-out: a stalled client does not delay a reading one, and a write through one replica
//! reaches a client of another replica on the same Postgres database.

use std::time::{Duration, Instant};

use axum::http::Method;
use flagpole_core::wire::{ServerMessage, close_code};
use flagpole_server::db::{Backend, Db};
use flagpole_server::testing::fresh_db;
use serde_json::json;

use crate::support::stream::*;

/// Size of the big flag's variant value: every patch of it is about this large.
const BLOB: usize = 256 * 1024;
const TOGGLES: usize = 30;

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    )
}

/// Largest TCP send buffer the kernel will give the server's socket (autotuning maximum).
fn max_send_buffer() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(4 * 1024 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_delay_a_reading_one() {
    let mut server = Server::start(fresh_db(Backend::Sqlite).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    let blob = "x".repeat(BLOB);
    server
        .write(
            Method::POST,
            "/api/v1/projects/shop/flags",
            json!({"key": "big", "kind": "json", "variants": [
                {"key": "a", "value": {"blob": blob}}, {"key": "b", "value": {}}]}),
        )
        .await;

    // The stalled client says hello (so it is sent everything) and then never reads, with
    // a 4 KiB receive buffer.
    let mut stalled = connect_small_buffer(server.addr, &seeded.sdk_key).await;
    send(&mut stalled, json!({"type": "hello"})).await;
    let mut reader = connect(server.addr, &seeded.sdk_key).await;
    send(&mut reader, json!({"type": "hello"})).await;
    let start = snapshot_of(next_message(&mut reader).await).version;

    let (versions_tx, mut versions_rx) = tokio::sync::mpsc::unbounded_channel();
    let reading = tokio::spawn(async move {
        let mut held = start;
        let mut bytes = 0usize;
        while held < start + TOGGLES as u64 {
            let patch = patch_of(next_message(&mut reader).await);
            assert_eq!(patch.from, held, "the reading client misses nothing");
            held = patch.to;
            bytes += serde_json::to_string(&patch).unwrap().len();
            versions_tx.send((patch.to, Instant::now())).unwrap();
        }
        (reader, bytes)
    });

    let (mut latencies, mut writes) = (Vec::new(), Vec::new());
    for i in 0..TOGGLES {
        // From before the request: an upper bound that includes the write itself (the
        // patch often arrives before the in-process request returns).
        let issued = Instant::now();
        server.toggle("big", i % 2 == 0).await;
        writes.push(issued.elapsed());
        let (version, received) = tokio::time::timeout(WAIT, versions_rx.recv())
            .await
            .expect("the reading client gets the patch in time")
            .unwrap();
        assert_eq!(version, start + i as u64 + 1);
        latencies.push(received.saturating_duration_since(issued));
    }
    let (_reader, bytes) = reading.await.unwrap();
    // The premise: far more was sent to the stalled client than any socket buffer holds.
    assert!(
        bytes > max_send_buffer() + 64 * 1024,
        "only {bytes} bytes sent"
    );
    eprintln!(
        "stalled-client test ({} KiB patches, one client stalled): write request -> patch received by the reading client: {}; the write request alone: {}",
        BLOB / 1024,
        summary(latencies.clone()),
        summary(writes)
    );
    let max = latencies.iter().max().unwrap();
    assert!(*max < Duration::from_secs(2), "a patch took {max:?}");

    // The stalled client, reading at last, sees a continuous history to the latest version
    // (snapshots where it fell behind), or is told to reconnect: never a gap.
    let latest = start + TOGGLES as u64;
    let mut held = None;
    while held != Some(latest) {
        match next(&mut stalled).await {
            Seen::Message(ServerMessage::Snapshot { environment }) => {
                assert!(
                    held.is_none_or(|h| environment.version >= h),
                    "never backwards"
                );
                held = Some(environment.version);
            }
            Seen::Message(ServerMessage::Patch(patch)) => {
                assert_eq!(Some(patch.from), held, "never a gap");
                held = Some(patch.to);
            }
            Seen::Closed(code) => {
                assert_eq!(code, Some(close_code::TOO_SLOW));
                break;
            }
            Seen::Message(other) => panic!("unexpected {other:?}"),
        }
    }
    server.stop().await;
}

/// `switch` evaluated through OFREP on `server`.
async fn ofrep_switch(server: &Server, sdk_key: &str) -> serde_json::Value {
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/ofrep/v1/evaluate/flags/switch")
        .header("authorization", format!("Bearer {sdk_key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            r#"{"context":{"targetingKey":"u1"}}"#,
        ))
        .unwrap();
    let (_, body) = server.send(req).await;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    body["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_replica_reaches_a_client_of_another() {
    let db = fresh_db(Backend::Postgres).await.unwrap();
    let mut a = Server::start(db.clone(), 15).await;
    let replica_db = Db::connect(db.url(), 8).await.unwrap();
    let mut b = Server::start(replica_db, 15).await;
    let seeded = seed(&a).await;

    let mut ws = connect(b.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello"})).await;
    let mut env = snapshot_of(next_message(&mut ws).await);
    assert_eq!(sorted(env.clone()), truth(&a.db, seeded.env_id).await);

    let (mut latencies, mut writes) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let issued = Instant::now();
        a.toggle("switch", i % 2 == 0).await;
        writes.push(issued.elapsed());
        let patch = patch_of(next_message(&mut ws).await);
        latencies.push(issued.elapsed());
        assert_eq!(patch.from, env.version, "continuous across replicas");
        env.apply(&patch).unwrap();
    }
    assert_eq!(sorted(env.clone()), truth(&a.db, seeded.env_id).await);
    // And the other way round, with a burst: patches may coalesce but never skip.
    let mut on_a = connect(a.addr, &seeded.sdk_key).await;
    send(&mut on_a, json!({"type": "hello", "version": env.version})).await;
    // OFREP on A caches the environment now (switch is off: the last toggle was i = 19).
    assert_eq!(
        ofrep_switch(&a, &seeded.sdk_key).await,
        serde_json::json!(false)
    );
    for i in 0..5 {
        b.toggle("switch", i % 2 == 0).await;
    }
    let latest = truth(&a.db, seeded.env_id).await;
    let mut held = env.version;
    while held < latest.version {
        let patch = patch_of(next_message(&mut on_a).await);
        assert_eq!(patch.from, held);
        held = patch.to;
    }
    // A's snapshot cache heard of B's writes too (long before its TTL).
    let deadline = Instant::now() + Duration::from_secs(3);
    while ofrep_switch(&a, &seeded.sdk_key).await != serde_json::json!(true) {
        assert!(Instant::now() < deadline, "OFREP on A never saw B's write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "two replicas: write request on A -> patch received by a client of B: {}; the write request alone: {}",
        summary(latencies),
        summary(writes)
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_and_changes_keep_flowing() {
    let db = fresh_db(Backend::Postgres).await.unwrap();
    let mut a = Server::start(db.clone(), 15).await;
    let mut b = Server::start(Db::connect(db.url(), 8).await.unwrap(), 15).await;
    let seeded = seed(&a).await;
    let mut ws = connect(b.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello"})).await;
    let mut env = snapshot_of(next_message(&mut ws).await);

    // Both replicas' LISTEN connections are cut, as by a network blip or a Postgres restart.
    // Only push's: each replica's scheduler listens on a channel of its own.
    let killed: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = current_database() and query ilike 'listen%flagpole_env%'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(killed, [true, true], "one listener per replica");

    let issued = Instant::now();
    a.toggle("switch", true).await;
    let patch = patch_of(next_message(&mut ws).await);
    let took = issued.elapsed();
    assert_eq!(patch.from, env.version);
    env.apply(&patch).unwrap();
    assert_eq!(sorted(env), truth(&a.db, seeded.env_id).await);
    // Well within the periodic check's interval: the reconnect (and its resync) did it.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    eprintln!("killed listeners: write request -> patch on the other replica in {took:?}");
    a.stop().await;
    b.stop().await;
}
