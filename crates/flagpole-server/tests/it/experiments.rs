//! A/B experiments (issue 16) on both backends: the lifecycle (draft → running → stopped)
//! with the flag's split and exposures mark, every kind of bad input refused naming its
//! field with nothing written, and results computed from exposures and events reported
//! by SDKs over real sockets into the per-unit aggregates.

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use flagpole_core::model::Serve;
use flagpole_server::db::{Backend, now_ms};
use flagpole_server::store::rollup::{self, Retention};
use flagpole_server::testing::fresh_db;
use serde_json::{Value, json};

use crate::backends;
use crate::support::stream::{Seeded, Server, seed, truth};
use crate::support::{assert_error, count, http1};

backends! {
    an_experiment_runs_from_draft_to_decision => lifecycle_postgres, lifecycle_sqlite;
    bad_input_names_the_field_and_writes_nothing => bad_input_postgres, bad_input_sqlite;
    results_come_from_reported_exposures_and_events => results_postgres, results_sqlite;
    an_event_stored_before_its_exposure_counts => event_first_postgres, event_first_sqlite;
}

const BASE: &str = "/api/v1/projects/shop/experiments";

fn experiment(arms: Value) -> Value {
    json!({
        "environment": "production",
        "flag": "switch",
        "name": "Green button",
        "hypothesis": "A green button sells more",
        "arms": arms,
        "metrics": {
            "primary": {"key": "bought", "kind": "binomial", "event": "purchase"},
            "secondary": [{"key": "revenue", "kind": "sum", "event": "purchase"}],
            "guardrail": [{"key": "errors", "kind": "count", "event": "error", "inverse": true}]
        }
    })
}

fn halves() -> Value {
    json!([{"variant": "off", "weight": 50}, {"variant": "on", "weight": 50}])
}

async fn started(backend: Backend) -> (Server, Seeded) {
    let server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    (server, seeded)
}

/// The flag `switch` in production as SDKs get it.
async fn flag_state(server: &Server, env_id: i64) -> flagpole_core::model::FlagState {
    let env = truth(&server.db, env_id).await;
    env.flags
        .iter()
        .find(|f| f.flag.key == "switch")
        .map(|f| (**f).clone())
        .unwrap()
}

async fn audits(server: &Server, action: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("select count(*) from audit_event where action = $1")
        .bind(action)
        .fetch_one(&server.db.pool)
        .await
        .unwrap()
}

