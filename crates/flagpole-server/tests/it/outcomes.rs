//! Outcomes of flag-controlled code paths (`guard`, `shadow`; migration 0016) through a
//! real socket into the database: exact totals, redelivery counted once, histograms
//! added bucket by bucket and read back as p50/p99, rollup and retention, bad input.

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use flagpole_core::wire::latency;
use flagpole_server::db::{Backend, now_ms};
use flagpole_server::ingest::upkeep;
use flagpole_server::store::ingest::DAY_MS;
use flagpole_server::testing::fresh_db;
use serde_json::{Value, json};

use crate::backends;
use crate::support::stream::{Seeded, Server, seed};
use crate::support::{config, count, http1};

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    outcomes_add_up_exactly_and_count_once => outcomes_add_up_postgres, outcomes_add_up_sqlite;
    bad_outcomes_are_refused_by_field_and_nothing_is_written => bad_outcomes_postgres, bad_outcomes_sqlite;
}

fn id(n: u64) -> String {
    format!("0000abcd-0000-7000-8000-{n:012x}")
}

/// One outcome item: `calls` runs all of `ms` milliseconds.
fn outcome(variant: &str, kind: &str, calls: u64, errors: u64, mismatches: u64, ms: u64) -> Value {
    let now = now_ms();
    json!({
        "flag": "switch", "flag_version": 1, "variant": variant, "kind": kind,
        "start_ms": now - 10_000, "end_ms": now, "calls": calls, "errors": errors,
        "duration_us": calls * ms * 1000,
        "latency": [[latency::bucket_of(ms * 1000), calls]], "mismatches": mismatches,
    })
}

fn batch(n: u64, outcomes: Vec<Value>) -> Value {
    json!({"id": id(n), "sdk": "flagpole-test/1.0", "outcomes": outcomes})
}

async fn report(addr: SocketAddr, key: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let request = format!(
        "POST /sdk/v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = http1(addr, &request).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn started(backend: Backend) -> (Server, Seeded) {
    let server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    (server, seeded)
}

fn series<'a>(outcomes: &'a Value, variant: &str, kind: &str) -> &'a Value {
    outcomes["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["variant"] == variant && s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {variant}/{kind} in {outcomes}"))
}

