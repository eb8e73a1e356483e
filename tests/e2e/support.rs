//! Real servers on real sockets: in-process replicas sharing one fresh Postgres database
//! (each with its own pool and LISTEN connection, as separate processes would have), an
//! admin client speaking HTTP to them, and the fixture every scenario starts from.

use std::time::Duration;

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_sdk::Client;
use flagpole_server::testing::{Served, fresh_postgres_url, fresh_sqlite_dir};
use flagpole_server::{App, Config, Db};
use reqwest::Method;
use serde_json::{Value, json};

/// The admin token `Config::for_tests` bootstraps.
pub(crate) const ADMIN_TOKEN: &str = "fp_api_test_admin_token_0000000000000000";
/// The longest any scenario waits for one thing to happen.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// One served app on 127.0.0.1.
pub(crate) struct Replica {
    /// `http://127.0.0.1:port`.
    pub(crate) url: String,
    served: Served,
}

impl Replica {
    /// Opens its own pool on `database_url`, migrates, bootstraps and serves on port 0.
    pub(crate) async fn start(database_url: &str) -> Replica {
        let db = Db::connect(database_url, 8).await.expect("connect");
        let config = Config::for_tests(fresh_sqlite_dir().unwrap());
        let app = App::with_db(db, config).await.expect("app");
        let served = Served::start(app).await;
        Replica {
            url: served.url(),
            served,
        }
    }

    /// Graceful shutdown; waits until `serve` has returned.
    pub(crate) async fn stop(&mut self) {
        self.served.stop(WAIT).await;
    }
}

/// A fresh database and `n` replicas on it.
pub(crate) async fn cluster(n: usize) -> (String, Vec<Replica>) {
    let url = fresh_postgres_url().await.expect("fresh Postgres database");
    let mut replicas = Vec::with_capacity(n);
    for _ in 0..n {
        replicas.push(Replica::start(&url).await);
    }
    (url, replicas)
}

/// The REST API as an automation script sees it: HTTP with the admin token.
#[derive(Clone, Default)]
pub(crate) struct Admin {
    http: reqwest::Client,
}

