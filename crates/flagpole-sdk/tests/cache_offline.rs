//! The disk cache (flags for a restarted application while the server is down) and
//! offline mode.

mod support;

use std::time::Duration;

use flagpole_core::wire::ServerMessage;
use flagpole_sdk::{Client, ConnectionState, Context, ErrorKind, EvaluationReason, Source};
use support::*;

#[tokio::test]
async fn a_restarted_client_serves_cached_flags_while_the_server_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("flags.json");
    let ctx = Context::new("user-1");

    // First run: the server sends version 3; closing flushes the cache.
    let mut server = TestServer::start().await;
    let first = Client::builder(server.url(), KEY)
        .cache_file(&cache)
        .cache_debounce(Duration::from_millis(10))
        .build()
        .unwrap();
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(3, vec![bool_flag("a", true)])).await;
    first.wait_until_ready(WAIT).await.unwrap();
    first.close().await;

    // Restart with the server down: flags at once, reported as cached.
    let restarted = Client::builder(dead_url().await, KEY)
        .cache_file(&cache)
        .build()
        .unwrap();
    let status = restarted.status();
    assert_eq!((status.source, status.version), (Source::Cache, Some(3)));
    assert!(status.is_stale());
    let detail = restarted.bool_detail("a", &ctx, false);
    assert!(detail.value);
    assert_eq!(
        detail.reason,
        EvaluationReason::Fallthrough { in_rollout: false },
        "reason unchanged"
    );
    let err = restarted
        .wait_until_ready(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.status.source, Source::Cache);
    restarted.close().await;

    // Restart with the server up: the hello carries the cached version, and the server's
    // answer (here: nothing to catch up, then a pong) confirms it.
    let confirmed = Client::builder(server.url(), KEY)
        .cache_file(&cache)
        .build()
        .unwrap();
    let mut conn = server.accept().await;
    assert_eq!(conn.hello().await, Some(3));
    assert_eq!(conn.recv().await, flagpole_core::wire::ClientMessage::Ping);
    conn.send(&ServerMessage::Pong).await;
    confirmed.wait_until_ready(WAIT).await.unwrap();
    assert_eq!(confirmed.status().source, Source::Server);

    // Changes are written back (debounced) for the next restart.
    conn.send(&patch(3, 4, vec![bool_flag("a", false)])).await;
    status_until(&confirmed, |s| s.version == Some(4)).await;
    confirmed.close().await;
    let again = Client::builder(dead_url().await, KEY)
        .cache_file(&cache)
        .build()
        .unwrap();
    assert_eq!(again.status().version, Some(4));
    assert!(!again.bool_value("a", &ctx, true));
}

#[tokio::test]
async fn a_cache_from_another_sdk_key_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("flags.json");
    let mut server = TestServer::start().await;
    let first = Client::builder(server.url(), KEY)
        .cache_file(&cache)
        .build()
        .unwrap();
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(9, vec![bool_flag("a", true)])).await;
    first.wait_until_ready(WAIT).await.unwrap();
    first.close().await;
    assert!(cache.exists());

    let other = Client::builder(dead_url().await, "fp_sdk_other_environment")
        .cache_file(&cache)
        .build()
        .unwrap();
    assert_eq!(other.status().source, Source::None);
    let detail = other.bool_detail("a", &Context::new("u"), false);
    assert_eq!(detail.reason.error(), Some(ErrorKind::NotReady));
}

#[tokio::test]
async fn offline_mode_reads_a_snapshot_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.json");
    let env = env(7, vec![bool_flag("a", true), bool_flag("b", false)]);
    std::fs::write(&path, serde_json::to_vec_pretty(&env).unwrap()).unwrap();

    let client = Client::offline_from_file(&path).unwrap();
    client.wait_until_ready(Duration::ZERO).await.unwrap();
    let status = client.status();
    assert_eq!(
        (status.connection, status.source, status.version),
        (ConnectionState::Offline, Source::File, Some(7))
    );
    let ctx = Context::new("u");
    assert!(client.bool_value("a", &ctx, false));
    assert_eq!(
        client.bool_detail("b", &ctx, true).reason,
        EvaluationReason::Off
    );

    let built = Client::builder("http://unused.invalid", KEY)
        .offline(&path)
        .build()
        .unwrap();
    assert!(built.bool_value("a", &ctx, false));
    built.close().await;

    std::fs::write(&path, "{\"version\": \"seven\"}").unwrap();
    let err = Client::offline_from_file(&path).unwrap_err();
    assert!(err.to_string().contains("env.json"), "{err}");
}
