//! Telemetry from SDKs (docs/protocol.md, "Telemetry") through real sockets into the
//! database: exact counts from several connections, idempotent redelivery, bad input,
//! a full queue, a restart mid-ingestion, the caps, rollup and retention; and the
//! server's own OFREP evaluations, counted as application `ofrep`.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};
use flagpole_core::wire::{MAX_BATCH_ITEMS, ServerMessage, TELEMETRY_HEADER};
use flagpole_server::db::{Backend, Db, now_ms};
use flagpole_server::ingest::upkeep;
use flagpole_server::store::ingest::DAY_MS;
use flagpole_server::store::{insights, rollup};
use flagpole_server::testing::fresh_db;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backends;
use crate::support::stream::{Seeded, Server, Ws, connect, next_message, seed, send};
use crate::support::{Cred, config, count, http1, request};

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    counts_from_many_connections_add_up_exactly => counts_add_up_postgres, counts_add_up_sqlite;
    a_batch_delivered_three_times_counts_once => redelivery_postgres, redelivery_sqlite;
    bad_input_is_refused_and_nothing_is_written => bad_input_postgres, bad_input_sqlite;
    a_full_queue_answers_busy_with_a_retry_hint => queue_full_postgres, queue_full_sqlite;
    unknown_flag_keys_are_capped_per_environment => unknown_cap_postgres, unknown_cap_sqlite;
    rollup_and_retention_keep_what_they_should => retention_postgres, retention_sqlite;
    acknowledged_batches_survive_a_restart => restart_postgres, restart_sqlite;
    flag_states_carry_the_flag_version => flag_version_postgres, flag_version_sqlite;
    ofrep_evaluations_are_counted_as_application_ofrep => ofrep_counted_postgres, ofrep_counted_sqlite;
}

/// A UUID-shaped batch id, distinct per `(run, n)`.
fn id(run: u32, n: u64) -> String {
    format!("{run:08x}-0000-7000-8000-{n:012x}")
}

