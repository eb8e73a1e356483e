//! Bad input on every domain write endpoint: malformed, mistyped, oversized, deeply nested,
//! random and semantically invalid bodies all get a 4xx in the JSON error shape, never a
//! 5xx, and nothing is written. Deterministic: a seeded RNG drives the random cases.

mod endpoints;
mod paths;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagpole_server::db::Backend;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::backends;
use crate::support::TestApp;
use endpoints::{Endpoint, endpoints};

backends! {
    every_write_endpoint_rejects_bad_input => bad_input_postgres, bad_input_sqlite;
}

/// A random JSON value of limited depth; never null (null is a valid "absent" for
/// optional fields, so it would not make a body invalid).
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 3 } else { 5 }) {
        0 => Value::Bool(rng.random_bool(0.5)),
        1 => json!(rng.random_range(-1e12..1e12)),
        2 => Value::String(
            (0..rng.random_range(0..20))
                .map(|_| rng.random_range('\u{20}'..'\u{2FF}'))
                .collect(),
        ),
        3 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|i| (format!("k{i}"), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

fn type_name(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Bodies that must be rejected: random mutations of the valid body (a typed field given
/// another type, an unknown member) and random non-object documents.
fn random_bodies(rng: &mut StdRng, endpoint: &Endpoint, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut body = endpoint.valid.clone();
        match rng.random_range(0..3) {
            0 => {
                let pointer = endpoint.typed[rng.random_range(0..endpoint.typed.len())];
                let Some(slot) = body.pointer_mut(pointer) else {
                    // An optional field the valid body leaves out: give it a random value,
                    // unless that value happens to be acceptable.
                    let name = pointer.trim_start_matches('/');
                    let v = random_value(rng, 2);
                    if acceptable(name, &v) {
                        continue;
                    }
                    body[name] = v;
                    out.push(serde_json::to_vec(&body).unwrap());
                    continue;
                };
                let original = type_name(slot);
                let replacement = loop {
                    let v = random_value(rng, 2);
                    if type_name(&v) != original {
                        break v;
                    }
                };
                *slot = replacement;
            }
            1 => {
                body[format!("unknown_{}", rng.random_range(0..1000))] = random_value(rng, 3);
            }
            _ => {
                // Top-level arrays start with a non-integer number: no body struct has a
                // first field that accepts it (structs also deserialise from sequences).
                let mut items = vec![json!(1.5)];
                items.extend((0..rng.random_range(0..3)).map(|_| random_value(rng, 2)));
                body = match rng.random_range(0..4) {
                    0 => Value::Array(items),
                    1 => Value::Bool(true),
                    2 => json!(rng.random_range(-1000..1000)),
                    _ => Value::String("{}".into()),
                };
            }
        }
        out.push(serde_json::to_vec(&body).unwrap());
    }
    out
}

/// Whether a random value happens to be valid for an optional top-level field (then it
/// is not bad input and is skipped).
fn acceptable(name: &str, v: &Value) -> bool {
    let empty_or_strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    match name {
        "version" | "sort_order" | "to_version" => v.as_i64().is_some(),
        "comment" | "name" | "description" | "salt" | "key" => v.is_string(),
        "tags" | "included" | "excluded" | "rules" | "variants" => empty_or_strings(v),
        "environments" => v.as_object().is_some_and(|o| o.is_empty()),
        _ => false,
    }
}

async fn send(
    t: &TestApp,
    method: &Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("authorization", format!("Bearer {}", t.admin));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    t.send(req.body(Body::from(body)).unwrap()).await
}

#[track_caller]
fn assert_rejected(what: &str, status: StatusCode, body: &Value) {
    assert!(status.is_client_error(), "{what}: got {status}: {body}");
    let code = body["error"]["code"].as_str();
    assert!(
        code.is_some_and(|c| !c.is_empty()),
        "{what}: no JSON error: {body}"
    );
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        assert!(
            body["error"]["field"].is_string(),
            "{what}: 422 without a field: {body}"
        );
    }
}

/// What must not change while only bad input arrives.
async fn fingerprint(t: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for sql in [
        "select count(*) from audit_event",
        "select count(*) from flag_version",
        "select cast(coalesce(sum(version), 0) as bigint) from flag",
        "select cast(coalesce(sum(data_version + version), 0) as bigint) from environment",
        "select cast(coalesce(sum(version), 0) as bigint) from segment",
        "select count(*) from project",
    ] {
        out.push(
            sqlx::query_scalar(sql)
                .fetch_one(&t.db().pool)
                .await
                .unwrap(),
        );
    }
    out
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

async fn every_write_endpoint_rejects_bad_input(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/flags",
            Some(json!({"key": "f"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/segments",
            Some(json!({"key": "s"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let before = fingerprint(&t).await;
    let limit = t.state().config.body_limit_bytes;
    let mut rng = StdRng::seed_from_u64(0x5EED_F1A6);

    for ep in endpoints() {
        let what = |case: &str| format!("{} {} [{case}]", ep.method, ep.path);
        let json_ct = Some("application/json");
        let valid = serde_json::to_vec(&ep.valid).unwrap();

        if !ep.optional_body {
            let (s, b) = send(&t, &ep.method, ep.path, json_ct, Vec::new()).await;
            assert_rejected(&what("empty body"), s, &b);
        }
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (s, b) = send(&t, &ep.method, ep.path, ct, valid.clone()).await;
            assert_rejected(&what("content type"), s, &b);
            assert_eq!(
                s,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{}",
                what("content type")
            );
        }
        let truncated = valid[..valid.len() / 2].to_vec();
        let (s, b) = send(&t, &ep.method, ep.path, json_ct, truncated).await;
        assert_rejected(&what("truncated"), s, &b);
        assert_eq!(s, StatusCode::BAD_REQUEST);
        for _ in 0..5 {
            let bytes: Vec<u8> = (0..rng.random_range(1..200))
                .map(|_| rng.random())
                .collect();
            let (s, b) = send(&t, &ep.method, ep.path, json_ct, bytes).await;
            assert_rejected(&what("random bytes"), s, &b);
        }
        // Deep nesting, as the whole body and inside a free-form JSON value.
        let (s, b) = send(
            &t,
            &ep.method,
            ep.path,
            json_ct,
            nested_arrays(10_000).into_bytes(),
        )
        .await;
        assert_rejected(&what("nested body"), s, &b);
        let deep = format!(
            r#"{{"key": "d", "variants": [{{"key": "a", "value": {0}}}], "config": {{"off_variant": "a", "default_serve": {{"variant": "a"}}, "rules": [{{"clauses": [{{"attribute": "x", "op": "in", "values": [{0}]}}], "serve": {{"variant": "a"}}}}]}}, "version": 1}}"#,
            nested_arrays(10_000)
        );
        let (s, b) = send(&t, &ep.method, ep.path, json_ct, deep.into_bytes()).await;
        assert_rejected(&what("nested value"), s, &b);
        // Huge strings: just under the body limit (rejected by field limits), and over it.
        let mut huge = ep.valid.clone();
        let field = ["key", "name", "comment"]
            .into_iter()
            .find(|f| ep.typed.contains(&format!("/{f}").as_str()))
            .unwrap_or("comment");
        huge[field] = Value::String("x".repeat(limit - 4096));
        let (s, b) = send(
            &t,
            &ep.method,
            ep.path,
            json_ct,
            serde_json::to_vec(&huge).unwrap(),
        )
        .await;
        assert_rejected(&what("huge string"), s, &b);
        huge[field] = Value::String("x".repeat(limit + 1));
        let (s, b) = send(
            &t,
            &ep.method,
            ep.path,
            json_ct,
            serde_json::to_vec(&huge).unwrap(),
        )
        .await;
        assert_rejected(&what("over the limit"), s, &b);
        assert_eq!(
            s,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            what("over the limit")
        );

        for body in random_bodies(&mut rng, &ep, 40) {
            let (s, b) = send(&t, &ep.method, ep.path, json_ct, body.clone()).await;
            assert_rejected(&what(&String::from_utf8_lossy(&body)), s, &b);
        }
        for (body, expected) in &ep.semantic {
            let (s, b) = send(
                &t,
                &ep.method,
                ep.path,
                json_ct,
                serde_json::to_vec(body).unwrap(),
            )
            .await;
            assert_rejected(&what(&body.to_string()), s, &b);
            assert_eq!(s, *expected, "{}: {b}", what(&body.to_string()));
        }
    }
    assert_eq!(fingerprint(&t).await, before, "bad input changed something");
}
