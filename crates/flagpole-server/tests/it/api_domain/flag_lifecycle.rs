//! Flag lifecycle through the API: type and permanent mark on flags, "potentially stale"
//! and why on every flag and list row, the list's stale filter, a project's lifetimes.
//!
//! The server reads the clock, so the tests move the flags instead: creation and last
//! change are backdated with SQL, and evaluations are stored counters written with SQL at
//! chosen times, as the telemetry writer would have left them.

use axum::http::{Method, StatusCode};
use flagpole_server::db::{Backend, now_ms};
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error, count, exec};

backends! {
    old_flags_exceed_their_lifetime_unless_permanent => lifetime_postgres, lifetime_sqlite;
    off_everywhere_and_unchanged_for_14_days_is_settled => settled_postgres, settled_sqlite;
    unevaluated_for_7_days_everywhere_is_stale => not_evaluated_postgres, not_evaluated_sqlite;
    the_list_filters_by_staleness_and_pages => stale_filter_postgres, stale_filter_sqlite;
    project_lifetimes_are_validated_and_apply => project_lifetimes_postgres, project_lifetimes_sqlite;
    unknown_types_are_refused_naming_the_field => bad_type_postgres, bad_type_sqlite;
}

const FLAGS: &str = "/api/v1/projects/p/flags";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A project `p` (development, staging, production) with the given flags.
async fn app_with(backend: Backend, flags: &[Value]) -> TestApp {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for flag in flags {
        let (s, b) = t.call(Method::POST, FLAGS, Some(flag.clone())).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    t
}

/// Moves a flag's creation and last change `created` and `updated` days into the past.
async fn backdate(t: &TestApp, key: &str, created: i64, updated: i64) {
    let now = now_ms();
    exec(
        t.db(),
        "update flag set created_at = $1, updated_at = $2 where key = $3 returning id",
        &[
            json!(now - created * DAY_MS),
            json!(now - updated * DAY_MS),
            json!(key),
        ],
    )
    .await;
}

/// Stores an evaluation counter of `key` in `env` whose window ended `days_ago`.
async fn evaluated(t: &TestApp, env: &str, key: &str, days_ago: i64) {
    let env_id = exec(
        t.db(),
        "select e.id from environment e join project p on p.id = e.project_id \
         where p.key = 'p' and e.key = $1",
        &[json!(env)],
    )
    .await;
    let last_at = now_ms() - days_ago * DAY_MS;
    let hour = (last_at - 60_000) / 3_600_000 * 3_600_000;
    exec(
        t.db(),
        "insert into eval_count_hour (environment_id, flag_key, flag_version, variant, reason, \
         rule, error, hour, n, last_at) values ($1, $2, 1, 'on', 'FALLTHROUGH', '', '', $3, 5, $4) \
         returning n",
        &[json!(env_id), json!(key), json!(hour), json!(last_at)],
    )
    .await;
}

async fn get(t: &TestApp, key: &str) -> Value {
    let (s, b) = t.call(Method::GET, &format!("{FLAGS}/{key}"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// The reason codes of a flag or list row.
fn codes(flag: &Value) -> Vec<&str> {
    flag["lifecycle"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

/// The list's rows by key, for a query string.
async fn list(t: &TestApp, query: &str) -> (Vec<String>, i64, Value) {
    let (s, b) = t.call(Method::GET, &format!("{FLAGS}{query}"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let keys = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    (keys, b["total"].as_i64().unwrap(), b)
}

async fn old_flags_exceed_their_lifetime_unless_permanent(backend: Backend) {
    let t = app_with(backend, &[json!({"key": "old"})]).await;
    let fresh = get(&t, "old").await;
    assert_eq!(
        (&fresh["type"], &fresh["permanent"], &fresh["lifecycle"]),
        (
            &json!("release"),
            &json!(false),
            &json!({"stale": false, "reasons": []})
        ),
        "{fresh}"
    );

    // 52 days old and never evaluated: past the release lifetime, and unused.
    backdate(&t, "old", 52, 1).await;
    let flag = get(&t, "old").await;
    assert_eq!(flag["lifecycle"]["stale"], true, "{flag}");
    assert_eq!(codes(&flag), ["lifetime_exceeded", "not_evaluated"]);
    assert_eq!(
        flag["lifecycle"]["reasons"][0]["message"],
        "lifetime of 40 days for release flags exceeded (created 52 days ago)"
    );
    // Evaluated yesterday in one environment: in use, but still past its lifetime.
    evaluated(&t, "staging", "old", 1).await;
    let flag = get(&t, "old").await;
    assert_eq!(codes(&flag), ["lifetime_exceeded"], "{flag}");
    let (_, _, page) = list(&t, "").await;
    assert_eq!(page["items"][0]["lifecycle"], flag["lifecycle"], "{page}");

    // Marked permanent: not stale, with a version, history and an audit entry like any
    // change of the flag.
    let audits = t.audit_count().await;
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{FLAGS}/old"),
            Some(json!({"permanent": true, "version": flag["version"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (&b["permanent"], &b["type"], &b["lifecycle"]),
        (
            &json!(true),
            &json!("release"),
            &json!({"stale": false, "reasons": []})
        ),
        "{b}"
    );
    assert_eq!(b["version"], flag["version"].as_i64().unwrap() + 1);
    assert_eq!(t.audit_count().await, audits + 1);
    let before_after = count(
        t.db(),
        "select count(*) from audit_event where action = 'flag.update' \
         and before like '%\"permanent\":false%' and after like '%\"permanent\":true%'",
    )
    .await;
    assert_eq!(before_after, 1);
    let (_, _, page) = list(&t, "").await;
    assert_eq!(page["items"][0]["permanent"], true, "{page}");
    assert_eq!(page["items"][0]["lifecycle"]["stale"], false, "{page}");
}

async fn off_everywhere_and_unchanged_for_14_days_is_settled(backend: Backend) {
    let flags = [
        json!({"key": "settled", "type": "kill_switch"}),
        json!({"key": "split"}),
    ];
    let t = app_with(backend, &flags).await;
    // `split` serves two variants in production: not settled, whatever its age.
    let split = json!({"enabled": true, "off_variant": "off", "default_serve": {"rollout": {
        "weights": [{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}});
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{FLAGS}/split/environments/production"),
            Some(json!({"config": split, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for key in ["settled", "split"] {
        evaluated(&t, "production", key, 0).await;
    }

    backdate(&t, "settled", 30, 13).await;
    backdate(&t, "split", 30, 15).await;
    assert_eq!(get(&t, "settled").await["lifecycle"]["stale"], false);
    // A kill switch never outlives its lifetime; unchanged for 15 days while off
    // everywhere, it is settled.
    backdate(&t, "settled", 30, 15).await;
    let flag = get(&t, "settled").await;
    assert_eq!(flag["type"], "kill_switch");
    assert_eq!(codes(&flag), ["settled"], "{flag}");
    assert_eq!(
        flag["lifecycle"]["reasons"][0]["message"],
        "unchanged for 15 days and off in every environment"
    );
    assert_eq!(get(&t, "split").await["lifecycle"]["stale"], false);
    // A change (turning it on in development) makes it recent again.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/settled/environments/development/toggle"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(get(&t, "settled").await["lifecycle"]["stale"], false);
}

async fn unevaluated_for_7_days_everywhere_is_stale(backend: Backend) {
    let flags = [
        json!({"key": "quiet", "type": "permission"}),
        json!({"key": "new", "type": "permission"}),
    ];
    let t = app_with(backend, &flags).await;
    // Permission flags never outlive their lifetime, and changed yesterday they are not
    // settled: only evaluations decide.
    backdate(&t, "quiet", 20, 1).await;
    backdate(&t, "new", 5, 5).await;
    evaluated(&t, "production", "quiet", 8).await;
    evaluated(&t, "staging", "quiet", 30).await;
    // Counters older than 7 days in every environment, and none in development.
    let flag = get(&t, "quiet").await;
    assert_eq!(codes(&flag), ["not_evaluated"], "{flag}");
    assert_eq!(
        flag["lifecycle"]["reasons"][0]["message"],
        "not evaluated in any environment for the last 7 days"
    );
    // Never evaluated but created 5 days ago: not yet.
    assert_eq!(get(&t, "new").await["lifecycle"]["stale"], false);
    // One environment evaluating it is enough; the list agrees with the flag.
    evaluated(&t, "development", "quiet", 6).await;
    assert_eq!(get(&t, "quiet").await["lifecycle"]["stale"], false);
    let (keys, total, _) = list(&t, "?stale=true").await;
    assert_eq!((keys, total), (Vec::<String>::new(), 0));
}

async fn the_list_filters_by_staleness_and_pages(backend: Backend) {
    let flags: Vec<Value> = ["a-old", "b-new", "c-old", "d-old", "e-new"]
        .iter()
        .map(|k| json!({"key": k, "tags": [if k.ends_with("old") { "legacy" } else { "web" }]}))
        .collect();
    let t = app_with(backend, &flags).await;
    for key in ["a-old", "c-old", "d-old"] {
        backdate(&t, key, 60, 1).await;
    }
    let (keys, total, page) = list(&t, "?stale=true").await;
    assert_eq!(
        (keys, total),
        (vec!["a-old".into(), "c-old".into(), "d-old".into()], 3)
    );
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["lifecycle"]["stale"] == true),
        "{page}"
    );
    let (keys, total, _) = list(&t, "?stale=false").await;
    assert_eq!((keys, total), (vec!["b-new".into(), "e-new".into()], 2));
    // Pages of the filtered list; the total is of the filtered list.
    let (keys, total, _) = list(&t, "?stale=true&limit=2&offset=1").await;
    assert_eq!((keys, total), (vec!["c-old".into(), "d-old".into()], 3));
    // With the other filters.
    let (keys, total, _) = list(&t, "?stale=true&q=c-").await;
    assert_eq!((keys, total), (vec!["c-old".into()], 1));
    let (keys, _, _) = list(&t, "?stale=false&tag=legacy").await;
    assert!(keys.is_empty(), "{keys:?}");
    // Without the filter every row still says whether it is stale.
    let (keys, total, page) = list(&t, "?limit=2").await;
    assert_eq!((keys.len(), total), (2, 5));
    assert_eq!(page["items"][0]["lifecycle"]["stale"], true, "{page}");
    assert_eq!(page["items"][1]["lifecycle"]["stale"], false, "{page}");
    // Archived flags are never stale.
    let (s, b) = t
        .call(Method::POST, &format!("{FLAGS}/a-old/archive"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["lifecycle"]["stale"], false, "{b}");
    let (keys, _, _) = list(&t, "?archived=true&stale=false").await;
    assert_eq!(keys, ["a-old"]);

    let (s, b) = t
        .call(Method::GET, &format!("{FLAGS}?stale=maybe"), None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, None);
}

async fn project_lifetimes_are_validated_and_apply(backend: Backend) {
    let t = app_with(backend, &[json!({"key": "ops", "type": "operational"})]).await;
    let url = "/api/v1/projects/p/lifecycle";
    let defaults = json!({"release": 40, "experiment": 40, "operational": 7,
        "kill_switch": null, "permission": null});
    let (s, b) = t.call(Method::GET, url, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((&b["lifetimes"], &b["defaults"]), (&defaults, &defaults));
    let version = b["version"].as_i64().unwrap();

    backdate(&t, "ops", 10, 1).await;
    evaluated(&t, "production", "ops", 0).await;
    let flag = get(&t, "ops").await;
    assert_eq!(
        flag["lifecycle"]["reasons"][0]["message"],
        "lifetime of 7 days for operational flags exceeded (created 10 days ago)"
    );

    for (bad, field) in [
        (json!({"operational": 0}), "lifetimes.operational"),
        (json!({"release": -1}), "lifetimes.release"),
        (json!({"release": 2.5}), "lifetimes.release"),
        (json!({"kill_switch": "never"}), "lifetimes.kill_switch"),
        (json!({"permission": 100_000}), "lifetimes.permission"),
    ] {
        let (s, b) = t
            .call(Method::PUT, url, Some(json!({"lifetimes": bad})))
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    let (s, b) = t
        .call(Method::PUT, url, Some(json!({"lifetimes": {"flag": 3}})))
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, None);

    // Operational flags may live 14 days here; releases forever; the rest keep defaults.
    let audits = t.audit_count().await;
    let (s, b) = t
        .call(
            Method::PUT,
            url,
            Some(
                json!({"lifetimes": {"operational": 14, "release": null}, "version": version,
                "comment": "migrations take two weeks"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["lifetimes"],
        json!({"release": null, "experiment": 40, "operational": 14,
            "kill_switch": null, "permission": null})
    );
    assert_eq!(b["version"], version + 1);
    assert_eq!(t.audit_count().await, audits + 1);
    assert_eq!(
        count(
            t.db(),
            "select count(*) from audit_event where action = 'project.lifetimes_update' \
             and comment = 'migrations take two weeks'"
        )
        .await,
        1
    );
    assert_eq!(get(&t, "ops").await["lifecycle"]["stale"], false);
    // A stale version is a conflict.
    let (s, b) = t
        .call(
            Method::PUT,
            url,
            Some(json!({"lifetimes": {}, "version": version})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    // An empty object goes back to the defaults.
    let (s, b) = t
        .call(Method::PUT, url, Some(json!({"lifetimes": {}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["lifetimes"], defaults);
    assert_eq!(get(&t, "ops").await["lifecycle"]["stale"], true);
}

async fn unknown_types_are_refused_naming_the_field(backend: Backend) {
    let t = app_with(backend, &[json!({"key": "f", "type": "experiment"})]).await;
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({"key": "g", "type": "temporary"})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("type"));
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kill_switch"),
        "the message lists the types: {b}"
    );
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{FLAGS}/f"),
            Some(json!({"type": "Kill Switch", "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("type"));
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{FLAGS}/f"),
            Some(json!({"permanent": "yes", "version": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("permanent"));
    let flag = get(&t, "f").await;
    assert_eq!(
        (&flag["type"], &flag["version"]),
        (&json!("experiment"), &json!(1))
    );
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("{FLAGS}/f"),
            Some(json!({"type": "kill_switch", "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["type"], "kill_switch");
}
