//! Scheduled changes on Postgres and SQLite, with the server's own scheduler loop running:
//! applied within a second of their time (the delays are printed), a flag changed in
//! between is a conflict that a rebase resolves, cancelling, bad input changing nothing,
//! and catching up once after the server was down.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use flagpole_server::db::{Backend, Db, now_ms};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::backends;
use crate::support::{TestApp, app_over, assert_error, count};

backends! {
    applied_within_a_second_of_due => applied_on_time_postgres, applied_on_time_sqlite;
    a_changed_flag_is_a_conflict_until_rebased => conflict_postgres, conflict_sqlite;
    cancelled_changes_are_never_applied => cancel_postgres, cancel_sqlite;
    bad_input_is_refused_and_nothing_written => bad_input_postgres, bad_input_sqlite;
    overdue_changes_are_applied_once_after_downtime => catch_up_postgres, catch_up_sqlite;
}

const P: &str = "/api/v1/projects/p";
const LIST: &str = "/api/v1/projects/p/scheduled-changes";

/// RFC 3339 (UTC, milliseconds) of `ms` milliseconds from now.
fn in_ms(ms: i64) -> String {
    let t =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms() + ms) * 1_000_000).unwrap();
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

fn ms_of(text: &str) -> i64 {
    let t = OffsetDateTime::parse(text, &Rfc3339).unwrap();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn scheduled_url(flag: &str, env: &str) -> String {
    format!("{P}/flags/{flag}/environments/{env}/scheduled-changes")
}

/// Project `p` with boolean flags `flags` (off everywhere).
async fn world(backend: Backend, flags: &[&str]) -> TestApp {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for key in flags {
        let (s, b) = t
            .call(
                Method::POST,
                &format!("{P}/flags"),
                Some(json!({"key": key})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    t
}

async fn schedule(t: &TestApp, flag: &str, env: &str, body: Value) -> Value {
    let (s, b) = t
        .call(Method::POST, &scheduled_url(flag, env), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["state"], "scheduled", "{b}");
    b
}

async fn flag(t: &TestApp, key: &str) -> Value {
    let (s, f) = t.call(Method::GET, &format!("{P}/flags/{key}"), None).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    f
}

async fn change(t: &TestApp, id: i64) -> Value {
    let (s, c) = t.call(Method::GET, &format!("{LIST}/{id}"), None).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    c
}

/// Polls change `id` until it leaves `scheduled`, for at most `within`.
async fn settled(t: &TestApp, id: i64, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let c = change(t, id).await;
        if c["state"] != "scheduled" {
            return c;
        }
        assert!(start.elapsed() < within, "change {id} still scheduled: {c}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Milliseconds from a change's due time to its application.
fn delay_ms(c: &Value) -> i64 {
    ms_of(c["applied_at"].as_str().unwrap()) - ms_of(c["at"].as_str().unwrap())
}

async fn applied_within_a_second_of_due(backend: Backend) {
    let flags = ["a", "b", "c", "d", "e"];
    let t = world(backend, &flags).await;
    let mut ids = Vec::new();
    for (i, key) in flags.iter().enumerate() {
        let at = in_ms(800 + 150 * i as i64);
        let body = json!({"at": at, "enabled": true, "comment": "launch"});
        ids.push(
            schedule(&t, key, "production", body).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut delays = Vec::new();
    for (id, key) in ids.iter().zip(flags) {
        let c = settled(&t, *id, Duration::from_secs(5)).await;
        assert_eq!(c["state"], "applied", "{c}");
        assert_eq!(c["applied_by"], "system:scheduler");
        assert!(
            c["scheduled_by"].as_str().unwrap().starts_with("token:"),
            "{c}"
        );
        let f = flag(&t, key).await;
        assert_eq!(f["environments"]["production"]["enabled"], true);
        assert_eq!(f["environments"]["staging"]["enabled"], false);
        assert_eq!(c["applied_version"], f["version"]);
        assert_eq!(f["version"], c["base_version"].as_i64().unwrap() + 1);
        delays.push(delay_ms(&c));
    }
    delays.sort_unstable();
    println!(
        "scheduled change delay on {backend:?} (due → applied, ms): {delays:?}, \
         p50 {} max {}",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    for d in &delays {
        assert!(
            (0..1000).contains(d),
            "applied {d} ms after due: {delays:?}"
        );
    }

    // The write is the person's edit made by the scheduler: its history and audit entry
    // name `system:scheduler` and, in the comment, who scheduled it and why.
    let (s, history) = t
        .call(Method::GET, &format!("{P}/flags/a/versions"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{history}");
    let latest = &history[0];
    assert_eq!(latest["actor"], "system:scheduler", "{history}");
    let comment = latest["comment"].as_str().unwrap();
    assert!(
        comment.starts_with(&format!("scheduled change {} by token:", ids[0])),
        "{comment}"
    );
    assert!(comment.ends_with(": launch"), "{comment}");
    let actions = audit_actions(&t, "scheduled_change").await;
    assert_eq!(
        actions
            .iter()
            .filter(|(a, _)| a == "scheduled_change.apply")
            .count(),
        5,
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .filter(|(a, _)| a == "scheduled_change.create")
            .all(|(_, actor)| actor.starts_with("token:")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .filter(|(a, _)| a == "scheduled_change.apply")
            .all(|(_, actor)| actor == "system:scheduler"),
        "{actions:?}"
    );
    let toggles = audit_actions(&t, "flag").await;
    assert_eq!(
        toggles
            .iter()
            .filter(|(a, actor)| a == "flag.toggle" && actor == "system:scheduler")
            .count(),
        5,
        "{toggles:?}"
    );

    // Lists: the flag's, and the project's filtered by state.
    let (s, list) = t
        .call(Method::GET, &format!("{P}/flags/a/scheduled-changes"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, list) = t
        .call(Method::GET, &format!("{LIST}?state=applied"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 5);
    let (s, list) = t
        .call(Method::GET, &format!("{LIST}?state=scheduled"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list, json!([]));
}

/// (action, actor) of the audit entries with actions on `kind` (`flag`), newest first.
async fn audit_actions(t: &TestApp, kind: &str) -> Vec<(String, String)> {
    let (s, b) = t
        .call(
            Method::GET,
            &format!("/api/v1/audit?project=p&action={kind}&limit=200"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_changed_flag_is_a_conflict_until_rebased(backend: Backend) {
    let t = world(backend, &["f"]).await;
    let c = schedule(
        &t,
        "f",
        "production",
        json!({"at": in_ms(600), "enabled": true, "version": 1}),
    )
    .await;
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["base_version"], 1);
    // Someone changes the flag (in another environment) before it is due.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{P}/flags/f/environments/staging/toggle"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let c = settled(&t, id, Duration::from_secs(5)).await;
    assert_eq!(c["state"], "conflict", "{c}");
    assert!(c["error"].as_str().unwrap().contains("version 2"), "{c}");
    assert_eq!(c["applied_at"], Value::Null);
    let f = flag(&t, "f").await;
    assert_eq!(f["version"], 2, "not applied");
    assert_eq!(f["environments"]["production"]["enabled"], false);
    let actions = audit_actions(&t, "scheduled_change").await;
    assert_eq!(
        actions[0],
        (
            "scheduled_change.conflict".into(),
            "system:scheduler".into()
        )
    );

    // Rebase: a stale version is refused, a time in the past too; then it is based on
    // version 2 and, its time being past, applied at once.
    let rebase = format!("{LIST}/{id}/rebase");
    let (s, b) = t
        .call(Method::POST, &rebase, Some(json!({"version": 1})))
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    let (s, b) = t
        .call(Method::POST, &rebase, Some(json!({"at": in_ms(-1000)})))
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("at"));
    let (s, b) = t.call(Method::POST, &rebase, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["state"], "scheduled");
    assert_eq!(b["base_version"], 2);
    let rebased_at = Instant::now();
    let c = settled(&t, id, Duration::from_secs(5)).await;
    println!(
        "rebased overdue change on {backend:?} applied {} ms after the rebase",
        rebased_at.elapsed().as_millis()
    );
    assert_eq!(c["state"], "applied", "{c}");
    assert_eq!(c["applied_version"], 3);
    assert_eq!(
        flag(&t, "f").await["environments"]["production"]["enabled"],
        true
    );
    // Applied: neither rebased nor cancelled any more.
    let (s, b) = t.call(Method::POST, &rebase, None).await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    let (s, b) = t
        .call(Method::POST, &format!("{LIST}/{id}/cancel"), None)
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);

    // Two changes scheduled on the same version: the first applies, the second conflicts
    // and is resolved by cancelling it.
    let first = schedule(
        &t,
        "f",
        "production",
        json!({"at": in_ms(400), "enabled": false}),
    )
    .await;
    let second = schedule(
        &t,
        "f",
        "staging",
        json!({"at": in_ms(500), "enabled": false}),
    )
    .await;
    let first = settled(&t, first["id"].as_i64().unwrap(), Duration::from_secs(5)).await;
    let second_id = second["id"].as_i64().unwrap();
    let second = settled(&t, second_id, Duration::from_secs(5)).await;
    assert_eq!(first["state"], "applied", "{first}");
    assert_eq!(second["state"], "conflict", "{second}");
    let (s, b) = t
        .call(Method::POST, &format!("{LIST}/{second_id}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["state"], "cancelled");
    assert_eq!(
        flag(&t, "f").await["environments"]["staging"]["enabled"],
        true
    );
}

async fn cancelled_changes_are_never_applied(backend: Backend) {
    let t = world(backend, &["f"]).await;
    let c = schedule(
        &t,
        "f",
        "production",
        json!({"at": in_ms(500), "enabled": true}),
    )
    .await;
    let id = c["id"].as_i64().unwrap();
    let (s, b) = t
        .call(Method::POST, &format!("{LIST}/{id}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["state"], "cancelled");
    assert!(
        b["cancelled_by"].as_str().unwrap().starts_with("token:"),
        "{b}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = change(&t, id).await;
    assert_eq!(c["state"], "cancelled", "{c}");
    let f = flag(&t, "f").await;
    assert_eq!(f["version"], 1);
    assert_eq!(f["environments"]["production"]["enabled"], false);
    let (s, b) = t
        .call(Method::POST, &format!("{LIST}/{id}/cancel"), None)
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    let (s, b) = t
        .call(Method::POST, &format!("{LIST}/9999/cancel"), None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let actions = audit_actions(&t, "scheduled_change").await;
    assert_eq!(actions[0].0, "scheduled_change.cancel");
}

async fn bad_input_is_refused_and_nothing_written(backend: Backend) {
    let t = world(backend, &["f"]).await;
    let url = scheduled_url("f", "production");
    let audit_before = t.audit_count().await;
    let version_before = t.data_version("p", "production").await;
    let cases = [
        (
            json!({"at": in_ms(-1), "enabled": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at",
        ),
        (
            json!({"at": "tomorrow", "enabled": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at",
        ),
        (
            json!({"at": "2030-01-01T00:00:00", "enabled": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at",
        ),
        (
            json!({"at": in_ms(60_000)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "config",
        ),
        (
            json!({"at": in_ms(60_000), "enabled": true, "config": {"off_variant": "off",
                "default_serve": {"variant": "on"}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "enabled",
        ),
        // Already off: the change could never do anything.
        (
            json!({"at": in_ms(60_000), "enabled": false}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "enabled",
        ),
        (
            json!({"at": in_ms(60_000), "config": {"enabled": true, "off_variant": "off",
                "default_serve": {"variant": "nope"}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "config.default_serve.variant",
        ),
        (
            json!({"at": in_ms(60_000), "config": {"off_variant": 3}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "config.off_variant",
        ),
        (
            json!({"at": in_ms(60_000), "enabled": true, "version": 7}),
            StatusCode::CONFLICT,
            "",
        ),
    ];
    for (body, status, field) in cases {
        let (s, b) = t.call(Method::POST, &url, Some(body.clone())).await;
        let field = (!field.is_empty()).then_some(field);
        assert_error(s, &b, status, field);
        if field == Some("at") {
            assert!(b["error"]["message"].is_string(), "{b}");
        }
    }
    let (s, b) = t
        .call(
            Method::POST,
            &scheduled_url("nope", "production"),
            Some(json!({"at": in_ms(60_000), "enabled": true})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
    let (s, b) = t
        .call(Method::GET, &format!("{LIST}?state=later"), None)
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("state"));
    assert_eq!(
        count(t.db(), "select count(*) from scheduled_change").await,
        0
    );
    assert_eq!(t.audit_count().await, audit_before);
    assert_eq!(t.data_version("p", "production").await, version_before);
    assert_eq!(flag(&t, "f").await["version"], 1);
}

async fn overdue_changes_are_applied_once_after_downtime(backend: Backend) {
    let t = world(backend, &["a", "b", "c"]).await;
    let f = flag(&t, "c").await;
    let mut config = f["environments"]["production"].clone();
    config["enabled"] = json!(true);
    config["default_serve"] = json!({"rollout": {"weights": [
        {"variant": "on", "weight": 25000}, {"variant": "off", "weight": 75000}]}});
    let mut ids = Vec::new();
    for (key, body) in [
        ("a", json!({"at": in_ms(700), "enabled": true})),
        ("b", json!({"at": in_ms(800), "enabled": true})),
        ("c", json!({"at": in_ms(900), "config": config.clone()})),
    ] {
        ids.push(
            schedule(&t, key, "production", body).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // The server goes down before they are due, and stays down past their time.
    let url = t.db().url().to_owned();
    let admin = t.admin.clone();
    let state = t.state().clone();
    state.shutdown.cancel();
    state.tasks.close();
    state.tasks.wait().await;
    drop(t);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        let n = crate::support::exec(
            &state.db,
            "select count(*) from scheduled_change where id = $1 and state = 'scheduled'",
            &[json!(id)],
        )
        .await;
        assert_eq!(n, 1, "nothing applied while down");
    }
    drop(state);
    let restarted = Instant::now();
    let app = app_over(Db::connect(&url, 5).await.unwrap()).await;
    let t = TestApp { app, admin };
    let mut late = Vec::new();
    for id in &ids {
        let c = settled(&t, *id, Duration::from_secs(5)).await;
        assert_eq!(c["state"], "applied", "{c}");
        late.push(delay_ms(&c));
    }
    println!(
        "catch-up on {backend:?}: 3 overdue changes applied {} ms after the restart began \
         (due → applied: {late:?} ms, downtime included)",
        restarted.elapsed().as_millis()
    );
    for key in ["a", "b", "c"] {
        let f = flag(&t, key).await;
        assert_eq!(f["version"], 2, "applied exactly once: {f}");
        assert_eq!(f["environments"]["production"]["enabled"], true);
    }
    assert_eq!(
        flag(&t, "c").await["environments"]["production"]["default_serve"],
        config["default_serve"]
    );
    // Once: another pass of the loop finds nothing more to do.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(
            t.db(),
            "select count(*) from flag_version where actor = 'system:scheduler'"
        )
        .await,
        3
    );
}
