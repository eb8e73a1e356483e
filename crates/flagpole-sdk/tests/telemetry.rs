//! Telemetry against in-test peers: evaluation counts, exposures and events on the
//! stream and over `POST /sdk/v1/events`, acknowledgements and refusals, a server older
//! than telemetry, the buffer's bound, and `close()`'s deadline.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use flagpole_core::wire::{ServerMessage, TelemetryBatch};
use flagpole_sdk::{Client, Context, TrackError};
use serde_json::{Map, Value, json};
use support::*;

fn props(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// A connected, ready client whose environment has `exp` (marked for exposures, flag
/// version 7) and `plain` (not marked).
async fn ready(server: &mut TestServer, builder: flagpole_sdk::ClientBuilder) -> (Client, Conn) {
    let client = builder.build().unwrap();
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(
        1,
        vec![marked_flag("exp", 7), bool_flag("plain", true)],
    ))
    .await;
    client.wait_until_ready(WAIT).await.unwrap();
    (client, conn)
}

fn exposures(batch: &TelemetryBatch) -> Vec<(String, u64, String, String)> {
    batch
        .exposures
        .iter()
        .map(|e| {
            (
                e.flag.clone(),
                e.flag_version,
                e.variant.clone(),
                e.context_key.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn exposures_and_events_travel_on_the_stream_and_a_nack_is_resent_with_its_id() {
    let mut server = TestServer::with_stream_telemetry().await;
    let builder = Client::builder(server.url(), KEY)
        .application("checkout", "2.4.1")
        .telemetry_flush_interval(Duration::from_millis(50));
    let (client, mut conn) = ready(&mut server, builder).await;

    let (u1, u2) = (Context::new("user-1"), Context::new("user-2"));
    for _ in 0..3 {
        assert!(client.bool_value("exp", &u1, false));
    }
    assert!(client.bool_detail("exp", &u2, false).value);
    assert!(
        client.flags().bool_detail("exp", &u1, false).value,
        "a duplicate"
    );
    assert!(
        client.bool_value("plain", &u1, false),
        "not marked: no exposure"
    );
    client
        .track(
            "checkout_completed",
            &u1,
            Some(42.5),
            props(json!({"plan": "pro"})),
        )
        .unwrap();

    // Busy: the same batch (same id) comes again after the hint.
    let first = conn.telemetry().await;
    assert_eq!(first.app, "checkout");
    assert!(first.sdk.starts_with("flagpole-rust/"));
    conn.send(&ServerMessage::TelemetryNack {
        id: first.id.clone(),
        code: "busy".into(),
        message: "queue full".into(),
        retry_after_ms: Some(100),
    })
    .await;
    let mut again = conn.telemetry().await;
    assert_eq!(again.id, first.id, "a refused batch keeps its id");

    // Everything recorded arrives (in this batch, or the next if a flush fell between
    // the calls above), the exposures deduplicated.
    let mut seen = vec![again.clone()];
    conn.send(&ServerMessage::TelemetryAck {
        id: again.id.clone(),
    })
    .await;
    while seen.iter().map(|b| b.events.len()).sum::<usize>() < 1
        || seen.iter().map(|b| b.exposures.len()).sum::<usize>() < 2
    {
        again = conn.telemetry().await;
        assert_ne!(
            again.id, first.id,
            "an acknowledged batch is not sent again"
        );
        conn.send(&ServerMessage::TelemetryAck {
            id: again.id.clone(),
        })
        .await;
        seen.push(again.clone());
    }
    let all_exposures: Vec<_> = seen.iter().flat_map(exposures).collect();
    assert_eq!(
        all_exposures,
        [
            ("exp".into(), 7, "on".into(), "user-1".into()),
            ("exp".into(), 7, "on".into(), "user-2".into())
        ]
    );
    let event = &seen.iter().flat_map(|b| &b.events).next().unwrap();
    assert_eq!(
        (event.name.as_str(), event.context_key.as_str(), event.value),
        ("checkout_completed", "user-1", Some(42.5))
    );
    assert_eq!(event.properties["plan"], "pro");
    assert!(
        server.events.posted.try_recv().is_err(),
        "nothing was posted"
    );
    client.close().await;
}

#[tokio::test]
async fn an_invalid_batch_is_dropped_not_resent() {
    let mut server = TestServer::with_stream_telemetry().await;
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_millis(50));
    let (client, mut conn) = ready(&mut server, builder).await;
    client
        .track("a", &Context::new("u"), None, Map::new())
        .unwrap();
    let bad = conn.telemetry().await;
    conn.send(&ServerMessage::TelemetryNack {
        id: bad.id.clone(),
        code: "invalid_batch".into(),
        message: "events[0].at_ms: is more than 7 days in the past".into(),
        retry_after_ms: None,
    })
    .await;
    client
        .track("b", &Context::new("u"), None, Map::new())
        .unwrap();
    let next = conn.telemetry().await;
    assert_ne!(next.id, bad.id);
    let names: Vec<_> = next.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    conn.send(&ServerMessage::TelemetryAck { id: next.id })
        .await;
    client.close().await;
}

#[tokio::test]
async fn without_the_upgrade_header_batches_are_posted_and_429_waits_for_retry_after() {
    let mut server = TestServer::start().await;
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_millis(50));
    let (client, _conn) = ready(&mut server, builder).await;
    server.events.answer(429, Some("1"));
    client
        .track("signup", &Context::new("user-9"), None, Map::new())
        .unwrap();

    let first = server.events.next().await;
    assert_eq!(first.path, "/sdk/v1/events");
    assert_eq!(
        first.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(first.batch.events[0].name, "signup");
    let second = server.events.next().await;
    assert_eq!(second.batch.id, first.batch.id, "retried under the same id");
    assert!(
        second.at - first.at >= Duration::from_secs(1),
        "not before Retry-After"
    );
    client.close().await;
    let extra = server.events.posted.try_recv();
    assert!(extra.is_err(), "stored (202): not sent again: {extra:?}");
}

#[tokio::test]
async fn overflow_drops_and_reports_exactly_how_many() {
    let mut server = TestServer::start().await;
    // No timed flush during the test: close() sends everything in one final batch.
    let builder = Client::builder(server.url(), KEY)
        .telemetry_buffer(5, 1 << 20)
        .telemetry_flush_interval(Duration::from_secs(3600));
    let (client, _conn) = ready(&mut server, builder).await;
    let ctx = Context::new("user-1");
    for i in 0..12 {
        client
            .track(&format!("event-{i}"), &ctx, Some(f64::from(i)), Map::new())
            .unwrap();
    }
    client.close().await;
    let posted = server.events.next().await;
    let names: Vec<_> = posted
        .batch
        .events
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["event-0", "event-1", "event-2", "event-3", "event-4"]
    );
    assert_eq!(posted.batch.dropped, 7);
}

#[tokio::test]
async fn non_finite_values_and_bad_names_are_refused_at_the_call() {
    let server = TestServer::start().await;
    for client in [
        Client::builder(server.url(), KEY).build().unwrap(),
        Client::builder(server.url(), KEY)
            .telemetry(false)
            .build()
            .unwrap(),
    ] {
        let ctx = Context::new("u");
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                client.track("x", &ctx, Some(value), Map::new()),
                Err(TrackError::NonFiniteValue(_))
            ));
        }
        let error = client.track("", &ctx, None, Map::new()).unwrap_err();
        assert!(
            matches!(&error, TrackError::Invalid { field, .. } if field == "name"),
            "{error}"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn switched_off_nothing_is_sent() {
    let mut server = TestServer::start().await;
    let builder = Client::builder(server.url(), KEY).telemetry(false);
    let (client, _conn) = ready(&mut server, builder).await;
    assert!(client.bool_value("exp", &Context::new("u"), false));
    client
        .track("x", &Context::new("u"), None, Map::new())
        .unwrap();
    client.close().await;
    // With telemetry on, close() posts before it returns (see the overflow test).
    assert!(server.events.posted.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn close_returns_within_its_deadline_when_the_server_never_answers() {
    // Accepts TCP, reads nothing, answers nothing: neither the stream's handshake nor
    // the final POST ever completes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = accepted_tx.send(());
        }
    });
    let client = Client::builder(url, KEY).build().unwrap();
    client
        .track("x", &Context::new("u"), None, Map::new())
        .unwrap();
    let start = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(30), client.close())
        .await
        .expect("close() hung");
    let took = tokio::time::Instant::now() - start;
    assert!(took <= Duration::from_millis(2_100), "close took {took:?}");
    let mut connections = 0;
    while accepted.try_recv().is_ok() {
        connections += 1;
    }
    assert_eq!(
        connections, 2,
        "the stream and the final POST both connected"
    );
}

