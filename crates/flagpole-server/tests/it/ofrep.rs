//! OFREP through the router (and once through a real listener), on both backends: reasons,
//! errors, authentication, the bulk endpoint's ETag, and the snapshot cache following
//! committed changes.
//!
//! Data is seeded with plain SQL so these tests depend only on the schema, not on the
//! management API.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flagpole_server::App;
use flagpole_server::auth::hash_secret;
use flagpole_server::db::{Backend, Db};
use flagpole_server::state::EnvChanged;
use flagpole_server::testing::fresh_db;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{ADMIN_TOKEN, app_over, bool_flag, exec, insert_flag};

const SDK_KEY: &str = "fp_sdk_testkey0000000000000000000000000000000000";
const OTHER_SDK_KEY: &str = "fp_sdk_otherkey000000000000000000000000000000000";
const REVOKED_SDK_KEY: &str = "fp_sdk_revoked000000000000000000000000000000000";

/// A seeded app: one project with two environments; `SDK_KEY` reads `env_id`.
struct Fixture {
    app: App,
    db: Db,
    env_id: i64,
    project_id: i64,
}

async fn setup(backend: Backend) -> Fixture {
    let db = fresh_db(backend).await.unwrap();
    let project_id = exec(
        &db,
        "insert into project (key, name, created_at, updated_at) values ('shop', 'Shop', 0, 0) returning id",
        &[],
    )
    .await;
    let env_id = exec(
        &db,
        "insert into environment (project_id, key, name, data_version, created_at, updated_at) \
         values ($1, 'production', 'Production', 7, 0, 0) returning id",
        &[json!(project_id)],
    )
    .await;
    let other_env = exec(
        &db,
        "insert into environment (project_id, key, name, data_version, created_at, updated_at) \
         values ($1, 'staging', 'Staging', 1, 0, 0) returning id",
        &[json!(project_id)],
    )
    .await;
    for (key, env, revoked) in [
        (SDK_KEY, env_id, None),
        (OTHER_SDK_KEY, other_env, None),
        (REVOKED_SDK_KEY, env_id, Some(1)),
    ] {
        exec(
            &db,
            "insert into sdk_key (environment_id, name, key_hash, prefix, created_by, created_at, revoked_at) \
             values ($1, 'k', $2, 'fp_sdk_', 'test', 0, $3) returning id",
            &[json!(env), json!(hash_secret(key)), json!(revoked.unwrap_or(0))],
        )
        .await;
    }
    // revoked_at = 0 above means "not revoked" only for the first two: fix them up.
    sqlx::query("update sdk_key set revoked_at = null where revoked_at = 0")
        .execute(&db.pool)
        .await
        .unwrap();
    let seg = json!({"key": "beta", "included": ["beta-user"]});
    exec(
        &db,
        "insert into segment (project_id, key, definition, created_at, updated_at) \
         values ($1, 'beta', $2, 0, 0) returning id",
        &[json!(project_id), json!(seg.to_string())],
    )
    .await;
    let on_off = |enabled: bool| json!({"enabled": enabled, "off_variant": "off", "default_serve": {"variant": "on"}});
    insert_flag(
        &db,
        project_id,
        env_id,
        bool_flag("static-on"),
        on_off(true),
    )
    .await;
    insert_flag(
        &db,
        project_id,
        env_id,
        bool_flag("disabled"),
        on_off(false),
    )
    .await;
    insert_flag(
        &db,
        project_id,
        other_env,
        bool_flag("staging-only"),
        on_off(true),
    )
    .await;
    insert_flag(&db, project_id, env_id, bool_flag("targeted"), json!({
        "enabled": true, "off_variant": "off",
        "targets": [{"variant": "on", "keys": ["vip"]}],
        "rules": [
            {"id": "nordics", "clauses": [{"attribute": "country", "op": "in", "values": ["no", "se"]}],
             "serve": {"variant": "on"}},
            {"clauses": [{"attribute": "", "op": "in_segment", "values": ["beta"]}],
             "serve": {"rollout": {"weights": [{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}}],
        "default_serve": {"variant": "off"}})).await;
    insert_flag(&db, project_id, env_id, bool_flag("split"), json!({
        "enabled": true, "off_variant": "off",
        "default_serve": {"rollout": {"weights": [{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}})).await;
    insert_flag(&db, project_id, env_id, bool_flag("split-by-org"), json!({
        "enabled": true, "off_variant": "off",
        "default_serve": {"rollout": {"bucket_by": "org", "weights": [{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}})).await;
    insert_flag(
        &db,
        project_id,
        env_id,
        bool_flag("needs-disabled"),
        json!({
        "enabled": true, "off_variant": "off",
        "prerequisites": [{"flag": "disabled", "variants": ["on"]}],
        "default_serve": {"variant": "on"}}),
    )
    .await;
    insert_flag(&db, project_id, env_id,
        json!({"key": "color", "kind": "string", "variants": [{"key": "red", "value": "red"}, {"key": "blue", "value": "blue"}]}),
        json!({"enabled": true, "off_variant": "red", "default_serve": {"variant": "blue"}})).await;
    // Written by a "newer server": an operator this one does not know.
    insert_flag(&db, project_id, env_id, bool_flag("from-the-future"), json!({
        "enabled": true, "off_variant": "off",
        "rules": [{"clauses": [{"attribute": "x", "op": "quantum_entangled", "values": [1]}], "serve": {"variant": "on"}}],
        "default_serve": {"variant": "off"}})).await;
    insert_flag(&db, project_id, env_id, bool_flag("archived"), on_off(true)).await;
    sqlx::query("update flag set archived_at = 1 where key = 'archived'")
        .execute(&db.pool)
        .await
        .unwrap();

    let app = app_over(db.clone()).await;
    Fixture {
        app,
        db,
        env_id,
        project_id,
    }
}

/// Sends a request and returns status, headers and JSON body (`Null` when empty).
async fn send(app: &App, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let reply = crate::support::send(&app.router(), req).await;
    let body = reply.body();
    (reply.status, reply.headers, body)
}

fn post(path: &str, key: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    req.body(body.into()).unwrap()
}

async fn eval(f: &Fixture, flag: &str, context: Value) -> (StatusCode, Value) {
    let body = json!({ "context": context }).to_string();
    let (status, _, body) = send(
        &f.app,
        post(
            &format!("/ofrep/v1/evaluate/flags/{flag}"),
            Some(SDK_KEY),
            body,
        ),
    )
    .await;
    (status, body)
}

on_both_backends!(
    single_flag_reasons,
    single_flag_errors,
    authentication,
    bulk_and_etag,
    cache_follows_committed_changes,
    cache_resyncs_after_missing_changes,
);

async fn single_flag_reasons(backend: Backend) {
    let f = setup(backend).await;
    let (status, body) = eval(&f, "static-on", json!({"targetingKey": "u1"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"key": "static-on", "value": true, "reason": "STATIC", "variant": "on",
               "metadata": {"flagpoleReason": "FALLTHROUGH", "environmentVersion": 7}})
    );

    // A disabled flag is a success: DISABLED with the off variant.
    let (status, body) = eval(&f, "disabled", json!({"targetingKey": "u1"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["value"], &body["reason"], &body["variant"]),
        (&json!(false), &json!("DISABLED"), &json!("off"))
    );
    assert_eq!(body["metadata"]["flagpoleReason"], "OFF");

    let (_, body) = eval(&f, "targeted", json!({"targetingKey": "vip"})).await;
    assert_eq!(
        (&body["value"], &body["reason"]),
        (&json!(true), &json!("TARGETING_MATCH"))
    );
    assert_eq!(body["metadata"]["flagpoleReason"], "TARGET_MATCH");

    let (_, body) = eval(
        &f,
        "targeted",
        json!({"targetingKey": "u1", "country": "no"}),
    )
    .await;
    assert_eq!(
        (&body["value"], &body["reason"]),
        (&json!(true), &json!("TARGETING_MATCH"))
    );
    assert_eq!(body["metadata"]["ruleId"], "nordics");
    assert_eq!(body["metadata"]["ruleIndex"], 0);

    // A rule serving a rollout is a SPLIT; the rule without an id reports only its index.
    let (_, body) = eval(&f, "targeted", json!({"targetingKey": "beta-user"})).await;
    assert_eq!(body["reason"], "SPLIT", "{body}");
    assert_eq!(body["metadata"]["ruleIndex"], 1);
    assert!(body["metadata"].get("ruleId").is_none(), "{body}");

    // Nothing matched on a flag with rules: DEFAULT, not STATIC.
    let (_, body) = eval(
        &f,
        "targeted",
        json!({"targetingKey": "u1", "country": "fr"}),
    )
    .await;
    assert_eq!(
        (&body["value"], &body["reason"], &body["variant"]),
        (&json!(false), &json!("DEFAULT"), &json!("off"))
    );

    // A 50/50 rollout: SPLIT, and both variants occur over a range of keys.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let (status, body) = eval(&f, "split", json!({"targetingKey": format!("user-{i}")})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["reason"], "SPLIT");
        seen.insert(body["variant"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Deterministic for a key.
    let a = eval(&f, "split", json!({"targetingKey": "same"})).await.1;
    let b = eval(&f, "split", json!({"targetingKey": "same", "other": 1}))
        .await
        .1;
    assert_eq!(a["variant"], b["variant"]);

    let (_, body) = eval(&f, "needs-disabled", json!({"targetingKey": "u1"})).await;
    assert_eq!(
        (&body["value"], &body["reason"]),
        (&json!(false), &json!("DEFAULT"))
    );
    assert_eq!(body["metadata"]["flagpoleReason"], "PREREQUISITE_FAILED");
    assert_eq!(body["metadata"]["prerequisite"], "disabled");

    let (_, body) = eval(&f, "color", json!({})).await;
    assert_eq!(
        (&body["value"], &body["reason"], &body["variant"]),
        (&json!("blue"), &json!("STATIC"), &json!("blue"))
    );

    // X-API-Key works as well as a bearer token.
    let req = Request::post("/ofrep/v1/evaluate/flags/static-on")
        .header("x-api-key", SDK_KEY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"context":{}}"#))
        .unwrap();
    let (status, _, body) = send(&f.app, req).await;
    assert_eq!((status, &body["value"]), (StatusCode::OK, &json!(true)));
}

async fn single_flag_errors(backend: Backend) {
    let f = setup(backend).await;
    let (status, body) = eval(&f, "nope", json!({"targetingKey": "u1"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["key"], "nope");
    assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
    assert!(body["errorDetails"].as_str().unwrap().contains("nope"));

    // Archived flags and flags of another environment do not exist for this key.
    for flag in ["archived", "staging-only"] {
        let (status, body) = eval(&f, flag, json!({"targetingKey": "u1"})).await;
        assert_eq!(
            (status, &body["errorCode"]),
            (StatusCode::NOT_FOUND, &json!("FLAG_NOT_FOUND")),
            "{flag}"
        );
    }

    let (status, body) = eval(&f, "split", json!({"country": "no"})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::BAD_REQUEST, &json!("TARGETING_KEY_MISSING"))
    );
    let (status, body) = eval(&f, "split-by-org", json!({"targetingKey": "u1"})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::BAD_REQUEST, &json!("INVALID_CONTEXT"))
    );
    let (status, body) = eval(
        &f,
        "split-by-org",
        json!({"targetingKey": "u1", "org": "acme"}),
    )
    .await;
    assert_eq!((status, &body["reason"]), (StatusCode::OK, &json!("SPLIT")));

    // The newer server's flag fails alone; the rest of the environment still works.
    let (status, body) = eval(&f, "from-the-future", json!({"targetingKey": "u1"})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (StatusCode::BAD_REQUEST, &json!("PARSE_ERROR"))
    );

    let cases: [(&str, &str); 6] = [
        ("{not json", "PARSE_ERROR"),
        ("", "PARSE_ERROR"),
        ("{}", "INVALID_CONTEXT"),
        (r#"{"context": 5}"#, "INVALID_CONTEXT"),
        (r#"{"context": {"targetingKey": 42}}"#, "INVALID_CONTEXT"),
        (r#"{"context": {}} trailing"#, "PARSE_ERROR"),
    ];
    for (raw, code) in cases {
        let (status, _, body) = send(
            &f.app,
            post("/ofrep/v1/evaluate/flags/static-on", Some(SDK_KEY), raw),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}: {body}");
        assert_eq!(
            (&body["key"], &body["errorCode"]),
            (&json!("static-on"), &json!(code)),
            "{raw}"
        );
        assert!(body["errorDetails"].is_string());
    }
    let huge = format!(
        r#"{{"context": {{"x": "{}"}}}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, _, _) = send(
        &f.app,
        post("/ofrep/v1/evaluate/flags/static-on", Some(SDK_KEY), huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn authentication(backend: Backend) {
    let f = setup(backend).await;
    let body = r#"{"context":{"targetingKey":"u1"}}"#;
    for path in [
        "/ofrep/v1/evaluate/flags/static-on",
        "/ofrep/v1/evaluate/flags",
    ] {
        for key in [
            None,
            Some("fp_sdk_wrong"),
            Some(REVOKED_SDK_KEY),
            Some(ADMIN_TOKEN),
            Some("garbage"),
        ] {
            let (status, _, err) = send(&f.app, post(path, key, body)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {key:?}");
            assert!(err["error"]["code"].is_string(), "{err}");
        }
    }
    // A key of another environment sees only that environment.
    let (status, _, res) = send(
        &f.app,
        post(
            "/ofrep/v1/evaluate/flags/staging-only",
            Some(OTHER_SDK_KEY),
            body,
        ),
    )
    .await;
    assert_eq!((status, &res["value"]), (StatusCode::OK, &json!(true)));
    let (status, _, _) = send(
        &f.app,
        post(
            "/ofrep/v1/evaluate/flags/static-on",
            Some(OTHER_SDK_KEY),
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn bulk_and_etag(backend: Backend) {
    let f = setup(backend).await;
    let body = r#"{"context":{"targetingKey":"u1","country":"se"}}"#;
    let (status, headers, res) = send(
        &f.app,
        post("/ofrep/v1/evaluate/flags", Some(SDK_KEY), body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let flags = res["flags"].as_array().unwrap();
    let by_key = |k: &str| {
        flags
            .iter()
            .find(|f| f["key"] == k)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let keys: Vec<&str> = flags.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(flags.len(), 8, "{keys:?}");
    assert!(!keys.contains(&"archived") && !keys.contains(&"staging-only"));
    assert_eq!(by_key("targeted")["reason"], "TARGETING_MATCH");
    assert_eq!(by_key("disabled")["reason"], "DISABLED");
    assert_eq!(by_key("color")["value"], "blue");
    // Per-flag failures are items of the list, not a failed request.
    assert_eq!(by_key("split-by-org")["errorCode"], "INVALID_CONTEXT");
    assert_eq!(by_key("from-the-future")["errorCode"], "PARSE_ERROR");
    assert_eq!(res["metadata"]["environmentVersion"], 7);

    let conditional = |tag: &str, body: &'static str| {
        Request::post("/ofrep/v1/evaluate/flags")
            .header(header::AUTHORIZATION, format!("Bearer {SDK_KEY}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::from(body))
            .unwrap()
    };
    let (status, headers, res) = send(&f.app, conditional(&etag, body)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(res, Value::Null);
    assert_eq!(headers[header::ETAG], etag.as_str());
    let (status, _, _) = send(&f.app, conditional(&format!("\"x\", W/{etag}"), body)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    // Another context gets a fresh evaluation, not the other context's 304.
    let (status, headers, res) = send(
        &f.app,
        conditional(&etag, r#"{"context":{"targetingKey":"u2"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers[header::ETAG], etag.as_str());
    assert_eq!(res["flags"].as_array().unwrap().len(), 8);

    // After a change the old ETag no longer matches.
    bump(
        &f,
        "update flag_config set config = replace(config, '\"enabled\":true', '\"enabled\":false') \
               where flag_id = (select id from flag where key = 'static-on')",
    )
    .await;
    let (status, headers, res) = send(&f.app, conditional(&etag, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers[header::ETAG], etag.as_str());
    assert_eq!(res["metadata"]["environmentVersion"], 8);

    for (raw, code) in [("nope", "PARSE_ERROR"), ("{}", "INVALID_CONTEXT")] {
        let (status, _, res) =
            send(&f.app, post("/ofrep/v1/evaluate/flags", Some(SDK_KEY), raw)).await;
        assert_eq!(
            (status, &res["errorCode"]),
            (StatusCode::BAD_REQUEST, &json!(code)),
            "{res}"
        );
        assert!(res.get("key").is_none());
    }
}

/// Runs `sql`, bumps the environment's data_version, publishes the change like a store
/// write does, and waits until the cache has it.
async fn bump(f: &Fixture, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&f.db.pool)
        .await
        .unwrap();
    let version = exec(&f.db, "update environment set data_version = data_version + 1 where id = $1 returning data_version", &[json!(f.env_id)]).await;
    let state = f.app.state();
    state.changes.publish(EnvChanged {
        environment_id: f.env_id,
        data_version: version,
    });
    // The follower task applies it asynchronously; poll the cache rather than sleeping.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let env = state.snapshots.get(f.env_id).await.unwrap();
        if env.data_version == version {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cache never reached version {version}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn cache_follows_committed_changes(backend: Backend) {
    let f = setup(backend).await;
    assert_eq!(eval(&f, "static-on", json!({})).await.1["value"], true);

    // A write that is not announced is not seen: evaluation does not read the database.
    sqlx::query(
        "update flag_config set config = replace(config, '\"enabled\":true', '\"enabled\":false') \
                 where flag_id = (select id from flag where key = 'static-on')",
    )
    .execute(&f.db.pool)
    .await
    .unwrap();
    assert_eq!(eval(&f, "static-on", json!({})).await.1["reason"], "STATIC");

    // Announced (after the version bump, as stores do), it is.
    bump(&f, "select 1").await;
    let (_, body) = eval(&f, "static-on", json!({})).await;
    assert_eq!(
        (&body["reason"], &body["metadata"]["environmentVersion"]),
        (&json!("DISABLED"), &json!(8))
    );

    // A new flag appears; an archived one disappears.
    let new_flag = bool_flag("brand-new");
    insert_flag(
        &f.db,
        f.project_id,
        f.env_id,
        new_flag,
        json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "on"}}),
    )
    .await;
    bump(&f, "update flag set archived_at = 5 where key = 'color'").await;
    assert_eq!(eval(&f, "brand-new", json!({})).await.1["value"], true);
    assert_eq!(eval(&f, "color", json!({})).await.0, StatusCode::NOT_FOUND);

    // An event for an older version than the cached one is ignored without a reload.
    let state = f.app.state();
    state
        .snapshots
        .apply(EnvChanged {
            environment_id: f.env_id,
            data_version: 1,
        })
        .await
        .unwrap();
    assert_eq!(state.snapshots.get(f.env_id).await.unwrap().data_version, 9);

    // A deleted environment is dropped from the cache on refresh.
    sqlx::query("delete from environment where id = $1")
        .bind(f.env_id)
        .execute(&f.db.pool)
        .await
        .unwrap();
    state.snapshots.refresh(f.env_id).await.unwrap();
    assert!(state.snapshots.get(f.env_id).await.is_err());
}

async fn cache_resyncs_after_missing_changes(backend: Backend) {
    let f = setup(backend).await;
    assert_eq!(eval(&f, "static-on", json!({})).await.1["reason"], "STATIC");
    sqlx::query(
        "update flag_config set config = replace(config, '\"enabled\":true', '\"enabled\":false') \
         where flag_id = (select id from flag where key = 'static-on')",
    )
    .execute(&f.db.pool)
    .await
    .unwrap();
    sqlx::query("update environment set data_version = 8 where id = $1")
        .bind(f.env_id)
        .execute(&f.db.pool)
        .await
        .unwrap();
    // More events than the feed buffers, none about this environment, published without
    // yielding: the follower can only learn of the change by resyncing after `Lagged`.
    let state = f.app.state();
    for i in 0..2_000 {
        state.changes.publish(EnvChanged {
            environment_id: 1_000_000 + i,
            data_version: 1,
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state.snapshots.get(f.env_id).await.unwrap().data_version != 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cache never resynced"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        eval(&f, "static-on", json!({})).await.1["reason"],
        "DISABLED"
    );
}

#[tokio::test]
async fn serve_stops_background_tasks_on_shutdown() {
    let f = setup(Backend::Sqlite).await;
    let state = f.app.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(f.app.serve(listener, async {
        let _ = stopped.await;
    }));

    // One real request over TCP, so the server is known to be up.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"context":{"targetingKey":"u1"}}"#;
    let request = format!(
        "POST /ofrep/v1/evaluate/flags/static-on HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SDK_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""reason":"STATIC""#), "{response}");

    assert!(
        !state.tasks.is_empty(),
        "the cache follower should be running"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(state.shutdown.is_cancelled());
    assert!(
        state.tasks.is_empty(),
        "background tasks must have finished"
    );
}