impl Admin {
    /// Any request; the status and the JSON body (`null` if there is none).
    pub(crate) async fn call(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A request that must succeed.
    pub(crate) async fn ok(&self, base: &str, method: Method, path: &str, body: Value) -> Value {
        let (status, value) = self.call(base, method, path, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {status} {value}");
        value
    }

    /// The environment's current data version, read through the REST API.
    pub(crate) async fn flag_version(&self, base: &str, flag: &str) -> i64 {
        let (status, view) = self
            .call(base, Method::GET, &format!("{PROJECT}/flags/{flag}"), None)
            .await;
        assert_eq!(status, 200, "{view}");
        view["version"].as_i64().expect("version")
    }
}

/// The project every scenario uses.
pub(crate) const PROJECT: &str = "/api/v1/projects/shop";

/// What [`seed`] made: project `shop` with its `production` environment, an SDK key for
/// it, segment `beta`, and flags exercising every kind of serve:
/// - `checkout` (boolean): country rule, a 30/70 rollout for the pro plan, a target;
/// - `banner` (string): a three-way rollout bucketed by `org`;
/// - `limit` (number): a semver rule;
/// - `beta-ui` (boolean): on for segment `beta`;
/// - `gated` (json): prerequisite `checkout` serving `on`.
pub(crate) struct Seeded {
    pub(crate) sdk_key: String,
    pub(crate) env_id: i64,
    pub(crate) flags: Vec<&'static str>,
}

pub(crate) async fn seed(admin: &Admin, base: &str, db: &Db) -> Seeded {
    admin
        .ok(
            base,
            Method::POST,
            "/api/v1/projects",
            json!({"key": "shop"}),
        )
        .await;
    admin
        .ok(
            base,
            Method::POST,
            &format!("{PROJECT}/segments"),
            json!({"key": "beta", "included": ["u1", "u2", "u3"],
                   "rules": [{"clauses": [{"attribute": "email", "op": "ends_with", "values": ["@flagpole.dev"]}]}]}),
        )
        .await;
    let flags = [
        json!({"key": "checkout", "kind": "boolean"}),
        json!({"key": "banner", "kind": "string", "variants": [
            {"key": "red", "value": "Red"}, {"key": "green", "value": "Green"}, {"key": "blue", "value": "Blue"}]}),
        json!({"key": "limit", "kind": "number", "variants": [
            {"key": "low", "value": 10}, {"key": "high", "value": 1000.5}]}),
        json!({"key": "beta-ui", "kind": "boolean"}),
        json!({"key": "gated", "kind": "json", "variants": [
            {"key": "full", "value": {"tier": "full", "limits": [1, 2]}}, {"key": "none", "value": null}]}),
    ];
    for flag in flags {
        admin
            .ok(base, Method::POST, &format!("{PROJECT}/flags"), flag)
            .await;
    }
    let configs = [
        (
            "checkout",
            json!({"enabled": true, "off_variant": "off",
                "targets": [{"variant": "on", "keys": ["vip"]}],
                "rules": [
                    {"id": "nordics", "clauses": [{"attribute": "country", "op": "in", "values": ["SE", "NO", "DK"]}], "serve": {"variant": "on"}},
                    {"id": "pro", "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                     "serve": {"rollout": {"weights": [{"variant": "on", "weight": 30000}, {"variant": "off", "weight": 70000}]}}}],
                "default_serve": {"variant": "off"}}),
        ),
        (
            "banner",
            json!({"enabled": true, "off_variant": "red",
                "default_serve": {"rollout": {"bucket_by": "org", "weights": [
                    {"variant": "red", "weight": 33000}, {"variant": "green", "weight": 33000}, {"variant": "blue", "weight": 34000}]}}}),
        ),
        (
            "limit",
            json!({"enabled": true, "off_variant": "low",
                "rules": [{"id": "new-app", "clauses": [{"attribute": "app_version", "op": "semver_gte", "values": ["2.1.0"]}], "serve": {"variant": "high"}}],
                "default_serve": {"variant": "low"}}),
        ),
        (
            "beta-ui",
            json!({"enabled": true, "off_variant": "off",
                "rules": [{"id": "beta", "clauses": [{"attribute": "", "op": "in_segment", "values": ["beta"]}], "serve": {"variant": "on"}}],
                "default_serve": {"variant": "off"}}),
        ),
        (
            "gated",
            json!({"enabled": true, "off_variant": "none",
                "prerequisites": [{"flag": "checkout", "variants": ["on"]}],
                "default_serve": {"variant": "full"}}),
        ),
    ];
    for (flag, config) in configs {
        put_config(admin, base, flag, config).await;
    }
    let key = admin
        .ok(
            base,
            Method::POST,
            &format!("{PROJECT}/environments/production/sdk-keys"),
            json!({"name": "e2e"}),
        )
        .await;
    let sdk_key = key["key"].as_str().expect("sdk key shown once").to_owned();
    let env_id: i64 = sqlx::query_scalar(
        "select e.id from environment e join project p on p.id = e.project_id \
         where p.key = 'shop' and e.key = 'production'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("production environment");
    Seeded {
        sdk_key,
        env_id,
        flags: vec!["checkout", "banner", "limit", "beta-ui", "gated"],
    }
}

/// Replaces a flag's production config at its current version (retrying on a conflict
/// with a concurrent writer).
pub(crate) async fn put_config(admin: &Admin, base: &str, flag: &str, config: Value) {
    loop {
        let version = admin.flag_version(base, flag).await;
        let (status, body) = admin
            .call(
                base,
                Method::PUT,
                &format!("{PROJECT}/flags/{flag}/environments/production"),
                Some(json!({"config": config, "version": version})),
            )
            .await;
        match status {
            200 => return,
            409 => continue,
            _ => panic!("PUT {flag}: {status} {body}"),
        }
    }
}

/// Replaces segment `segment` at its current version (retrying on a conflict).
pub(crate) async fn put_segment(admin: &Admin, base: &str, segment: &str, body: Value) {
    let path = format!("{PROJECT}/segments/{segment}");
    loop {
        let (_, current) = admin.call(base, Method::GET, &path, None).await;
        let mut body = body.clone();
        body["version"] = current["version"].clone();
        let (status, answer) = admin.call(base, Method::PUT, &path, Some(body)).await;
        match status {
            200 => return,
            409 => continue,
            _ => panic!("PUT {path}: {status} {answer}"),
        }
    }
}

/// An SDK client of `url`, connected and holding flags.
pub(crate) async fn sdk(url: &str, sdk_key: &str) -> Client {
    let client = Client::builder(url, sdk_key)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .build()
        .expect("client");
    client
        .wait_until_ready(WAIT)
        .await
        .expect("SDK ready within the wait");
    client
}

/// Waits until `client` holds version `version` (or panics after [`WAIT`]).
pub(crate) async fn reaches(client: &Client, version: u64) {
    let mut status = client.watch_status();
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            if client.flags().version() >= Some(version) {
                return;
            }
            if status.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        reached.is_ok() && client.flags().version() >= Some(version),
        "SDK stuck at {:?}, expected {version}",
        client.flags().version()
    );
}

/// The environment as the database has it, flags and segments in key order.
pub(crate) async fn truth(db: &Db, env_id: i64) -> EnvironmentSnapshot {
    let env = flagpole_server::store::snapshot::load_environment(db, env_id)
        .await
        .unwrap()
        .expect("environment exists");
    sorted(env)
}

/// Flags and segments in key order (patches append; snapshots list by key).
pub(crate) fn sorted(mut env: EnvironmentSnapshot) -> EnvironmentSnapshot {
    env.flags.sort_by(|a, b| a.flag.key.cmp(&b.flag.key));
    env.segments.sort_by(|a, b| a.key.cmp(&b.key));
    env
}
