//! A kill switch pulled by an alert, with the real programs: a `flagpole serve` process,
//! a checkout service whose new code path (behind flag `new-checkout`, evaluated with the
//! SDK) fails half its requests, Prometheus scraping it every second with the rule from
//! deploy/prometheus/flagpole-alerts.yml, and Alertmanager with
//! deploy/alertmanager/alertmanager.yml calling Flagpole's webhook with an
//! `alerts:trigger` token. Turning the flag on makes errors rise, the alert fires,
//! Alertmanager posts it, Flagpole turns the flag off, and every SDK sees it: measured
//! from the moment the flag was turned on.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flagpole_sdk::{Client, Context};
use serde_json::{Value, json};

use crate::checkout::{Checkout, FLAG};
use crate::harness::{Replica, TempDir};
use crate::monitoring::{self, Process};
use crate::{http, ms, report};

/// SDK clients watching the flag: the checkout service's own and two more.
const SDKS: usize = 3;
/// The most the whole chain may take (the shipped windows shortened to seconds make it
/// about five).
const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_turns_the_flag_off_in_every_sdk() {
    let root = flagpole_tests::workspace_root().join("deploy");
    let rules_file = root.join("prometheus/flagpole-alerts.yml");
    let am_file = root.join("alertmanager/alertmanager.yml");
    // The files as shipped pass the programs' own checks.
    monitoring::check_shipped("promtool", &["check", "rules"], &rules_file);
    monitoring::check_shipped("amtool", &["check-config"], &am_file);

    let dir = TempDir::new("flagpole-alerts");
    let db = flagpole_server::testing::fresh_postgres_url()
        .await
        .expect("fresh database on the shared Postgres");
    let mut flagpole = Replica::new("flagpole".into(), db, &dir.0);
    flagpole.spawn();
    flagpole.wait_ready(Duration::from_secs(60)).await;
    let seeded = seed(&flagpole).await;

    let url = format!("http://{}", flagpole.addr);
    let mut sdks = Vec::new();
    for _ in 0..SDKS {
        let client = Client::builder(&url, &seeded.sdk_key)
            .build()
            .expect("SDK client");
        client
            .wait_until_ready(Duration::from_secs(20))
            .await
            .expect("SDK ready");
        sdks.push(Arc::new(client));
    }
    let checkout = Checkout::start(sdks[0].clone()).await;

    let am_config = shipped(
        &am_file,
        &[
            ("http://flagpole/", format!("http://{}/", flagpole.addr)),
            (
                "/etc/alertmanager/flagpole-shop.token",
                token_file(&dir.0, &seeded.alerts_token),
            ),
        ],
    );
    let alertmanager = monitoring::alertmanager(&dir.0, &am_config).await;
    let rules = shipped(
        &rules_file,
        &[("[2m]", "[3s]".into()), ("for: 1m", "for: 1s".into())],
    );
    let rules_path = dir.0.join("flagpole-alerts.yml");
    std::fs::write(&rules_path, rules).expect("write the rules");
    let prometheus = monitoring::prometheus(
        &dir.0,
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{}']\n\
             scrape_configs:\n  - job_name: checkout\n    static_configs:\n      - targets: ['{}']\n",
            rules_path.display(),
            alertmanager.addr,
            checkout.addr
        ),
    )
    .await;
    // A baseline: the service scraped (without errors) and the rule loaded, before the
    // flag goes on.
    let started = Instant::now();
    while !baseline(&prometheus).await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus: no scrapes of the service or no rule within 30 s\n{}",
            prometheus.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(checkout.failed(), 0, "no errors before the flag is on");

    // The flag goes on.
    let on_at = Instant::now();
    let on_epoch_ms = epoch_ms();
    let toggled = admin(
        &flagpole,
        "POST",
        &format!("/api/v1/projects/shop/flags/{FLAG}/environments/production/toggle"),
        Some(json!({"enabled": true, "comment": "release the new checkout"})),
    )
    .await;
    assert_eq!(toggled["environments"]["production"]["enabled"], true);
    let sdk_on = wait_value(&sdks[0], true).await - on_at;

    // Prometheus's view, sampled while the rest happens.
    let watcher = tokio::spawn(watch_alert(prometheus, on_at));
    let mut sdk_off = Vec::new();
    for sdk in &sdks {
        sdk_off.push(wait_value(sdk, false).await - on_at);
    }
    let all_off = *sdk_off.iter().max().expect("SDKs");
    let (pending, firing, prometheus) = watcher.await.expect("alert watcher");
    let failed = checkout.failed();

    // What Flagpole did, and recorded.
    let mappings = admin(
        &flagpole,
        "GET",
        "/api/v1/projects/shop/alert-mappings",
        None,
    )
    .await;
    let fired = &mappings[0]["last_fired"];
    assert_eq!(fired["outcome"], "turned_off", "{mappings}");
    assert_eq!(fired["alert"], "CheckoutErrors");
    assert_eq!(fired["labels"]["flagpole_project"], "shop");
    assert_eq!(fired["receiver"], "flagpole-shop");
    let acted = Duration::from_millis(
        u64::try_from(fired["at"].as_i64().expect("at") - on_epoch_ms).unwrap_or(0),
    );
    let audit = admin(
        &flagpole,
        "GET",
        "/api/v1/audit?project=shop&action=flag.toggle&limit=1",
        None,
    )
    .await;
    assert_eq!(
        audit["items"][0]["actor"], "alertmanager:flagpole-shop via token:alertmanager",
        "{audit}"
    );
    assert_eq!(audit["items"][0]["after"]["config"]["enabled"], false);
    assert!(failed > 0, "the new path failed while it was on");
    // The flag stays off: the errors stop, and the alert resolving (or repeating) does not
    // turn it back on.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failed_after = checkout.failed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        checkout.failed(),
        failed_after,
        "errors stopped with the flag off"
    );
    for sdk in &sdks {
        assert!(!sdk.bool_value(FLAG, &Context::new("u"), true));
    }
    drop(alertmanager);
    drop(prometheus);

    report(
        "alert-kill-switch",
        &[
            ("sdks", SDKS.to_string()),
            ("flag_on_to_sdk_on", ms(sdk_on)),
            ("flag_on_to_alert_pending", ms(pending)),
            ("flag_on_to_alert_firing", ms(firing)),
            ("flag_on_to_flagpole_acted", ms(acted)),
            ("flag_on_to_off_in_every_sdk", ms(all_off)),
            (
                "acted_to_off_in_every_sdk",
                ms(all_off.saturating_sub(acted)),
            ),
            ("failed_requests", failed.to_string()),
        ],
    );
    assert!(all_off < WITHIN);
    flagpole.terminate().await;
}

