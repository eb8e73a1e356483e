//! The SDK says why it cannot connect: a key the server does not know, or one revoked
//! while the SDK is connected, shows as `Rejected` in `Client::status()`, and
//! `wait_until_ready` gives up at once with "SDK key rejected: invalid or revoked" rather
//! than waiting out its timeout.

use std::time::{Duration, Instant};

use flagpole_sdk::{Client, ConnectionState, KEY_REJECTED};
use flagpole_server::Db;
use reqwest::Method;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_shows_in_status_and_in_the_ready_error() {
    let (url, mut replicas) = cluster(1).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let base = replicas[0].url.clone();
    let admin = Admin::default();
    let seeded = seed(&admin, &base, &db).await;

    // A key the server never issued.
    let unknown = Client::builder(&base, "fp_sdk_this_key_was_never_issued_000000000000")
        .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .build()
        .expect("client");
    let started = Instant::now();
    let error = unknown
        .wait_until_ready(WAIT)
        .await
        .expect_err("an unknown key never gets flags");
    assert!(
        started.elapsed() < WAIT,
        "gave up at once, not at the timeout"
    );
    assert_eq!(error.status.connection, ConnectionState::Rejected);
    assert!(error.to_string().contains(KEY_REJECTED), "{error}");
    assert_eq!(
        KEY_REJECTED, "SDK key rejected: invalid or revoked",
        "the wording people search for"
    );
    assert_eq!(unknown.status().connection, ConnectionState::Rejected);
    unknown.close().await;

    // A key revoked while its SDK is connected: the server closes the stream (1008) and
    // the SDK keeps serving what it has, saying why it is not connected.
    let client = sdk(&base, &seeded.sdk_key).await;
    let (status, keys) = admin
        .call(
            &base,
            Method::GET,
            &format!("{PROJECT}/environments/production/sdk-keys"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{keys}");
    let id = keys["items"][0]["id"].as_i64().expect("key id");
    let (status, body) = admin
        .call(
            &base,
            Method::DELETE,
            &format!("{PROJECT}/environments/production/sdk-keys/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let mut watch = client.watch_status();
    // `wait_for`'s answer borrows the status channel: keep only whether it arrived, or
    // the client's next status change would wait for the borrow forever.
    let rejected = tokio::time::timeout(WAIT, async {
        watch
            .wait_for(|s| s.connection == ConnectionState::Rejected)
            .await
            .is_ok()
    })
    .await;
    assert_eq!(
        rejected,
        Ok(true),
        "status after revoking: {}",
        client.status()
    );
    let status = client.status();
    assert!(status.has_flags(), "{status}");
    assert!(status.to_string().starts_with(KEY_REJECTED), "{status}");
    client.close().await;
    replicas[0].stop().await;
}