/// Five batches (one sent twice) of guard and shadow outcomes: the endpoint's totals are
/// exactly what was sent once, rates and quantiles follow, the day's rollup holds the
/// same sums, and retention removes hourly rows past their age.
async fn outcomes_add_up_exactly_and_count_once(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let key = seeded.sdk_key.as_str();
    let batches = [
        batch(
            1,
            vec![
                outcome("on", "guard", 100, 5, 0, 10),
                outcome("off", "guard", 200, 2, 0, 8),
            ],
        ),
        batch(2, vec![outcome("on", "guard", 300, 15, 0, 40)]),
        batch(3, vec![outcome("on", "shadow_current", 500, 0, 0, 3)]),
        batch(
            4,
            vec![outcome("on", "shadow_new", 480, 6, 48, 8), {
                let mut o = outcome("on", "shadow_new", 0, 0, 0, 8);
                o["skipped"] = json!(20);
                o["latency"] = json!([]);
                o
            }],
        ),
    ];
    for b in &batches {
        let (status, reply) = report(server.addr, key, b).await;
        assert_eq!(status, 202, "{reply}");
        assert_eq!(reply["duplicate"], false);
    }
    let (status, reply) = report(server.addr, key, &batches[1]).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["duplicate"], true);

    let (status, outcomes) = server
        .call(
            Method::GET,
            "/api/v1/projects/shop/flags/switch/outcomes?environment=production",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcomes}");
    assert_eq!(
        outcomes["series"].as_array().unwrap().len(),
        4,
        "{outcomes}"
    );
    let on = &series(&outcomes, "on", "guard")["total"];
    assert_eq!(on["calls"], 400, "{outcomes}");
    assert_eq!(on["errors"], 20);
    assert_eq!(on["error_rate"], 0.05);
    assert_eq!(on["mean_ms"], 32.5);
    // 100 runs of 10 ms and 300 of 40 ms: the median and p99 fall in 40 ms's bucket.
    let (low, high) = latency::bounds(latency::bucket_of(40_000));
    for q in ["p50_ms", "p99_ms"] {
        let v = on[q].as_f64().unwrap() * 1000.0;
        assert!(low <= v && v <= high, "{q} {v} outside [{low}, {high}]");
    }
    assert!(on["mismatch_rate"].is_null());
    let off = &series(&outcomes, "off", "guard")["total"];
    assert_eq!(
        (off["calls"].as_i64(), off["errors"].as_i64()),
        (Some(200), Some(2))
    );
    let new = &series(&outcomes, "on", "shadow_new")["total"];
    assert_eq!(new["calls"], 480, "{outcomes}");
    assert_eq!(new["mismatches"], 48);
    assert_eq!(new["mismatch_rate"], 0.1);
    assert_eq!(new["skipped"], 20);
    assert_eq!(new["mean_ms"], 8.0);
    let current = &series(&outcomes, "on", "shadow_current")["total"];
    assert_eq!(current["mean_ms"], 3.0);
    assert_eq!(
        series(&outcomes, "on", "guard")["points"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The day's rollup holds the same sums; retention removes what is past its age.
    let db = &server.db;
    let settings = upkeep::Settings::from_config(&config());
    let now = now_ms();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        upkeep::run_once(db, &settings, now).await;
        if count(db, "select count(*) from eval_rollup_pending").await == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollup pending after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        count(db, "select cast(sum(calls) as bigint) from outcome_day").await,
        1580
    );
    assert_eq!(
        count(db, "select cast(sum(n) as bigint) from outcome_latency_day").await,
        1580
    );
    assert_eq!(
        count(
            db,
            "select cast(sum(mismatches) as bigint) from outcome_day"
        )
        .await,
        48
    );
    let (status, daily) = server
        .call(
            Method::GET,
            "/api/v1/projects/shop/flags/switch/outcomes?environment=production&granularity=day",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{daily}");
    assert_eq!(series(&daily, "on", "guard")["total"]["calls"], 400);

    for table in ["outcome_hour", "outcome_latency_hour"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("update {table} set hour = $1")))
            .bind(now - 200 * DAY_MS)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    upkeep::run_once(db, &settings, now).await;
    assert_eq!(count(db, "select count(*) from outcome_hour").await, 0);
    assert_eq!(
        count(db, "select count(*) from outcome_latency_hour").await,
        0
    );
    assert!(count(db, "select count(*) from outcome_day").await > 0);
}

/// Each malformed outcome is a 422 naming its field; nothing of the batch is written.
async fn bad_outcomes_are_refused_by_field_and_nothing_is_written(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let good = batch(9, vec![outcome("on", "guard", 10, 1, 0, 5)]);
    let with = |pointer: &str, value: Value| {
        let mut b = good.clone();
        *b.pointer_mut(pointer).unwrap() = value;
        b
    };
    let cases = [
        (
            with("/outcomes/0/kind", json!("shadow_sideways")),
            "outcomes[0].kind",
        ),
        (
            with("/outcomes/0/latency", json!([[3, 9]])),
            "outcomes[0].latency",
        ),
        (
            with("/outcomes/0/latency", json!([[500, 10]])),
            "outcomes[0].latency",
        ),
        (with("/outcomes/0/errors", json!(11)), "outcomes[0].errors"),
        (
            with("/outcomes/0/mismatches", json!(1)),
            "outcomes[0].mismatches",
        ),
        (with("/outcomes/0/flag", json!("")), "outcomes[0].flag"),
        (
            with("/outcomes/0/start_ms", json!(now_ms() + 3_600_000)),
            "outcomes[0].start_ms",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = report(server.addr, &seeded.sdk_key, &body).await;
        assert_eq!(status, 422, "{field}: {reply}");
        assert_eq!(reply["error"]["field"], field, "{reply}");
    }
    assert_eq!(
        count(&server.db, "select count(*) from outcome_hour").await,
        0
    );
    assert_eq!(
        count(&server.db, "select count(*) from telemetry_batch").await,
        0
    );
    let (status, reply) = report(server.addr, &seeded.sdk_key, &good).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(
        count(&server.db, "select count(*) from outcome_hour").await,
        1
    );
}
