//! Three replicas on one Postgres database, SDKs spread over them, a thousand random
//! changes through random replicas by concurrent writers: every SDK ends at the final
//! version holding exactly the database's state, and none ever applies a version lower
//! than one it already had.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use flagpole_server::Db;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const CHANGES: u64 = 1_000;
const WRITERS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_through_three_replicas_converge_on_every_sdk() {
    let (url, mut replicas) = cluster(3).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let admin = Admin::default();
    let seeded = seed(&admin, &replicas[0].url, &db).await;
    let mut clients = Vec::new();
    for replica in &replicas {
        for _ in 0..2 {
            clients.push(sdk(&replica.url, &seeded.sdk_key).await);
        }
    }
    let watchers: Vec<_> = clients
        .iter()
        .map(|client| {
            let mut changes = client.subscribe();
            let start = client.flags().version().expect("ready");
            tokio::spawn(async move {
                let mut seen = vec![start];
                while let Some(event) = changes.recv().await {
                    seen.push(event.version);
                }
                seen
            })
        })
        .collect();

    let seed_value = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("random seed {seed_value}");
    let urls: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.url.clone()).collect());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers = (0..WRITERS).map(|w| {
        let (admin, urls, next) = (admin.clone(), urls.clone(), next.clone());
        tokio::spawn(async move {
            let mut rng = XorShift(seed_value ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= CHANGES {
                    break;
                }
                let base = &urls[rng.below(urls.len() as u64) as usize];
                random_change(&admin, base, n, &mut rng).await;
            }
        })
    });
    for writer in join_all(writers).await {
        writer.expect("writer");
    }
    let wrote = started.elapsed();

    let truth = truth(&db, seeded.env_id).await;
    let converge = Instant::now();
    for client in &clients {
        reaches(client, truth.version).await;
    }
    let converged = converge.elapsed();
    for client in &clients {
        let held = sorted(client.flags().environment().expect("flags").clone());
        assert_eq!(held, truth, "every SDK holds exactly the database's state");
    }
    for client in &clients {
        client.close().await;
    }
    let mut observed = Vec::new();
    for watcher in watchers {
        let seen = watcher.await.unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "versions only move forward: {seen:?}"
        );
        assert_eq!(seen.last(), Some(&truth.version));
        observed.push(seen.len());
    }
    println!(
        "{CHANGES} changes by {WRITERS} writers over 3 replicas in {wrote:?}; final version {}; \
         all {} SDKs converged {converged:?} after the last write; versions observed per SDK: {observed:?}",
        truth.version,
        clients.len()
    );
    for replica in &mut replicas {
        replica.stop().await;
    }
}

/// One change through `base`: a kill-switch flip, a config replace or a segment edit,
/// each distinct from the state before (a unique target or member key `c{n}`).
async fn random_change(admin: &Admin, base: &str, n: u64, rng: &mut XorShift) {
    let flags: [(&str, &[&str]); 5] = [
        ("checkout", &["on", "off"]),
        ("banner", &["red", "green", "blue"]),
        ("limit", &["low", "high"]),
        ("beta-ui", &["on", "off"]),
        ("gated", &["full", "none"]),
    ];
    let (flag, variants) = flags[rng.below(flags.len() as u64) as usize];
    match rng.below(10) {
        0..=1 => {
            let (_, view) = admin
                .call(base, Method::GET, &format!("{PROJECT}/flags/{flag}"), None)
                .await;
            let enabled = view["environments"]["production"]["enabled"]
                .as_bool()
                .unwrap();
            admin
                .ok(
                    base,
                    Method::POST,
                    &format!("{PROJECT}/flags/{flag}/environments/production/toggle"),
                    json!({"enabled": !enabled}),
                )
                .await;
        }
        2 => edit_segment(admin, base, n).await,
        _ => put_config(admin, base, flag, random_config(flag, variants, n, rng)).await,
    }
}

async fn edit_segment(admin: &Admin, base: &str, n: u64) {
    let rules = json!([{"clauses": [{"attribute": "email", "op": "ends_with", "values": ["@flagpole.dev"]}]}]);
    put_segment(
        admin,
        base,
        "beta",
        json!({"included": [format!("c{n}"), "u1"], "rules": rules}),
    )
    .await;
}

fn random_config(flag: &str, variants: &[&str], n: u64, rng: &mut XorShift) -> Value {
    let pick = |rng: &mut XorShift| variants[rng.below(variants.len() as u64) as usize];
    // Weights in 1% steps that sum to 100%, the remainder on the last variant.
    let mut left = 100_000u64;
    let mut weights = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let w = if i + 1 == variants.len() {
            left
        } else {
            rng.below(left / 1_000 + 1) * 1_000
        };
        left -= w;
        weights.push(json!({"variant": v, "weight": w}));
    }
    let country = ["SE", "NO", "US", "DE"][rng.below(4) as usize];
    let mut rules = vec![
        json!({"id": "country", "clauses": [{"attribute": "country", "op": "in",
        "values": [country]}], "serve": {"variant": pick(rng)}}),
    ];
    if flag == "beta-ui" {
        rules.push(json!({"id": "beta", "clauses": [{"attribute": "", "op": "in_segment", "values": ["beta"]}],
            "serve": {"variant": "on"}}));
    }
    let prerequisites = if flag == "gated" {
        json!([{"flag": "checkout", "variants": ["on"]}])
    } else {
        json!([])
    };
    json!({
        "enabled": rng.below(5) != 0,
        "off_variant": pick(rng),
        "targets": [{"variant": pick(rng), "keys": [format!("c{n}")]}],
        "prerequisites": prerequisites,
        "rules": rules,
        "default_serve": {"rollout": {"weights": weights}},
    })
}

/// A small seeded generator: the scenario is reproducible from the printed seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