/// One evaluation counter.
struct Count(&'static str, &'static str, &'static str, u64);

/// A batch of counters (and an exposure and an event, so raw rows are written too).
fn batch(id: &str, counts: &[Count]) -> Value {
    let now = now_ms();
    json!({
        "id": id,
        "sdk": "flagpole-test/1.0",
        "app": "checkout",
        "app_version": "2.0",
        "counts": counts.iter().map(|Count(flag, variant, reason, n)| json!({
            "flag": flag, "flag_version": 1, "variant": variant, "reason": reason,
            "start_ms": now - 10_000, "end_ms": now, "count": n,
        })).collect::<Vec<_>>(),
        "exposures": [{"flag": "switch", "flag_version": 1, "variant": "on",
                       "context_key": format!("user-{id}"), "at_ms": now}],
        "events": [{"name": "checkout_completed", "context_key": "u", "value": 2.5,
                    "properties": {"plan": "pro"}, "at_ms": now}],
    })
}

/// Opens the stream, checks the telemetry announcement, and reads the first snapshot.
async fn open(server: &Server, key: &str) -> Ws {
    let mut request = format!("ws://{}/sdk/v1/stream", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    assert_eq!(response.headers()[TELEMETRY_HEADER], "v1");
    send(&mut ws, json!({"type": "hello", "version": null})).await;
    assert!(matches!(
        next_message(&mut ws).await,
        ServerMessage::Snapshot { .. }
    ));
    ws
}

/// Sends a batch on the stream and returns the answer.
async fn report_ws(ws: &mut Ws, batch: &Value) -> ServerMessage {
    send(ws, json!({"type": "telemetry", "batch": batch})).await;
    next_message(ws).await
}

/// Posts a batch over a real socket; the status and the body.
async fn report_http(addr: SocketAddr, key: &str, body: &str) -> (u16, Value) {
    let request = format!(
        "POST /sdk/v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = http1(addr, &request).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Stored totals per (flag, variant, reason).
async fn totals(db: &Db, env_id: i64) -> BTreeMap<(String, String, String), i64> {
    let mut conn = db.pool.acquire().await.unwrap();
    insights::totals(&mut conn, env_id)
        .await
        .unwrap()
        .into_iter()
        .map(|(f, v, r, n)| ((f, v, r), n))
        .collect()
}

async fn started(backend: Backend) -> (Server, Seeded) {
    let server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    (server, seeded)
}

const VARIANTS: [(&str, &str); 4] = [
    ("on", "RULE_MATCH"),
    ("on", "FALLTHROUGH"),
    ("off", "FALLTHROUGH"),
    ("off", "OFF"),
];

/// After N evaluations reported by several stream connections and HTTP clients at once,
/// the stored counts equal exactly what was sent, per variant and reason, and the
/// insights API says the same.
async fn counts_from_many_connections_add_up_exactly(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let server = Arc::new(server);
    let mut clients = Vec::new();
    for client in 0..6u32 {
        let server = server.clone();
        let key = seeded.sdk_key.clone();
        clients.push(tokio::spawn(async move {
            let mut sent: BTreeMap<(String, String, String), i64> = BTreeMap::new();
            let mut ws = if client < 4 {
                Some(open(&server, &key).await)
            } else {
                None
            };
            for n in 0..25u64 {
                let (variant, reason) = VARIANTS[usize::try_from(n).unwrap() % 4];
                let amount = u64::from(client) * 1000 + n + 1;
                let body = batch(
                    &id(client, n),
                    &[
                        Count("switch", variant, reason, amount),
                        Count("switch", "on", "TARGET_MATCH", 1),
                    ],
                );
                *sent
                    .entry(("switch".into(), variant.into(), reason.into()))
                    .or_default() += i64::try_from(amount).unwrap();
                *sent
                    .entry(("switch".into(), "on".into(), "TARGET_MATCH".into()))
                    .or_default() += 1;
                match ws.as_mut() {
                    Some(ws) => match report_ws(ws, &body).await {
                        ServerMessage::TelemetryAck { id: acked } => {
                            assert_eq!(acked, id(client, n))
                        }
                        other => panic!("expected an ack, got {other:?}"),
                    },
                    None => {
                        let (status, reply) =
                            report_http(server.addr, &key, &body.to_string()).await;
                        assert_eq!(status, 202, "{reply}");
                        assert_eq!(reply["duplicate"], false);
                    }
                }
            }
            sent
        }));
    }
    let mut expected: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for client in clients {
        for (k, n) in client.await.unwrap() {
            *expected.entry(k).or_default() += n;
        }
    }
    // Acknowledged means committed: nothing to wait for.
    assert_eq!(totals(&server.db, seeded.env_id).await, expected);
    let mut conn = server.db.pool.acquire().await.unwrap();
    assert_eq!(
        insights::raw_counts(&mut conn, seeded.env_id)
            .await
            .unwrap(),
        (150, 150)
    );

    let (status, insights) = server
        .call(
            Method::GET,
            "/api/v1/projects/shop/flags/switch/insights?environment=production",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{insights}");
    let on_total: i64 = expected
        .iter()
        .filter(|((_, v, _), _)| v == "on")
        .map(|(_, n)| n)
        .sum();
    let on = insights["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variant"] == "on")
        .unwrap();
    assert_eq!(on["total"], on_total, "{insights}");
    assert!(insights["last_evaluated"].as_i64().unwrap() > now_ms() - 60_000);
    let apps = insights["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{insights}");
    assert_eq!(apps[0]["app"], "checkout");
    assert_eq!(apps[0]["batches"], 150);
    assert_eq!(insights["dropped"], 0);

    // Lifecycle reads the same counters for every flag of the project at once.
    let project_id: i64 = sqlx::query_scalar("select project_id from environment where id = $1")
        .bind(seeded.env_id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let since = now_ms() - DAY_MS;
    let last = insights::last_evaluated_in_project(&mut conn, project_id, since, None)
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(
        (last[0].0.as_str(), last[0].1.as_str()),
        ("production", "switch")
    );
    let keys = ["other".to_owned()];
    let none = insights::last_evaluated_in_project(&mut conn, project_id, since, Some(&keys))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

/// The same batch on the stream twice and over HTTP once: acknowledged three times,
/// counted once (HTTP says it was a duplicate).
async fn a_batch_delivered_three_times_counts_once(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let body = batch(&id(7, 1), &[Count("switch", "on", "FALLTHROUGH", 41)]);
    let mut ws = open(&server, &seeded.sdk_key).await;
    for _ in 0..2 {
        assert_eq!(
            report_ws(&mut ws, &body).await,
            ServerMessage::TelemetryAck { id: id(7, 1) }
        );
    }
    let (status, reply) = report_http(server.addr, &seeded.sdk_key, &body.to_string()).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["duplicate"], true);
    let stored = totals(&server.db, seeded.env_id).await;
    assert_eq!(
        stored.values().copied().collect::<Vec<_>>(),
        vec![41],
        "{stored:?}"
    );
    assert_eq!(count(&server.db, "select count(*) from exposure").await, 1);
    assert_eq!(
        count(&server.db, "select count(*) from tracked_event").await,
        1
    );
}

/// Each kind of bad input gets its 4xx in the API's error shape, naming the field, on
/// HTTP and on the stream; nothing at all is written.
async fn bad_input_is_refused_and_nothing_is_written(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let key = seeded.sdk_key.as_str();
    let good = batch(&id(1, 1), &[Count("switch", "on", "FALLTHROUGH", 1)]);
    let with = |pointer: &str, value: Value| {
        let mut b = good.clone();
        *b.pointer_mut(pointer).unwrap() = value;
        b.to_string()
    };
    let too_many = {
        let mut b = good.clone();
        b["counts"] = Value::Array(vec![b["counts"][0].clone(); MAX_BATCH_ITEMS + 1]);
        b.to_string()
    };
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        ("{\"id\": ".into(), 400, None),
        (
            format!(
                "{{\"id\": \"{}\", \"pad\": \"{}\"}}",
                id(1, 1),
                "x".repeat(1 << 20)
            ),
            413,
            None,
        ),
        (too_many, 413, Some("counts")),
        (with("/id", json!("not-a-uuid")), 422, Some("id")),
        (
            with("/counts/0/count", json!(0)),
            422,
            Some("counts[0].count"),
        ),
        (
            with("/counts/0/count", json!("seven")),
            422,
            Some("counts[0].count"),
        ),
        (
            with("/events/0/at_ms", json!(now_ms() + 3_600_000)),
            422,
            Some("events[0].at_ms"),
        ),
        (
            with("/exposures/0/at_ms", json!(now_ms() - 8 * DAY_MS)),
            422,
            Some("exposures[0].at_ms"),
        ),
        (
            with("/counts/0/flag", json!("a\u{0}b")),
            422,
            Some("counts[0].flag"),
        ),
        (
            with("/events/0/name", json!("")),
            422,
            Some("events[0].name"),
        ),
    ];
    for (body, status, field) in &cases {
        let (got, reply) = report_http(server.addr, key, body).await;
        assert_eq!(got, *status, "{reply} for {}", &body[..body.len().min(80)]);
        assert!(reply["error"]["code"].is_string(), "{reply}");
        if let Some(field) = field {
            assert_eq!(reply["error"]["field"], *field, "{reply}");
        }
    }
    let good_text = good.to_string();
    for bad_key in ["fp_sdk_unknown", "not-a-key"] {
        let (status, reply) = report_http(server.addr, bad_key, &good_text).await;
        assert_eq!(status, 401, "{reply}");
    }
    // The stream answers invalid batches with a nack naming the field, and stays open.
    let mut ws = open(&server, key).await;
    let invalid: Value = serde_json::from_str(&with("/counts/0/count", json!(0))).unwrap();
    match report_ws(&mut ws, &invalid).await {
        ServerMessage::TelemetryNack {
            code,
            message,
            retry_after_ms,
            ..
        } => {
            assert_eq!(code, "invalid_batch");
            assert!(message.starts_with("counts[0].count"), "{message}");
            assert_eq!(retry_after_ms, None);
        }
        other => panic!("expected a nack, got {other:?}"),
    }
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut ws).await, ServerMessage::Pong);

    // A revoked key is refused too.
    let (status, keys) = server
        .call(
            Method::GET,
            "/api/v1/projects/shop/environments/production/sdk-keys",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let key_id = keys["items"][0]["id"].as_i64().unwrap();
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v1/projects/shop/environments/production/sdk-keys/{key_id}"),
            None,
        )
        .await;
    assert!(status.is_success());
    let (status, reply) = report_http(server.addr, key, &good_text).await;
    assert_eq!(status, 401, "{reply}");
    for table in [
        "telemetry_batch",
        "eval_count_hour",
        "exposure",
        "tracked_event",
        "sdk_app",
    ] {
        let n = count(&server.db, &format!("select count(*) from {table}")).await;
        assert_eq!(n, 0, "{table} has rows");
    }
}

/// A queue with no room for the batch: 429 with `Retry-After` over HTTP, a `busy` nack
/// with a retry hint on the stream; nothing written.
async fn a_full_queue_answers_busy_with_a_retry_hint(backend: Backend) {
    let mut config = config();
    config.telemetry_queue_bytes = 100;
    let server = Server::start_with(fresh_db(backend).await.unwrap(), config).await;
    let seeded = seed(&server).await;
    let body = batch(&id(3, 1), &[Count("switch", "on", "FALLTHROUGH", 5)]).to_string();
    let request = format!(
        "POST /sdk/v1/events HTTP/1.1\r\nHost: t\r\nX-API-Key: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        seeded.sdk_key,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut raw)
        .await
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 429"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"),
        "{raw}"
    );
    assert!(raw.contains("too_many_requests"), "{raw}");

    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    match report_ws(&mut ws, &serde_json::from_str(&body).unwrap()).await {
        ServerMessage::TelemetryNack {
            code,
            retry_after_ms,
            ..
        } => {
            assert_eq!(code, "busy");
            assert_eq!(retry_after_ms, Some(1000));
        }
        other => panic!("expected a busy nack, got {other:?}"),
    }
    assert_eq!(
        count(&server.db, "select count(*) from telemetry_batch").await,
        0
    );
}

/// Counts for flag keys that name no flag get rows of their own up to the cap; the rest
/// are added up under `(other)`, so nothing is lost and rows stay bounded.
async fn unknown_flag_keys_are_capped_per_environment(backend: Backend) {
    let mut config = config();
    config.telemetry_unknown_flags = 2;
    let server = Server::start_with(fresh_db(backend).await.unwrap(), config).await;
    let seeded = seed(&server).await;
    let names = ["ghost-1", "ghost-2", "ghost-3", "ghost-4", "ghost-5"];
    for (n, name) in names.iter().enumerate() {
        let body = batch(
            &id(9, n as u64),
            &[
                Count(name, "on", "ERROR", 10),
                Count("switch", "on", "FALLTHROUGH", 1),
            ],
        );
        let (status, reply) = report_http(server.addr, &seeded.sdk_key, &body.to_string()).await;
        assert_eq!(status, 202, "{reply}");
    }
    let stored = totals(&server.db, seeded.env_id).await;
    let flags: BTreeMap<&str, i64> = stored.iter().map(|((f, ..), n)| (f.as_str(), *n)).collect();
    assert_eq!(
        flags,
        BTreeMap::from([
            ("(other)", 30),
            ("ghost-1", 10),
            ("ghost-2", 10),
            ("switch", 5)
        ])
    );
}

/// The upkeep rolls hours up into days exactly, and retention removes what is older than
/// it keeps: on Postgres by dropping whole raw partitions, on SQLite by deleting rows.
async fn rollup_and_retention_keep_what_they_should(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let db = &server.db;
    for n in 0..3 {
        let body = batch(&id(4, n), &[Count("switch", "on", "FALLTHROUGH", 100 + n)]);
        let (status, reply) = report_http(server.addr, &seeded.sdk_key, &body.to_string()).await;
        assert_eq!(status, 202, "{reply}");
    }
    let now = now_ms();
    let settings = upkeep::Settings::from_config(&config());
    // The server's own upkeep loop may hold the day's mark (`skip locked`) when this run
    // comes; then this run skips it and that loop commits the rollup a moment later.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        upkeep::run_once(db, &settings, now).await;
        if count(db, "select count(*) from eval_rollup_pending").await == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "days still marked for rollup after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let daily = count(db, "select cast(sum(n) as bigint) from eval_count_day").await;
    assert_eq!(daily, 303);

    // Raw rows 40 days old (older than the 30 kept), and a batch id 3 days old.
    let old = now - 40 * DAY_MS;
    if backend == Backend::Postgres {
        rollup::create_partitions(db, old, 0, 0).await.unwrap();
    }
    sqlx::query(
        "insert into exposure (environment_id, flag_key, flag_version, variant, context_key, at_ms) \
         values ($1, 'switch', 1, 'on', 'old-user', $2)",
    )
    .bind(seeded.env_id)
    .bind(old)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("update telemetry_batch set received_at = $1 where id = $2")
        .bind(now - 3 * DAY_MS)
        .bind(id(4, 0))
        .execute(&db.pool)
        .await
        .unwrap();
    let before = rollup::raw_partitions(db).await.unwrap();
    upkeep::run_once(db, &settings, now).await;
    let after = rollup::raw_partitions(db).await.unwrap();
    assert_eq!(
        count(db, "select count(*) from exposure").await,
        3,
        "old row gone"
    );
    assert_eq!(count(db, "select count(*) from telemetry_batch").await, 2);
    if backend == Backend::Postgres {
        let old_day = old - old.rem_euclid(DAY_MS);
        assert!(
            before.iter().any(|(_, _, day)| *day == old_day),
            "{before:?}"
        );
        assert!(
            !after.iter().any(|(_, _, day)| *day == old_day),
            "{after:?}"
        );
        let today = now - now.rem_euclid(DAY_MS);
        for table in ["exposure", "tracked_event"] {
            for ahead in 0..=3 {
                let day = today + ahead * DAY_MS;
                assert!(
                    after.iter().any(|(t, _, d)| *t == table && *d == day),
                    "{table} partition {ahead} days ahead: {after:?}"
                );
            }
        }
    }
}

/// Several clients report while the server shuts down gracefully: every batch that was
/// acknowledged is stored, and what is stored is exactly the sum of whole batches (none
/// half-written). A new server over the same database then takes the rest.
async fn acknowledged_batches_survive_a_restart(backend: Backend) {
    let db = fresh_db(backend).await.unwrap();
    let mut server = Server::start(db.clone(), 15).await;
    let seeded = seed(&server).await;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..4u32 {
        let key = seeded.sdk_key.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) && n < 2000 {
                let body = batch(&id(client, n), &[Count("switch", "on", "FALLTHROUGH", n + 1)]);
                let stream = tokio::net::TcpStream::connect(addr).await;
                if stream.is_err() {
                    break;
                }
                let request = format!(
                    "POST /sdk/v1/events HTTP/1.1\r\nHost: t\r\nX-API-Key: {key}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.to_string().len()
                );
                let mut stream = stream.unwrap();
                let mut raw = String::new();
                let sent = tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await;
                let read = tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut raw).await;
                if sent.is_ok() && read.is_ok() && raw.starts_with("HTTP/1.1 202") {
                    acked.push((id(client, n), i64::try_from(n + 1).unwrap()));
                }
                n += 1;
            }
            acked
        }));
    }
    // Let ingestion run, then shut down in the middle of it.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    server.stop().await;
    stop.store(true, Ordering::Release);
    let mut acked = Vec::new();
    for client in clients {
        acked.extend(client.await.unwrap());
    }
    assert!(
        acked.len() > 10,
        "only {} batches acknowledged",
        acked.len()
    );

    let server = Server::start(db.clone(), 15).await;
    let stored_ids: HashSet<String> = sqlx::query_scalar("select id from telemetry_batch")
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for (id, _) in &acked {
        assert!(stored_ids.contains(id), "acknowledged batch {id} was lost");
    }
    // Batch (client, n) counted n + 1: the stored total is the sum over stored ids.
    let expected: i64 = stored_ids
        .iter()
        .map(|id| i64::from_str_radix(&id[24..], 16).unwrap() + 1)
        .sum();
    let stored: i64 = totals(&db, seeded.env_id).await.values().sum();
    assert_eq!(stored, expected);
    // The restarted server takes telemetry again.
    let body = batch(&id(99, 0), &[Count("switch", "off", "OFF", 1)]);
    let (status, reply) = report_http(server.addr, &seeded.sdk_key, &body.to_string()).await;
    assert_eq!(status, 202, "{reply}");
}

