//! The SDK against a real server over real sockets: every change made through the REST
//! API reaches every connected SDK, and what the SDK evaluates locally equals what the
//! server evaluates (OFREP) for the same contexts, at the same version.

use std::collections::BTreeMap;

use flagpole_core::Context;
use flagpole_core::Reason;
use flagpole_sdk::Client;
use flagpole_server::Db;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_changes_reach_every_sdk_and_sdks_agree_with_the_server() {
    let (url, mut replicas) = cluster(1).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let base = replicas[0].url.clone();
    let admin = Admin::default();
    let seeded = seed(&admin, &base, &db).await;
    let clients = join_all((0..3).map(|_| sdk(&base, &seeded.sdk_key))).await;
    let contexts = contexts();
    let mut reasons = BTreeMap::new();

    let changes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            format!("{PROJECT}/flags/checkout/environments/production/toggle"),
            json!({"enabled": false}),
        ),
        (
            Method::POST,
            format!("{PROJECT}/flags/checkout/environments/production/toggle"),
            json!({"enabled": true}),
        ),
        (
            Method::POST,
            format!("{PROJECT}/flags"),
            json!({"key": "fresh", "kind": "string", "variants": [
                {"key": "x", "value": "X"}, {"key": "y", "value": "Y"}]}),
        ),
        (
            Method::POST,
            format!("{PROJECT}/flags/limit/archive"),
            json!({}),
        ),
    ];
    check(&base, &db, &seeded, &clients, &contexts, &mut reasons).await;
    for (method, path, body) in changes {
        admin.ok(&base, method, &path, body).await;
        check(&base, &db, &seeded, &clients, &contexts, &mut reasons).await;
    }
    put_segment(
        &admin,
        &base,
        "beta",
        json!({"included": ["u4", "u5"], "excluded": ["u1"], "rules": [
            {"clauses": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}]}]}),
    )
    .await;
    check(&base, &db, &seeded, &clients, &contexts, &mut reasons).await;
    // A config replace with rules and a rollout, and the new flag switched on.
    put_config(
        &admin,
        &base,
        "banner",
        json!({"enabled": true, "off_variant": "red",
            "rules": [{"id": "danes", "clauses": [{"attribute": "country", "op": "in", "values": ["dk"], "case_insensitive": true}],
                       "serve": {"variant": "blue"}}],
            "default_serve": {"rollout": {"weights": [
                {"variant": "red", "weight": 50000}, {"variant": "green", "weight": 25000}, {"variant": "blue", "weight": 25000}]}}}),
    )
    .await;
    check(&base, &db, &seeded, &clients, &contexts, &mut reasons).await;
    put_config(
        &admin,
        &base,
        "fresh",
        json!({"enabled": true, "off_variant": "x", "default_serve": {"rollout": {"weights": [
            {"variant": "x", "weight": 10000}, {"variant": "y", "weight": 90000}]}}}),
    )
    .await;
    check(&base, &db, &seeded, &clients, &contexts, &mut reasons).await;

    // The comparisons covered every way an evaluation can go.
    println!("evaluations compared, by reason: {reasons:?}");
    for reason in [
        "OFF",
        "TARGET_MATCH",
        "RULE_MATCH",
        "PREREQUISITE_FAILED",
        "FALLTHROUGH",
        "ERROR",
    ] {
        assert!(
            reasons.contains_key(reason),
            "no {reason} among {reasons:?}"
        );
    }
    for c in &clients {
        c.close().await;
    }
    replicas[0].stop().await;
}

