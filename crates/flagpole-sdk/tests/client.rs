//! The client against an in-test stream server: readiness, patches, resyncs, reconnects,
//! goodbyes, notifications and shutdown.

mod support;

use std::time::{Duration, Instant};

use flagpole_core::wire::{ClientMessage, ServerMessage};
use flagpole_sdk::{Client, ConnectionState, Context, ErrorKind, EvaluationReason, Source};
use support::*;

fn client(server: &TestServer) -> Client {
    Client::builder(server.url(), KEY).build().unwrap()
}

#[tokio::test]
async fn ready_after_the_first_snapshot() {
    let mut server = TestServer::start().await;
    let client = client(&server);
    let ctx = Context::new("user-1");

    let before = client.bool_detail("a", &ctx, true);
    assert!(before.value, "the caller's default");
    assert_eq!(before.reason.error(), Some(ErrorKind::NotReady));
    assert_eq!(client.flags().evaluate("a", &ctx).reason.code(), "ERROR");

    let mut conn = server.accept().await;
    assert_eq!(conn.hello().await, None);
    assert!(
        client
            .wait_until_ready(Duration::from_millis(50))
            .await
            .is_err()
    );
    conn.send(&snapshot(
        1,
        vec![bool_flag("a", true), bool_flag("b", false)],
    ))
    .await;
    client.wait_until_ready(WAIT).await.unwrap();

    assert!(client.bool_value("a", &ctx, false));
    let detail = client.bool_detail("b", &ctx, true);
    assert!(!detail.value);
    assert_eq!(detail.variant.as_deref(), Some("off"));
    assert_eq!(detail.reason, EvaluationReason::Off);
    let missing = client.bool_detail("nope", &ctx, true);
    assert_eq!(missing.reason.error(), Some(ErrorKind::FlagNotFound));
    let status = client.status();
    assert_eq!(
        (status.connection, status.source, status.version),
        (ConnectionState::Connected, Source::Server, Some(1))
    );
    assert!(!status.is_stale());

    // The client answers the server's heartbeat.
    conn.send(&ServerMessage::Ping).await;
    assert_eq!(conn.recv().await, ClientMessage::Pong);
}

#[tokio::test(start_paused = true)]
async fn wait_until_ready_gives_up_at_its_timeout() {
    // A server that accepts TCP but never completes the WebSocket handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::builder(format!("http://{}", listener.local_addr().unwrap()), KEY)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = client
        .wait_until_ready(Duration::from_secs(3))
        .await
        .unwrap_err();
    assert_eq!(tokio::time::Instant::now() - start, Duration::from_secs(3));
    assert_eq!(err.status.source, Source::None);
}

#[tokio::test]
async fn a_wrong_key_never_gets_ready() {
    let server = TestServer::start().await;
    let client = Client::builder(server.url(), "fp_sdk_wrong")
        .build()
        .unwrap();
    // The server's 401 is a rejection, not a lost connection: the wait ends with it, and
    // says so, instead of running out its timeout.
    let err = client.wait_until_ready(WAIT).await.unwrap_err();
    assert!(!err.status.has_flags());
    assert_eq!(err.status.connection, ConnectionState::Rejected);
    assert_eq!(
        err.to_string(),
        "flagpole client not ready: SDK key rejected: invalid or revoked, flags from None"
    );
    assert_eq!(client.status().connection, ConnectionState::Rejected);
}

#[tokio::test]
async fn patches_are_applied_and_subscribers_told() {
    let mut server = TestServer::start().await;
    let client = client(&server);
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(
        1,
        vec![bool_flag("a", true), bool_flag("b", true)],
    ))
    .await;
    client.wait_until_ready(WAIT).await.unwrap();

    let mut all = client.subscribe();
    let mut only_b = client.subscribe_flag("b");
    conn.send(&patch(1, 2, vec![bool_flag("a", false)])).await;
    let event = tokio::time::timeout(WAIT, all.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.version, &*event.keys, event.lagged),
        (2, &["a".to_owned()][..], false)
    );
    let ctx = Context::new("user-1");
    assert!(
        !client.bool_value("a", &ctx, true),
        "the patch is applied before subscribers hear of it"
    );

    conn.send(&patch(2, 3, vec![bool_flag("b", false)])).await;
    let event = tokio::time::timeout(WAIT, only_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event.version, 3,
        "the change to `a` was not delivered to `b`'s subscriber"
    );
    assert!(!client.bool_value("b", &ctx, true));
    assert_eq!(client.status().version, Some(3));
}