/// What the scenario needs from Flagpole.
struct Seeded {
    sdk_key: String,
    alerts_token: String,
}

/// Project `shop` with flag `new-checkout` (off everywhere), an SDK key of production, an
/// `alerts:trigger` token for the project and the mapping: alert `CheckoutErrors` for
/// `service="checkout"` turns `new-checkout` off in production.
async fn seed(flagpole: &Replica) -> Seeded {
    admin(
        flagpole,
        "POST",
        "/api/v1/projects",
        Some(json!({"key": "shop"})),
    )
    .await;
    admin(
        flagpole,
        "POST",
        "/api/v1/projects/shop/flags",
        Some(json!({"key": FLAG})),
    )
    .await;
    let key = admin(
        flagpole,
        "POST",
        "/api/v1/projects/shop/environments/production/sdk-keys",
        Some(json!({"name": "checkout"})),
    )
    .await;
    let token = admin(
        flagpole,
        "POST",
        "/api/v1/tokens",
        Some(
            json!({"name": "alertmanager", "role": "writer", "project": "shop",
            "scope": "alerts:trigger"}),
        ),
    )
    .await;
    admin(
        flagpole,
        "POST",
        "/api/v1/projects/shop/alert-mappings",
        Some(json!({
            "alert": "CheckoutErrors",
            "matchers": [{"label": "service", "op": "=", "value": "checkout"}],
            "action": {"kind": "flag_off", "flag": FLAG, "environment": "production"}
        })),
    )
    .await;
    Seeded {
        sdk_key: key["key"].as_str().expect("sdk key").to_owned(),
        alerts_token: token["token"].as_str().expect("token").to_owned(),
    }
}

/// A request with the admin token that must succeed; its JSON answer.
async fn admin(flagpole: &Replica, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = http::request(
        flagpole.addr,
        method,
        path,
        body.as_ref(),
        Duration::from_secs(10),
    )
    .await
    .expect("request to flagpole");
    assert!(r.ok(), "{method} {path}: {} {}", r.status, r.body);
    r.body
}

/// A shipped file with each `(from, to)` replaced; each `from` must occur.
fn shipped(path: &Path, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(path).expect("read a deploy file");
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{} no longer contains `{from}`; update the test",
            path.display()
        );
        text = text.replace(from, to);
    }
    text
}

/// Writes the token where Alertmanager reads it; the path.
fn token_file(dir: &Path, token: &str) -> String {
    let path = dir.join("flagpole-shop.token");
    std::fs::write(&path, token).expect("write the token file");
    path.display().to_string()
}

/// True once Prometheus has scraped the service twice (a rate needs two samples) and
/// loaded the rule.
async fn baseline(p: &Process) -> bool {
    let up = p
        .api("/api/v1/query?query=up%7Bjob%3D%22checkout%22%7D")
        .await;
    let samples = p
        .api("/api/v1/query?query=count_over_time(http_requests_total%7Bcode%3D%22200%22%7D%5B5s%5D)")
        .await;
    let rules = p.api("/api/v1/rules").await;
    up["result"][0]["value"][1] == "1"
        && samples["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|n| n >= 2)
        && rules.to_string().contains("CheckoutErrors")
}

/// When the SDK first serves `value` for the flag (polled every 2 ms).
async fn wait_value(sdk: &Client, value: bool) -> Instant {
    let ctx = Context::new("observer");
    let started = Instant::now();
    loop {
        if sdk.bool_value(FLAG, &ctx, !value) == value {
            return Instant::now();
        }
        assert!(
            started.elapsed() < WITHIN,
            "the SDK did not see {FLAG} = {value} within {WITHIN:?}: {:?}",
            sdk.status()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Samples Prometheus's alerts every 50 ms until `CheckoutErrors` fires; when it was
/// first seen pending and firing, after `from`. Hands Prometheus back.
async fn watch_alert(p: Process, from: Instant) -> (Duration, Duration, Process) {
    let mut pending = None;
    loop {
        let alerts = p.api("/api/v1/alerts").await;
        let state = alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "CheckoutErrors")
            .and_then(|a| a["state"].as_str().map(str::to_owned));
        match state.as_deref() {
            Some("pending") => {
                pending.get_or_insert(from.elapsed());
            }
            Some("firing") => {
                let firing = from.elapsed();
                return (pending.unwrap_or(firing), firing, p);
            }
            _ => {}
        }
        assert!(
            from.elapsed() < WITHIN,
            "CheckoutErrors did not fire within {WITHIN:?}\n{}",
            p.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn epoch_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_millis()).expect("epoch ms")
}