/// Create (draft, nothing marked) → start refused while the flag is off → start (the
/// default serve becomes the split, SDKs are asked for exposures) → a second experiment
/// on the same flag cannot start → the split cannot change behind the experiment's back,
/// nor through an edit without restart → restart → stop with a decision (mark gone).
async fn an_experiment_runs_from_draft_to_decision(backend: Backend) {
    let (server, seeded) = started(backend).await;
    let (s, created) = server
        .call(Method::POST, BASE, Some(experiment(halves())))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "draft");
    assert_eq!(created["arms"][0]["variant"], "off");
    let id = created["id"].as_i64().unwrap();
    let one = format!("{BASE}/{id}");
    assert!(!flag_state(&server, seeded.env_id).await.exposures);

    let (s, body) = server
        .call(Method::POST, &format!("{one}/start"), None)
        .await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, Some("flag"));
    assert_eq!(
        server.call(Method::GET, &one, None).await.1["state"],
        "draft"
    );

    server.toggle("switch", true).await;
    let before = server
        .call(
            Method::GET,
            "/api/v1/projects/shop/environments/production",
            None,
        )
        .await
        .1["data_version"]
        .as_i64()
        .unwrap();
    let (s, running) = server
        .call(Method::POST, &format!("{one}/start"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{running}");
    assert_eq!(running["state"], "running");
    assert!(running["started_at"].as_i64().unwrap() > 0);
    let state = flag_state(&server, seeded.env_id).await;
    assert!(state.exposures, "SDKs must be asked for exposures");
    let Serve::Rollout(rollout) = &state.config.default_serve else {
        panic!(
            "default serve is not the split: {:?}",
            state.config.default_serve
        );
    };
    let weights: Vec<(&str, u32)> = rollout
        .weights
        .iter()
        .map(|w| (w.variant.as_str(), w.weight))
        .collect();
    assert_eq!(weights, vec![("off", 50_000), ("on", 50_000)]);
    let after = server
        .call(
            Method::GET,
            "/api/v1/projects/shop/environments/production",
            None,
        )
        .await
        .1["data_version"]
        .as_i64()
        .unwrap();
    assert!(after > before);

    // A second experiment on the same flag and environment cannot start.
    let (_, second) = server
        .call(Method::POST, BASE, Some(experiment(halves())))
        .await;
    let (s, body) = server
        .call(
            Method::POST,
            &format!("{BASE}/{}/start", second["id"]),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, Some("flag"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&id.to_string())
    );

    // The split is the experiment's: a config write that changes it is refused...
    let (_, flag) = server
        .call(Method::GET, "/api/v1/projects/shop/flags/switch", None)
        .await;
    let mut config = flag["environments"]["production"].clone();
    config["default_serve"] = json!({"variant": "on"});
    let (s, body) = server
        .call(
            Method::PUT,
            "/api/v1/projects/shop/flags/switch/environments/production",
            Some(json!({"config": config, "version": flag["version"]})),
        )
        .await;
    assert_error(
        s,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("config.default_serve"),
    );
    // ... while the kill switch still works (and keeps the exposures mark).
    server.toggle("switch", false).await;
    assert!(flag_state(&server, seeded.env_id).await.exposures);
    server.toggle("switch", true).await;

    // Changing the split of the running experiment needs a restart.
    let mut edit =
        experiment(json!([{"variant": "off", "weight": 20}, {"variant": "on", "weight": 80}]));
    for k in ["environment", "flag"] {
        edit.as_object_mut().unwrap().remove(k);
    }
    edit["version"] = running["version"].clone();
    let (s, body) = server.call(Method::PUT, &one, Some(edit.clone())).await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, Some("arms"));
    edit["restart"] = json!(true);
    let (s, restarted) = server.call(Method::PUT, &one, Some(edit)).await;
    assert_eq!(s, StatusCode::OK, "{restarted}");
    assert_eq!(restarted["state"], "running");
    let state = flag_state(&server, seeded.env_id).await;
    let Serve::Rollout(rollout) = &state.config.default_serve else {
        panic!("no split");
    };
    assert_eq!(rollout.weights[0].weight, 20_000);
    assert!(state.exposures);

    // Stop: the decision must name an arm; afterwards the mark is gone.
    let (s, body) = server
        .call(
            Method::POST,
            &format!("{one}/stop"),
            Some(json!({"ship": "purple"})),
        )
        .await;
    assert_error(
        s,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("decision.ship"),
    );
    let (s, stopped) = server
        .call(
            Method::POST,
            &format!("{one}/stop"),
            Some(json!({"ship": "on", "comment": "green wins"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(stopped["decision"]["ship"], "on");
    assert!(!flag_state(&server, seeded.env_id).await.exposures);
    let (s, body) = server
        .call(
            Method::POST,
            &format!("{one}/stop"),
            Some(json!({"ship": null})),
        )
        .await;
    assert_error(s, &body, StatusCode::CONFLICT, None);

    // The second experiment may start now.
    let (s, body) = server
        .call(
            Method::POST,
            &format!("{BASE}/{}/start", second["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (s, list) = server.call(Method::GET, BASE, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    for (action, n) in [
        ("experiment.create", 2),
        ("experiment.start", 2),
        ("experiment.restart", 1),
        ("experiment.stop", 1),
    ] {
        assert_eq!(audits(&server, action).await, n, "{action}");
    }
}

/// Each kind of bad input is a 422 naming its field, and no experiment is written.
async fn bad_input_names_the_field_and_writes_nothing(backend: Backend) {
    let (server, _) = started(backend).await;
    let mut cases: Vec<(Value, &str)> = Vec::new();
    cases.push((
        experiment(json!([{"variant": "off", "weight": 50}, {"variant": "purple", "weight": 50}])),
        "arms[1].variant",
    ));
    cases.push((
        experiment(json!([{"variant": "off", "weight": 50}, {"variant": "on", "weight": 40}])),
        "arms",
    ));
    cases.push((
        experiment(json!([{"variant": "off", "weight": 100}])),
        "arms",
    ));
    let mut no_event = experiment(halves());
    no_event["metrics"]["primary"]["event"] = json!("");
    cases.push((no_event, "metrics.primary.event"));
    let mut ratio = experiment(halves());
    ratio["metrics"]["secondary"][0] = json!({"key": "r", "kind": "ratio", "event": "purchase"});
    cases.push((ratio, "metrics.secondary[0].denominator"));
    let mut env = experiment(halves());
    env["environment"] = json!("moon");
    cases.push((env, "environment"));
    let mut flag = experiment(halves());
    flag["flag"] = json!("nope");
    cases.push((flag, "flag"));
    let mut alpha = experiment(halves());
    alpha["analysis"] = json!({"mode": "bayesian", "alpha": 2});
    cases.push((alpha, "analysis.alpha"));
    let audit_before = count(&server.db, "select count(*) from audit_event").await;
    for (body, field) in cases {
        let (s, reply) = server.call(Method::POST, BASE, Some(body)).await;
        assert_error(s, &reply, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    assert_eq!(
        count(&server.db, "select count(*) from experiment").await,
        0
    );
    assert_eq!(
        count(&server.db, "select count(*) from audit_event").await,
        audit_before
    );
    let (s, reply) = server.call(Method::GET, &format!("{BASE}/999"), None).await;
    assert_error(s, &reply, StatusCode::NOT_FOUND, None);
}

/// Posts a batch over a real socket; the status.
async fn report(addr: SocketAddr, key: &str, body: &Value) -> u16 {
    let body = body.to_string();
    let request = format!(
        "POST /sdk/v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http1(addr, &request).await.0
}

/// 200 units per arm with known conversions, reported as SDKs report them: results count
/// units per arm, exclude the unit seen in both arms, ignore an event sent before its
/// unit's exposure and one outside the conversion window, and give flagpole-stats'
/// numbers for the sums.
async fn results_come_from_reported_exposures_and_events(backend: Backend) {
    let (server, seeded) = started(backend).await;
    server.toggle("switch", true).await;
    let (_, created) = server
        .call(Method::POST, BASE, Some(experiment(halves())))
        .await;
    let id = created["id"].as_i64().unwrap();
    let (s, body) = server
        .call(Method::POST, &format!("{BASE}/{id}/start"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (s, empty) = server
        .call(Method::GET, &format!("{BASE}/{id}/results"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{empty}");
    assert_eq!(empty["collecting_data"], true);
    assert_eq!(empty["arms"][0]["units"], 0);

    let now = now_ms();
    let mut exposures = Vec::new();
    let mut events = Vec::new();
    // off: 200 units, 20 buy (value 10); on: 200 units, 40 buy (value 10).
    for (variant, buyers) in [("off", 20), ("on", 40)] {
        for i in 0..200 {
            let unit = format!("{variant}-{i}");
            exposures.push(
                json!({"flag": "switch", "flag_version": 1, "variant": variant,
                "context_key": unit, "at_ms": now - 1000}),
            );
            if i < buyers {
                events.push(
                    json!({"name": "purchase", "context_key": unit, "value": 10.0,
                    "at_ms": now - 500}),
                );
            }
        }
    }
    // Before its exposure: not counted.
    events.push(json!({"name": "purchase", "context_key": "off-150", "at_ms": now - 5000}));
    // Exposed 80 hours ago: its purchase now is outside the binomial metric's 72-hour
    // window, but the sum metric (no window) counts it.
    exposures.push(
        json!({"flag": "switch", "flag_version": 1, "variant": "off",
        "context_key": "off-late", "at_ms": now - 80 * 3_600_000}),
    );
    events.push(
        json!({"name": "purchase", "context_key": "off-late", "value": 10.0,
        "at_ms": now - 500}),
    );
    // A unit seen in both arms is excluded.
    exposures.push(json!({"flag": "switch", "flag_version": 1, "variant": "on",
        "context_key": "off-199", "at_ms": now - 900}));
    // Another flag's exposure is not a unit.
    exposures.push(json!({"flag": "other", "flag_version": 1, "variant": "on",
        "context_key": "stranger", "at_ms": now - 900}));
    let batch = json!({"id": "01890a5d-ac96-774b-bcce-b30209900001", "sdk": "test/1",
        "exposures": exposures, "events": events});
    assert_eq!(report(server.addr, &seeded.sdk_key, &batch).await, 202);
    // An event in a later batch counts too.
    let later = json!({"id": "01890a5d-ac96-774b-bcce-b30209900002", "sdk": "test/1",
        "events": [{"name": "error", "context_key": "on-3", "at_ms": now}]});
    assert_eq!(report(server.addr, &seeded.sdk_key, &later).await, 202);

    let (s, r) = server
        .call(Method::GET, &format!("{BASE}/{id}/results"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["excluded_multiple_exposures"], 1, "{r}");
    assert_eq!(r["arms"][0]["units"], 200);
    assert_eq!(r["arms"][1]["units"], 200);
    assert_eq!(r["srm"]["checked"], true);
    assert_eq!(r["srm"]["warning"], false);
    assert!(r["as_of"].as_i64().unwrap() >= now);
    let primary = &r["metrics"][0];
    assert_eq!(primary["key"], "bought");
    assert_eq!(primary["role"], "primary");
    assert_eq!(primary["arms"][0]["conversions"], 20.0);
    assert_eq!(primary["arms"][1]["conversions"], 40.0);
    assert_eq!(primary["collecting_data"], false);
    // The same sums through flagpole-stats directly.
    let control = flagpole_stats::Aggregate::Proportion { n: 200, sum: 20.0 }.summary();
    let treatment = flagpole_stats::Aggregate::Proportion { n: 200, sum: 40.0 }.summary();
    let t =
        flagpole_stats::frequentist::two_sided(&control, &treatment, &Default::default()).unwrap();
    let c = &primary["arms"][1]["comparison"];
    assert!(
        (c["relative"]["estimate"].as_f64().unwrap() - t.lift).abs() < 1e-12,
        "{c}"
    );
    assert!(
        (c["p_value"].as_f64().unwrap() - t.p_value).abs() < 1e-12,
        "{c}"
    );
    assert!((c["relative"]["low"].as_f64().unwrap() - t.interval.low).abs() < 1e-12);
    assert_eq!(c["significant"], t.p_value < 0.05);
    let revenue = &r["metrics"][1];
    assert_eq!(revenue["key"], "revenue");
    assert!(
        (revenue["arms"][1]["mean"].as_f64().unwrap() - 2.0).abs() < 1e-12,
        "{revenue}"
    );
    assert!((revenue["arms"][0]["mean"].as_f64().unwrap() - 210.0 / 200.0).abs() < 1e-12);
    // One error, in treatment: the guardrail's control mean is 0, which gbstats refuses.
    let errors = &r["metrics"][2];
    assert_eq!(errors["arms"][1]["mean"].as_f64().unwrap(), 1.0 / 200.0);
    assert_eq!(
        errors["arms"][1]["comparison"]["error"]["code"],
        "ZERO_NEGATIVE_BASELINE_VARIATION"
    );
    // The aggregates are per unit, not per event.
    assert_eq!(
        count(&server.db, "select count(*) from experiment_unit").await,
        401
    );
}

/// A backend tracks, a frontend evaluates: the batch with the events is stored before the
/// one with their units' exposures (both timestamps valid, the event after the exposure).
/// The events wait for the exposure and count then, with the same rules as in one batch:
/// an event before its unit's exposure or past the conversion window does not convert;
/// what no exposure claims is deleted by the upkeep once the window has passed.
async fn an_event_stored_before_its_exposure_counts(backend: Backend) {
    let (server, seeded) = started(backend).await;
    server.toggle("switch", true).await;
    let (_, created) = server
        .call(Method::POST, BASE, Some(experiment(halves())))
        .await;
    let id = created["id"].as_i64().unwrap();
    let (s, body) = server
        .call(Method::POST, &format!("{BASE}/{id}/start"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let now = now_ms();
    let purchase = |unit: &str, at_ms: i64| json!({"name": "purchase", "context_key": unit, "value": 10.0, "at_ms": at_ms});
    let exposure = |unit: &str, variant: &str, at_ms: i64| {
        json!({"flag": "switch", "flag_version": 1, "variant": variant,
            "context_key": unit, "at_ms": at_ms})
    };
    // The backend's batch: 10 purchases in off, 20 in on, one before its unit's exposure,
    // one 80 hours after it (outside the binomial's 72 hours, inside the sum's no window),
    // one of a unit never exposed.
    let mut events = Vec::new();
    for (variant, buyers) in [("off", 10), ("on", 20)] {
        events.extend((0..buyers).map(|i| purchase(&format!("{variant}-{i}"), now - 500)));
    }
    events.push(purchase("off-90", now - 5000));
    events.push(purchase("off-late", now - 500));
    events.push(purchase("stranger", now - 500));
    let backend_batch = json!({"id": "01890a5d-ac96-774b-bcce-b30209900011", "sdk": "test/1",
        "events": events});
    assert_eq!(
        report(server.addr, &seeded.sdk_key, &backend_batch).await,
        202
    );
    let (_, r) = server
        .call(Method::GET, &format!("{BASE}/{id}/results"), None)
        .await;
    assert_eq!(r["arms"][0]["units"], 0, "no exposure yet: {r}");

    // The frontend's batch, stored after: 100 units per arm.
    let mut exposures = Vec::new();
    for variant in ["off", "on"] {
        exposures
            .extend((0..100).map(|i| exposure(&format!("{variant}-{i}"), variant, now - 1000)));
    }
    exposures.push(exposure("off-late", "off", now - 80 * 3_600_000));
    let frontend_batch = json!({"id": "01890a5d-ac96-774b-bcce-b30209900012", "sdk": "test/1",
        "exposures": exposures});
    assert_eq!(
        report(server.addr, &seeded.sdk_key, &frontend_batch).await,
        202
    );

    let (s, r) = server
        .call(Method::GET, &format!("{BASE}/{id}/results"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["arms"][0]["units"], 101, "{r}");
    assert_eq!(r["arms"][1]["units"], 100, "{r}");
    let bought = &r["metrics"][0];
    assert_eq!(bought["arms"][0]["conversions"], 10.0, "{bought}");
    assert_eq!(bought["arms"][1]["conversions"], 20.0, "{bought}");
    let revenue = &r["metrics"][1];
    assert!(
        (revenue["arms"][0]["mean"].as_f64().unwrap() - 110.0 / 101.0).abs() < 1e-12,
        "{revenue}"
    );
    assert!((revenue["arms"][1]["mean"].as_f64().unwrap() - 2.0).abs() < 1e-12);
    // Applied or dropped once the exposure came; the stranger's purchase still waits,
    // once per metric that reads it (bought, revenue).
    let pending = "select count(*) from experiment_pending_event";
    assert_eq!(count(&server.db, pending).await, 2);

    // Applied once: the same exposures again add nothing.
    let again = json!({"id": "01890a5d-ac96-774b-bcce-b30209900013", "sdk": "test/1",
        "exposures": [exposure("on-0", "on", now - 900)]});
    assert_eq!(report(server.addr, &seeded.sdk_key, &again).await, 202);
    let (_, r) = server
        .call(Method::GET, &format!("{BASE}/{id}/results"), None)
        .await;
    assert_eq!(r["metrics"][0]["arms"][1]["conversions"], 20.0, "{r}");
    assert!((r["metrics"][1]["arms"][1]["mean"].as_f64().unwrap() - 2.0).abs() < 1e-12);

    // The upkeep keeps a held event while its window lasts and deletes it after.
    let retention = Retention {
        raw_ms: 30 * 24 * 3_600_000,
        hourly_ms: 30 * 24 * 3_600_000,
        daily_ms: 400 * 24 * 3_600_000,
        batch_ids_ms: 2 * 24 * 3_600_000,
    };
    rollup::apply_retention(&server.db, &retention, now + 71 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(count(&server.db, pending).await, 2);
    rollup::apply_retention(&server.db, &retention, now + 73 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(count(&server.db, pending).await, 0);
}