#[tokio::test]
async fn a_gap_asks_for_a_resync_and_versions_never_go_back() {
    let mut server = TestServer::start().await;
    let client = client(&server);
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(1, vec![bool_flag("a", true)])).await;
    conn.send(&patch(2, 3, vec![bool_flag("a", false)])).await;
    assert_eq!(
        conn.recv().await,
        ClientMessage::Resync { version: Some(1) }
    );
    assert_eq!(
        client.status().version,
        Some(1),
        "the gapped patch was not applied"
    );

    conn.send(&snapshot(3, vec![bool_flag("a", false)])).await;
    conn.send(&patch(1, 2, vec![bool_flag("a", true)])).await;
    conn.send(&snapshot(2, vec![bool_flag("a", true)])).await;
    conn.sync().await;
    assert_eq!(client.status().version, Some(3));
    assert!(!client.bool_value("a", &Context::new("u"), true));
}

#[tokio::test]
async fn keeps_serving_through_an_outage_and_reconnects_with_its_version() {
    let mut server = TestServer::start().await;
    let client = client(&server);
    let ctx = Context::new("user-1");
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(1, vec![bool_flag("a", true)])).await;
    client.wait_until_ready(WAIT).await.unwrap();

    drop(conn);
    let dropped = Instant::now();
    let status = status_until(&client, |s| s.connection != ConnectionState::Connected).await;
    assert!(status.is_stale());
    let detail = client.bool_detail("a", &ctx, false);
    assert!(detail.value, "last known flags are served");
    assert_eq!(
        detail.reason,
        EvaluationReason::Fallthrough { in_rollout: false }
    );

    let mut conn = server.accept().await;
    assert!(
        dropped.elapsed() >= Duration::from_millis(250),
        "reconnects after a backoff delay"
    );
    assert_eq!(conn.hello().await, Some(1));
    conn.send(&patch(1, 2, vec![bool_flag("a", false)])).await;
    let status = status_until(&client, |s| s.version == Some(2)).await;
    assert_eq!(status.connection, ConnectionState::Connected);
    assert!(!client.bool_value("a", &ctx, true));
}

#[tokio::test]
async fn goodbye_reconnects_after_the_hint() {
    let mut server = TestServer::start().await;
    let client = client(&server);
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(4, vec![bool_flag("a", true)])).await;
    client.wait_until_ready(WAIT).await.unwrap();

    conn.send(&ServerMessage::Goodbye {
        reason: "shutdown".into(),
        reconnect_after_ms: 300,
    })
    .await;
    let said = Instant::now();
    let mut conn = server.accept().await;
    assert!(said.elapsed() >= Duration::from_millis(300));
    assert_eq!(conn.hello().await, Some(4));
}

#[tokio::test]
async fn close_and_drop_stop_the_connection() {
    let mut server = TestServer::start().await;
    let client = client(&server);
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(1, vec![bool_flag("a", true)])).await;
    client.wait_until_ready(WAIT).await.unwrap();
    let mut changes = client.subscribe();

    client.close().await;
    assert!(conn.closed().await, "close sends a close frame");
    assert_eq!(client.status().connection, ConnectionState::Closed);
    assert_eq!(changes.recv().await, None);
    assert!(
        client.bool_value("a", &Context::new("u"), false),
        "still evaluates"
    );
    assert!(client.wait_until_ready(WAIT).await.is_ok(), "it had flags");

    let dropped_client = Client::builder(server.url(), KEY).build().unwrap();
    let mut conn = server.accept().await;
    conn.hello().await;
    drop(dropped_client);
    conn.closed().await;
}