/// Snapshots and patches carry each flag's stored version, which SDKs count against: a
/// config write's patch carries the version the write made.
async fn flag_states_carry_the_flag_version(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello", "version": null})).await;
    let snapshot = crate::support::stream::snapshot_of(next_message(&mut ws).await);
    let (_, flag) = server
        .call(Method::GET, "/api/v1/projects/shop/flags/switch", None)
        .await;
    let version = flag["version"].as_u64().unwrap();
    assert_eq!(snapshot.flags[0].version, version, "{flag}");
    server.toggle("switch", true).await;
    let patch = crate::support::stream::patch_of(next_message(&mut ws).await);
    assert_eq!(patch.flags[0].version, version + 1);
    let truth = crate::support::stream::truth(&server.db, seeded.env_id).await;
    assert_eq!(truth.flags[0].version, version + 1);
}

/// OFREP evaluations, single and bulk, are counted by the server itself under application
/// `ofrep`, across a change of the flag (the cache's snapshot replaced while requests
/// evaluate), and are stored by the time the server has shut down. The evaluation
/// debugger's are not counted: inspecting a flag is not using it.
async fn ofrep_evaluations_are_counted_as_application_ofrep(backend: Backend) {
    let db = fresh_db(backend).await.unwrap();
    let mut server = Server::start(db.clone(), 15).await;
    let seeded = seed(&server).await;
    let mut expected: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut tally = |flag: &Value| {
        let key = (
            flag["key"].as_str().unwrap().to_owned(),
            flag["variant"].as_str().unwrap().to_owned(),
            flag["metadata"]["flagpoleReason"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        *expected.entry(key).or_default() += 1;
    };
    let context = json!({"context": {"targetingKey": "user-1"}});
    let ofrep = async |path: &str| {
        let req = request(
            Method::POST,
            path,
            Cred::Bearer(&seeded.sdk_key),
            Some(&context),
            &[],
        );
        let (status, body) = server.send(req).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice::<Value>(&body).unwrap()
    };
    let mut evaluations = 0;
    let mut before = None;
    for round in 0..2 {
        for _ in 0..5 {
            let answer = ofrep("/ofrep/v1/evaluate/flags/switch").await;
            before.get_or_insert_with(|| answer["variant"].clone());
            tally(&answer);
            evaluations += 1;
        }
        for flag in ofrep("/ofrep/v1/evaluate/flags").await["flags"]
            .as_array()
            .unwrap()
        {
            tally(flag);
            evaluations += 1;
        }
        if round == 0 {
            // The cache follows the change on its own task: evaluate until it has.
            server.toggle("switch", true).await;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "OFREP never saw the change"
                );
                let answer = ofrep("/ofrep/v1/evaluate/flags/switch").await;
                tally(&answer);
                evaluations += 1;
                if Some(&answer["variant"]) != before.as_ref() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
    for _ in 0..3 {
        let (status, answer) = server
            .call(
                Method::POST,
                "/api/v1/projects/shop/environments/production/evaluate",
                Some(json!({"key": "user-1"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    server.stop().await;

    assert_eq!(totals(&db, seeded.env_id).await, expected);
    let mut conn = db.pool.acquire().await.unwrap();
    let apps = insights::apps(&mut conn, seeded.env_id).await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0].app, flagpole_server::ingest::own_counts::APP);
    assert!(apps[0].sdk.starts_with("flagpole-server/"), "{apps:?}");
    assert_eq!(apps[0].evaluations, evaluations);
}
