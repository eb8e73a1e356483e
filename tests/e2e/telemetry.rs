//! Evaluation counts end to end, on a real server over a fresh Postgres database: a fleet
//! of real SDK clients evaluating on many threads, with flags changing under them, stores
//! exactly what it evaluated, per flag, variant and reason, once the clients have closed;
//! and the server's own OFREP evaluations are stored exactly too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flagpole_core::Context;
use flagpole_sdk::Client;
use flagpole_server::Db;
use flagpole_server::store::insights;
use reqwest::Method;
use serde_json::{Value, json};

use crate::sdk_server::contexts;
use crate::support::*;

/// Evaluations per (flag, variant, reason); errors have the variant `""`, as stored.
type Tally = BTreeMap<(String, String, String), i64>;

const CLIENTS: usize = 4;
const THREADS_PER_CLIENT: usize = 3;
/// Evaluations (of the whole fleet) before the change, and again after every client holds it.
const EVALUATIONS_PER_PHASE: u64 = 60_000;

/// The fixture's flags with their kinds, and a key no flag has.
const FLAGS: [(&str, Kind); 6] = [
    ("checkout", Kind::Bool),
    ("banner", Kind::Str),
    ("limit", Kind::Number),
    ("beta-ui", Kind::Bool),
    ("gated", Kind::Json),
    ("missing", Kind::Bool),
];

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Str,
    Number,
    Json,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_s_evaluations_are_stored_exactly_per_variant_and_reason() {
    let (url, mut replicas) = cluster(1).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let base = replicas[0].url.clone();
    let admin = Admin::default();
    let seeded = seed(&admin, &base, &db).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let client = Client::builder(&base, &seeded.sdk_key)
            .application("fleet", i.to_string())
            // Batches during the run as well as the final one at close.
            .telemetry_flush_interval(Duration::from_millis(200))
            .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
            .build()
            .unwrap();
        client.wait_until_ready(WAIT).await.unwrap();
        clients.push(client);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        for t in 0..THREADS_PER_CLIENT {
            let (client, stop, progress) = (client.clone(), stop.clone(), progress.clone());
            let worker = c * THREADS_PER_CLIENT + t;
            workers.push((
                c,
                std::thread::spawn(move || evaluate(&client, worker, &stop, &progress)),
            ));
        }
    }
    // Flags change while the threads evaluate: each client swaps snapshots under them
    // (twice), and the replaced ones must still be counted whole.
    progressed(&progress, EVALUATIONS_PER_PHASE).await;
    admin
        .ok(
            &base,
            Method::POST,
            &format!("{PROJECT}/flags/banner/environments/production/toggle"),
            json!({"enabled": false}),
        )
        .await;
    put_config(
        &admin,
        &base,
        "checkout",
        json!({"enabled": true, "off_variant": "off",
            "rules": [{"id": "pro", "clauses": [{"attribute": "plan", "op": "in", "values": ["pro", "team"]}],
                       "serve": {"rollout": {"weights": [{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}}],
            "default_serve": {"variant": "on"}}),
    )
    .await;
    let changed = truth(&db, seeded.env_id).await.version;
    for client in &clients {
        reaches(client, changed).await;
    }
    let now = progress.load(Ordering::Relaxed);
    progressed(&progress, now + EVALUATIONS_PER_PHASE).await;
    stop.store(true, Ordering::Relaxed);

    let mut evaluated = Tally::new();
    let mut per_client = [0i64; CLIENTS];
    for (c, worker) in workers {
        let tally = tokio::task::spawn_blocking(move || worker.join().unwrap())
            .await
            .unwrap();
        for (key, n) in tally {
            per_client[c] += n;
            *evaluated.entry(key).or_default() += n;
        }
    }
    // The final flush: everything counted and not yet acknowledged.
    for client in &clients {
        client.close().await;
    }

    let total: i64 = evaluated.values().sum();
    println!("{total} evaluations, per flag, variant and reason: {evaluated:?}");
    for reason in [
        "OFF",
        "TARGET_MATCH",
        "RULE_MATCH",
        "PREREQUISITE_FAILED",
        "FALLTHROUGH",
        "ERROR",
    ] {
        assert!(
            evaluated.keys().any(|(_, _, r)| r == reason),
            "no {reason} evaluated"
        );
    }
    // Acknowledged means committed: the clients have closed, nothing is on its way.
    assert_eq!(stored(&db, seeded.env_id).await, evaluated);

    // The insights API says the same, per variant, and per application.
    let (status, banner) = admin
        .call(
            &base,
            Method::GET,
            &format!("{PROJECT}/flags/banner/insights?environment=production"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{banner}");
    for series in banner["variants"].as_array().unwrap() {
        let variant = series["variant"].as_str().unwrap();
        let expected: i64 = evaluated
            .iter()
            .filter(|((f, v, _), _)| f == "banner" && v == variant)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(series["total"], expected, "banner {variant}");
    }
    let apps = banner["apps"].as_array().unwrap();
    assert_eq!(apps.len(), CLIENTS, "{apps:?}");
    for app in apps {
        assert_eq!(app["app"], "fleet");
        let c: usize = app["app_version"].as_str().unwrap().parse().unwrap();
        assert_eq!(app["evaluations"], per_client[c], "client {c}");
    }
    replicas[0].stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_evaluations_are_stored_exactly() {
    let (url, mut replicas) = cluster(1).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let base = replicas[0].url.clone();
    let admin = Admin::default();
    let seeded = seed(&admin, &base, &db).await;
    let http = reqwest::Client::new();
    let contexts = contexts();
    let mut expected = Tally::new();
    let mut evaluations = 0;
    for round in 0..2 {
        for (i, (_, context)) in contexts.iter().enumerate() {
            let (flag, _) = FLAGS[i % FLAGS.len()];
            let answer = ofrep(
                &http,
                &base,
                &seeded.sdk_key,
                &format!("/flags/{flag}"),
                context,
            )
            .await;
            tally_ofrep(&mut expected, flag, &answer);
            evaluations += 1;
            if i % 10 == 0 {
                let all = ofrep(&http, &base, &seeded.sdk_key, "/flags", context).await;
                for answer in all["flags"].as_array().unwrap() {
                    tally_ofrep(&mut expected, answer["key"].as_str().unwrap(), answer);
                    evaluations += 1;
                }
            }
        }
        if round == 0 {
            // The server's cache replaces its snapshot; evaluations go on meanwhile.
            admin
                .ok(
                    &base,
                    Method::POST,
                    &format!("{PROJECT}/flags/checkout/environments/production/toggle"),
                    json!({"enabled": false}),
                )
                .await;
        }
    }
    // The server drains its counters every 10 s and once more as it stops.
    replicas[0].stop().await;

    assert_eq!(stored(&db, seeded.env_id).await, expected);
    let mut conn = db.pool.acquire().await.unwrap();
    let apps = insights::apps(&mut conn, seeded.env_id).await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0].app, "ofrep");
    assert_eq!(apps[0].evaluations, evaluations);
}

/// One evaluating thread: every flag through every kind of call, for a spread of
/// contexts, until `stop`; what it evaluated, as the calls answered.
fn evaluate(client: &Client, worker: usize, stop: &AtomicBool, progress: &AtomicU64) -> Tally {
    let contexts: Vec<Context> = contexts().into_iter().map(|(ctx, _)| ctx).collect();
    let mut tally = Tally::new();
    let mut note = |flag: &str, variant: Option<&str>, reason: &str| {
        let key = (
            flag.to_owned(),
            variant.unwrap_or_default().to_owned(),
            reason.to_owned(),
        );
        *tally.entry(key).or_default() += 1;
    };
    let mut i = worker;
    while !stop.load(Ordering::Relaxed) {
        let ctx = &contexts[i % contexts.len()];
        let (flag, kind) = FLAGS[i % FLAGS.len()];
        let null = Value::Null;
        match (i / FLAGS.len()) % 4 {
            // The owned typed calls.
            0 => {
                let (variant, reason) = match kind {
                    Kind::Bool => {
                        let d = client.bool_detail(flag, ctx, false);
                        (d.variant, d.reason)
                    }
                    Kind::Str => {
                        let d = client.string_detail(flag, ctx, "");
                        (d.variant, d.reason)
                    }
                    Kind::Number => {
                        let d = client.number_detail(flag, ctx, 0.0);
                        (d.variant, d.reason)
                    }
                    Kind::Json => {
                        let d = client.json_detail(flag, ctx, Value::Null);
                        (d.variant, d.reason)
                    }
                };
                note(flag, variant.as_deref(), reason.code());
            }
            // Borrowed, on a `Flags` handle (which may outlive a change).
            1 => {
                let flags = client.flags();
                let e = flags.evaluate(flag, ctx);
                note(flag, e.variant, e.reason.code());
            }
            // Value-only calls, which build no reason: the same handle says what they
            // served, without counting.
            2 => {
                let flags = client.flags();
                let e = flags.snapshot().evaluate_uncounted(flag, ctx);
                match kind {
                    Kind::Bool => {
                        std::hint::black_box(flags.snapshot().bool_value(flag, ctx, false));
                    }
                    Kind::Str => {
                        std::hint::black_box(flags.string_value(flag, ctx, ""));
                    }
                    Kind::Number => {
                        std::hint::black_box(flags.snapshot().number_value(flag, ctx, 0.0));
                    }
                    Kind::Json => {
                        std::hint::black_box(flags.json_value(flag, ctx, &null));
                    }
                }
                note(flag, e.variant, e.reason.code());
            }
            // A call of the wrong type: an error.
            _ => {
                let flags = client.flags();
                let d = flags.number_detail(flag, ctx, 0.0);
                note(flag, d.variant, d.reason.code());
            }
        }
        i += 1;
        if i.is_multiple_of(1024) {
            progress.fetch_add(1024, Ordering::Relaxed);
            // Two cores for the fleet, the server and Postgres: let the others run.
            std::thread::yield_now();
        }
    }
    tally
}

/// Waits until the fleet has made `n` evaluations.
async fn progressed(progress: &AtomicU64, n: u64) {
    let waited = tokio::time::timeout(WAIT, async {
        while progress.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the fleet evaluated too slowly");
}

/// An OFREP request (`/flags/{key}` or `/flags`) that must be answered.
async fn ofrep(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    context: &Value,
) -> Value {
    let res = http
        .post(format!("{base}/ofrep/v1/evaluate{path}"))
        .bearer_auth(key)
        .json(&json!({ "context": context }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert!(
        status == 200 || body["errorCode"].is_string(),
        "{status} {body}"
    );
    body
}

/// Notes what an OFREP answer says was evaluated: a variant and Flagpole's reason, or an
/// error (unknown flag, missing bucket key: evaluated, and counted, as errors).
fn tally_ofrep(tally: &mut Tally, flag: &str, answer: &Value) {
    let key = match answer["errorCode"].as_str() {
        Some(_) => (flag.to_owned(), String::new(), "ERROR".to_owned()),
        None => (
            flag.to_owned(),
            answer["variant"].as_str().unwrap().to_owned(),
            answer["metadata"]["flagpoleReason"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    };
    *tally.entry(key).or_default() += 1;
}

/// What the database holds, per (flag, variant, reason), over every version and hour.
async fn stored(db: &Db, env_id: i64) -> Tally {
    let mut conn = db.pool.acquire().await.unwrap();
    insights::totals(&mut conn, env_id)
        .await
        .unwrap()
        .into_iter()
        .map(|(flag, variant, reason, n)| ((flag, variant, reason), n))
        .collect()
}