/// Waits for every SDK to reach the database's version, then checks that each holds
/// exactly the database's state and evaluates every flag for every context as the server
/// does.
async fn check(
    base: &str,
    db: &Db,
    seeded: &Seeded,
    clients: &[Client],
    contexts: &[(Context, Value)],
    reasons: &mut BTreeMap<&'static str, usize>,
) {
    let truth = truth(db, seeded.env_id).await;
    for client in clients {
        reaches(client, truth.version).await;
        let held = sorted(client.flags().environment().expect("flags").clone());
        assert_eq!(held, truth, "the SDK holds exactly the database's state");
    }
    let http = reqwest::Client::new();
    for (ctx, wire) in contexts {
        // The OFREP cache follows commits on its own task, beside the push hub: it may be
        // a moment behind the SDKs, never ahead, and must get there.
        let deadline = std::time::Instant::now() + WAIT;
        let server = loop {
            let server = ofrep_all(&http, base, &seeded.sdk_key, wire).await;
            let version = server["metadata"]["environmentVersion"].as_u64();
            assert!(
                version <= Some(truth.version),
                "OFREP ahead of the database"
            );
            if version == Some(truth.version) {
                break server;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "OFREP stuck at {version:?}, the database is at {}",
                truth.version
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        let by_key: BTreeMap<&str, &Value> = server["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["key"].as_str().unwrap(), f))
            .collect();
        let live: Vec<&str> = truth.flags.iter().map(|f| f.flag.key.as_str()).collect();
        assert_eq!(by_key.keys().copied().collect::<Vec<_>>(), live);
        for client in clients {
            let flags = client.flags();
            for key in &live {
                let local = flags.evaluate(key, ctx);
                let remote = by_key[key];
                *reasons.entry(local.reason.code()).or_default() += 1;
                match local.reason {
                    Reason::Error { error } => {
                        assert!(
                            remote.get("errorCode").is_some(),
                            "{key} for {wire}: SDK says {error:?}, server says {remote}"
                        );
                    }
                    reason => {
                        assert_eq!(local.value, Some(&remote["value"]), "{key} for {wire}");
                        assert_eq!(
                            local.variant,
                            remote["variant"].as_str(),
                            "{key} for {wire}"
                        );
                        assert_eq!(
                            Some(reason.code()),
                            remote["metadata"]["flagpoleReason"].as_str(),
                            "{key} for {wire}"
                        );
                        if let Reason::RuleMatch { rule_index, .. } = reason {
                            assert_eq!(
                                remote["metadata"]["ruleIndex"].as_u64(),
                                Some(rule_index as u64)
                            );
                        }
                    }
                }
            }
            // Flags no longer live (archived) are unknown to both.
            for key in seeded.flags.iter().filter(|k| !live.contains(k)) {
                assert!(matches!(
                    flags.evaluate(key, ctx).reason,
                    Reason::Error { .. }
                ));
            }
        }
    }
}

async fn ofrep_all(http: &reqwest::Client, base: &str, sdk_key: &str, context: &Value) -> Value {
    let res = http
        .post(format!("{base}/ofrep/v1/evaluate/flags"))
        .bearer_auth(sdk_key)
        .json(&json!({ "context": context }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

/// Sixty users with a spread of attributes (and some missing), as SDK contexts and as the
/// OFREP context for the same user.
pub(crate) fn contexts() -> Vec<(Context, Value)> {
    let countries = ["SE", "NO", "DK", "dk", "US", "DE"];
    let plans = ["free", "pro", "pro", "team"];
    let versions = ["1.9.9", "2.1.0", "2.10.3", "not-a-version"];
    let mut out = Vec::new();
    for i in 0..60 {
        let key = match i {
            0 => "vip".to_owned(),
            1..=5 => format!("u{i}"),
            _ => format!("user-{i}"),
        };
        let mut attrs = serde_json::Map::new();
        attrs.insert("country".into(), json!(countries[i % countries.len()]));
        attrs.insert("plan".into(), json!(plans[i % plans.len()]));
        if i % 5 != 0 {
            attrs.insert("org".into(), json!(format!("org-{}", i % 7)));
        }
        if i % 3 == 0 {
            attrs.insert("app_version".into(), json!(versions[i % versions.len()]));
        }
        let domain = ["flagpole.dev", "example.com", "mail.test"][i % 3];
        attrs.insert("email".into(), json!(format!("{key}@{domain}")));
        let mut ctx = Context::new(key.clone());
        let mut wire = json!({"targetingKey": key});
        for (name, value) in attrs {
            ctx.set(name.clone(), value.clone());
            wire[name] = value;
        }
        out.push((ctx, wire));
    }
    out
}