#[tokio::test(start_paused = true)]
async fn close_returns_at_once_when_the_port_is_closed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::builder(url, KEY).build().unwrap();
    client
        .track("x", &Context::new("u"), None, Map::new())
        .unwrap();
    let start = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(30), client.close())
        .await
        .expect("close() hung");
    let took = tokio::time::Instant::now() - start;
    assert!(took <= Duration::from_secs(2), "close took {took:?}");
}

#[tokio::test]
async fn a_batch_without_an_answer_goes_again_unchanged() {
    let mut server = TestServer::with_stream_telemetry().await;
    // No reconnect during the test: the retry must take the HTTP way.
    let builder = Client::builder(server.url(), KEY)
        .telemetry_flush_interval(Duration::from_millis(50))
        .reconnect_backoff(Duration::from_secs(600), Duration::from_secs(600));
    let (client, conn) = ready(&mut server, builder).await;
    client
        .track("a", &Context::new("u"), None, Map::new())
        .unwrap();
    let mut conn = conn;
    let first = conn.telemetry().await;
    // The connection drops before the answer: the batch may be stored, so the next
    // delivery (over HTTP here, the stream being down) is the same batch, same id.
    drop(conn);
    client
        .track("b", &Context::new("u"), None, Map::new())
        .unwrap();
    let mut ids = HashSet::new();
    let again = server.events.next().await;
    assert_eq!(again.batch, first, "unchanged, under the same id");
    ids.insert(again.batch.id);
    let next = server.events.next().await;
    assert!(ids.insert(next.batch.id.clone()));
    assert_eq!(next.batch.events[0].name, "b");
    client.close().await;
}

