//! When each SDK key was last used: noted in memory by OFREP calls and stream connections,
//! shown at once in the key list, written to the database by the periodic flush (one
//! write per key per flush, however many requests), and flushed once more at shutdown.

use axum::http::{Method, StatusCode};
use flagpole_server::db::{Backend, now_ms};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::on_both_backends;
use crate::support::auth::*;
use crate::support::{ADMIN_TOKEN, Cred};

const KEYS: &str = "/api/v1/projects/alpha/environments/production/sdk-keys";

async fn stored(h: &Harness, id: i64) -> Option<i64> {
    sqlx::query_scalar("select last_seen_at from sdk_key where id = $1")
        .bind(id)
        .fetch_one(&h.db().pool)
        .await
        .unwrap()
}

async fn listed(h: &Harness, id: i64) -> Value {
    let r = h
        .call(Method::GET, KEYS, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .expect("listed")["last_seen_at"]
        .clone()
}

async fn last_seen_without_a_write_per_request(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    let r = h
        .call(
            Method::POST,
            KEYS,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["last_seen_at"],
        Value::Null,
        "waiting for the first connection"
    );
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(listed(&h, id).await, Value::Null);

    let before = now_ms();
    for _ in 0..50 {
        let r = h
            .call(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Cred::Bearer(&key),
                Some(json!({"context": {"targetingKey": "u1"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // Shown at once by the replica that served the calls...
    let seen = listed(&h, id).await.as_i64().expect("seen");
    assert!(seen >= before, "{seen} < {before}");
    // ...but not written per request: the column changes only when the flush runs.
    assert_eq!(stored(&h, id).await, None);
    let sdk_seen = &h.app.state().auth.sdk_seen;
    assert_eq!(
        sdk_seen.flush(h.db()).await.unwrap(),
        1,
        "one write for 50 calls"
    );
    assert_eq!(stored(&h, id).await, Some(seen));
    assert_eq!(listed(&h, id).await, seen);
    assert_eq!(
        sdk_seen.flush(h.db()).await.unwrap(),
        0,
        "nothing new, nothing written"
    );

    // A rejected key notes nothing.
    let r = h
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Cred::Bearer("fp_sdk_unknown_key_00000000000000000000000000000"),
            Some(json!({"context": {"targetingKey": "u1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sdk_seen.flush(h.db()).await.unwrap(), 0);

    // The flush loop writes what is left when the server shuts down, then returns.
    let r = h
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Cred::ApiKey(&key),
            Some(json!({"context": {"targetingKey": "u1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let latest = sdk_seen.pending(id).expect("noted");
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    sdk_seen.clone().run(h.db().clone(), shutdown).await;
    assert_eq!(stored(&h, id).await, Some(latest));
    assert_eq!(sdk_seen.pending(id), None);
}

on_both_backends!(last_seen_without_a_write_per_request);