#[tokio::test]
async fn a_rejected_key_stops_telemetry_until_the_stream_connects_again() {
    let mut server = TestServer::start().await;
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_millis(50));
    let (client, conn) = ready(&mut server, builder).await;
    server.events.answer(401, None);
    client
        .track("a", &Context::new("u"), None, Map::new())
        .unwrap();
    let refused = server.events.next().await;

    // Flushes keep coming every ~50 ms; none posts while the key is rejected.
    client
        .track("b", &Context::new("u"), None, Map::new())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(conn);
    let mut conn = server.accept().await;
    let reconnected = tokio::time::Instant::now();
    conn.hello().await;
    let resumed = server.events.next().await;
    assert!(
        resumed.at >= reconnected,
        "nothing posted before the reconnection"
    );
    assert_eq!(
        resumed.batch.id, refused.batch.id,
        "the refused batch, kept"
    );
    let names: Vec<_> = resumed
        .batch
        .events
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "the open batch took the later event");
    client.close().await;
}

#[tokio::test]
async fn dropping_the_last_handle_flushes_too() {
    let mut server = TestServer::start().await;
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_secs(3600));
    let (client, _conn) = ready(&mut server, builder).await;
    client
        .track("last", &Context::new("u"), None, Map::new())
        .unwrap();
    drop(client);
    let posted = server.events.next().await;
    assert_eq!(posted.batch.events[0].name, "last");
}

/// Every batch the stub receives until `close` has returned, merged per
/// (flag, flag version, variant, reason).
fn counted(
    batches: &[TelemetryBatch],
) -> std::collections::BTreeMap<(String, u64, String, String), u64> {
    let mut totals = std::collections::BTreeMap::new();
    for c in batches.iter().flat_map(|b| &b.counts) {
        let key = (
            c.flag.clone(),
            c.flag_version,
            c.variant.clone().unwrap_or_default(),
            c.reason.clone(),
        );
        *totals.entry(key).or_default() += c.count;
    }
    totals
}

#[tokio::test]
async fn evaluations_are_counted_across_a_change_of_flags() {
    let mut server = TestServer::start().await;
    // No timed flush: close() sends everything in its final flush.
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_secs(3600));
    let (client, mut conn) = ready(&mut server, builder).await;
    let ctx = Context::new("u");
    for _ in 0..3 {
        assert!(client.bool_value("plain", &ctx, false));
    }
    // A handle on the first flags, still evaluating after a patch replaced them.
    let held = client.flags();
    let mut off = bool_flag("plain", false);
    off["version"] = 2.into();
    conn.send(&patch(1, 2, vec![off])).await;
    status_until(&client, |s| s.version == Some(2)).await;
    assert!(!client.bool_detail("plain", &ctx, true).value);
    assert!(held.bool_detail("plain", &ctx, false).value);
    drop(held);
    assert!(client.string_value("plain", &ctx, "x") == "x", "wrong type");
    client.bool_value("nope", &ctx, false);
    client.close().await;

    let mut batches = Vec::new();
    while let Ok(posted) = server.events.posted.try_recv() {
        batches.push(posted.batch);
    }
    let key = |flag: &str, version, variant: &str, reason: &str| {
        (
            flag.to_owned(),
            version,
            variant.to_owned(),
            reason.to_owned(),
        )
    };
    assert_eq!(
        counted(&batches),
        std::collections::BTreeMap::from([
            // `plain` carries no version in the first snapshot (0: as from an older server).
            (key("plain", 0, "on", "FALLTHROUGH"), 4),
            (key("plain", 2, "off", "OFF"), 1),
            (key("plain", 2, "", "ERROR"), 1),
            (key("nope", 0, "", "ERROR"), 1),
        ])
    );
}

#[tokio::test]
async fn with_telemetry_off_evaluations_are_not_counted() {
    let mut server = TestServer::start().await;
    let builder = Client::builder(server.url(), KEY).telemetry(false);
    let (client, _conn) = ready(&mut server, builder).await;
    assert!(!client.flags().snapshot().is_counting());
    client.close().await;
}

#[tokio::test]
async fn a_server_older_than_telemetry_is_asked_once_then_left_alone() {
    // As a server from before telemetry: no telemetry header on the upgrade, and a JSON
    // 404 for `POST /sdk/v1/events` (its router's answer to a route it does not have).
    let mut server = TestServer::start().await;
    server.events.answer_all(404);
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_millis(50));
    let (client, _conn) = ready(&mut server, builder).await;
    let ctx = Context::new("u");
    assert!(client.bool_value("plain", &ctx, false));
    client.track("a", &ctx, None, Map::new()).unwrap();
    let asked = server.events.next().await;
    assert_eq!(asked.path, "/sdk/v1/events");
    // Twenty flush intervals of evaluations and events, then close: nothing more is
    // posted (each flush would have posted again before).
    for _ in 0..20 {
        assert!(client.bool_value("plain", &ctx, false));
        client.track("b", &ctx, None, Map::new()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await;
    let mut requests = 1;
    while server.events.posted.try_recv().is_ok() {
        requests += 1;
    }
    assert_eq!(
        requests, 1,
        "the server was asked again during the back-off"
    );
}
