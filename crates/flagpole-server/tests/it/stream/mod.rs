//! The SDK stream (`/sdk/v1/stream`, docs/protocol.md) through real servers on port 0 and
//! real WebSocket clients: snapshots and patches that reproduce the database's state,
//! catching up by version, refusals and close codes, heartbeats, graceful shutdown, a
//! stalled client next to a reading one, and two replicas on one Postgres database.

mod fanout;

use axum::http::{Method, Request, StatusCode};
use flagpole_core::wire::{ServerMessage, close_code};
use flagpole_server::db::Backend;
use flagpole_server::testing::fresh_db;
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::backends;
use crate::support::ADMIN_TOKEN;
use crate::support::stream::*;

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    snapshot_then_patches_reproduce_the_database => snapshot_then_patches_postgres, snapshot_then_patches_sqlite;
    versions_catch_up_by_patches_or_snapshot => catch_up_postgres, catch_up_sqlite;
    bad_credentials_are_refused_before_the_upgrade => refused_postgres, refused_sqlite;
    pruned_history_sends_the_whole_environment => pruned_history_postgres, pruned_history_sqlite;
    config_writes_are_published_by_the_writer => local_patches_postgres, local_patches_sqlite;
}

/// A snapshot far larger than one frame (the server sends it as continuation frames of a
/// few KiB) arrives whole and equal to the database, over a socket with a 4 KiB receive
/// buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_snapshot_arrives_whole_through_fragments() {
    let mut server = Server::start(fresh_db(Backend::Sqlite).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    for i in 0..60 {
        server
            .write(
                Method::POST,
                "/api/v1/projects/shop/flags",
                json!({"key": format!("flag-{i}"), "name": format!("Flag numéro {i}"),
                       "description": "x".repeat(300)}),
            )
            .await;
    }
    let mut ws = connect_small_buffer(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello"})).await;
    let env = snapshot_of(next_message(&mut ws).await);
    assert!(env.flags.len() > 60, "{} flags", env.flags.len());
    assert_eq!(sorted(env), truth(&server.db, seeded.env_id).await);
    server.stop().await;
}

async fn snapshot_then_patches_reproduce_the_database(backend: Backend) {
    let mut server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello", "sdk": "test/0"})).await;
    let mut env = snapshot_of(next_message(&mut ws).await);
    assert_eq!(sorted(env.clone()), truth(&server.db, seeded.env_id).await);

    let base = "/api/v1/projects/shop";
    let writes = [
        (
            Method::POST,
            format!("{base}/flags/switch/environments/production/toggle"),
            json!({"enabled": true}),
        ),
        (
            Method::POST,
            format!("{base}/flags"),
            json!({"key": "second", "kind": "string",
            "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}]}),
        ),
        (
            Method::POST,
            format!("{base}/segments"),
            json!({"key": "beta", "included": ["u1"]}),
        ),
        (
            Method::POST,
            format!("{base}/flags/second/archive"),
            json!({}),
        ),
        (Method::DELETE, format!("{base}/segments/beta"), json!({})),
    ];
    for (method, uri, body) in writes {
        server.write(method, &uri, body).await;
        let patch = patch_of(next_message(&mut ws).await);
        assert_eq!(patch.from, env.version, "patches are continuous");
        env.apply(&patch).unwrap();
        assert_eq!(
            sorted(env.clone()),
            truth(&server.db, seeded.env_id).await,
            "after {uri}"
        );
    }
    // A fresh connection's snapshot agrees with the patched state.
    let mut fresh = connect(server.addr, &seeded.sdk_key).await;
    send(&mut fresh, json!({"type": "hello"})).await;
    assert_eq!(
        sorted(snapshot_of(next_message(&mut fresh).await)),
        sorted(env)
    );

    // The stream's metrics are exported (text, not JSON: read through the router).
    let metrics = server.metrics().await;
    for name in [
        "stream_connections",
        "stream_messages_sent_total",
        "stream_fanout_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    server.stop().await;
}

/// `env_change` is pruned to each environment's last versions; a hub holding a version
/// older than the history left gets the whole environment as one patch. The change made
/// here without history rows (a flag archived behind the server's back, as if its rows had
/// been pruned) is only seen that way: a patch built from the rows alone would miss it.
async fn pruned_history_sends_the_whole_environment(backend: Backend) {
    let mut server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    let base = "/api/v1/projects/shop";
    server
        .write(
            Method::POST,
            &format!("{base}/flags"),
            json!({"key": "doomed"}),
        )
        .await;
    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello", "sdk": "test/0"})).await;
    let mut env = snapshot_of(next_message(&mut ws).await);
    assert!(env.flags.iter().any(|f| f.flag.key == "doomed"));
    let db = &server.db;
    let history = |db: &flagpole_server::Db| {
        let db = db.clone();
        async move {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "select data_version from env_change where environment_id = $1 \
                 order by data_version",
            )
            .bind(seeded.env_id)
            .fetch_all(&db.pool)
            .await
            .unwrap();
            rows.into_iter().map(|(v,)| v).collect::<Vec<_>>()
        }
    };

    // `doomed` is archived behind the server's back and the history pruned past it, in one
    // transaction (what `prune(db, 0)` leaves, below), as if the hub had been away: the
    // periodic check may poke the hub at any moment, and whenever it looks it must find
    // its version pruned. (Done as separate steps, a check between the bump and the prune
    // read an empty patch: this test failed that way once under load.)
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("update flag set archived_at = 1 where key = 'doomed'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "update environment set data_version = data_version + 1, \
         history_from = data_version + 1 where id = $1",
    )
    .bind(seeded.env_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let deleted = sqlx::query("delete from env_change where environment_id = $1")
        .bind(seeded.env_id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    tx.commit().await.unwrap();
    assert!(deleted > 0, "the history before the archive is pruned");
    assert_eq!(history(db).await, Vec::<i64>::new());

    // A write through the API pokes the hub, which is two versions behind and finds its
    // history gone: the whole environment comes as one patch from the client's version.
    // If the periodic check looked first, that patch ends at the archive and the toggle's
    // own follows.
    let toggle = format!("{base}/flags/switch/environments/production/toggle");
    server
        .write(Method::POST, &toggle, json!({"enabled": true}))
        .await;
    let target = env.version + 2;
    let whole = patch_of(next_message(&mut ws).await);
    assert_eq!(whole.from, env.version);
    assert_eq!(whole.removed_flags, ["doomed"]);
    env.apply(&whole).unwrap();
    while env.version < target {
        let patch = patch_of(next_message(&mut ws).await);
        env.apply(&patch).unwrap();
    }
    assert_eq!(env.version, target);
    assert_eq!(sorted(env.clone()), truth(db, seeded.env_id).await);

    // From then on, ordinary patches; pruning keeps the last versions asked for.
    for enabled in [false, true, false] {
        server
            .write(Method::POST, &toggle, json!({"enabled": enabled}))
            .await;
        let patch = patch_of(next_message(&mut ws).await);
        assert_eq!((patch.from, patch.to), (env.version, env.version + 1));
        env.apply(&patch).unwrap();
    }
    flagpole_server::push::history::prune(db, 2).await.unwrap();
    let v = i64::try_from(env.version).unwrap();
    assert_eq!(history(db).await, [v - 1, v]);
    assert_eq!(
        flagpole_server::push::history::prune(db, 2).await.unwrap(),
        0,
        "pruning again removes nothing"
    );
    assert_eq!(sorted(env), truth(db, seeded.env_id).await);

    // A backlog of many delete batches (as in a database from before pruning) goes too.
    let top = v + 2_500;
    sqlx::query(
        "with recursive n(v) as (select $2 union all select v + 1 from n where v < $3) \
         insert into env_change (environment_id, data_version, kind, key) \
         select $1, v, 'flag', 'switch' from n",
    )
    .bind(seeded.env_id)
    .bind(v + 1)
    .bind(top)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("update environment set data_version = $1 where id = $2")
        .bind(top)
        .bind(seeded.env_id)
        .execute(&db.pool)
        .await
        .unwrap();
    let deleted = flagpole_server::push::history::prune(db, 10).await.unwrap();
    assert_eq!(deleted, 2_492, "the 2 old rows and 2,490 of the backlog");
    assert_eq!(history(db).await, ((top - 9)..=top).collect::<Vec<_>>());
    server.stop().await;
}

/// A config write (toggle or replace) hands its patch to this replica's hub itself,
/// without the hub reading the change back from the database: each such patch is exactly
/// the database's change between its versions, the counter of patches published that way
/// moves once per write, and no patch is read.
async fn config_writes_are_published_by_the_writer(backend: Backend) {
    let mut server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    let base = "/api/v1/projects/shop";
    server
        .write(
            Method::POST,
            &format!("{base}/segments"),
            json!({"key": "staff", "rules": [{"clauses": [
                {"attribute": "email", "op": "ends_with", "values": ["@shop.test"]}]}]}),
        )
        .await;
    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello", "sdk": "test/0"})).await;
    let mut env = snapshot_of(next_message(&mut ws).await);
    let local_before = server.counter("stream_local_patches_total").await;
    let reads_before = server.counter("stream_patch_read_seconds_count").await;

    let switch = format!("{base}/flags/switch/environments/production");
    let (_, flag) = server
        .call(Method::GET, &format!("{base}/flags/switch"), None)
        .await;
    let mut version = flag["version"].as_i64().expect("flag version");
    let configs = [
        json!({"enabled": true, "off_variant": "off", "targets": [{"variant": "on", "keys": ["u1", "u2"]}],
               "rules": [{"clauses": [{"attribute": "", "op": "in_segment", "values": ["staff"]}],
                          "serve": {"variant": "on"}},
                         {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro", "team"]},
                                      {"attribute": "seats", "op": "gt", "values": [2.5]}],
                          "serve": {"rollout": {"bucket_by": "org", "weights": [
                              {"variant": "on", "weight": 33_333}, {"variant": "off", "weight": 66_667}]}}}],
               "default_serve": {"variant": "off"}}),
        json!({"enabled": true, "off_variant": "off", "default_serve": {"rollout": {"weights": [
                  {"variant": "on", "weight": 10_000}, {"variant": "off", "weight": 90_000}]}}}),
    ];
    let mut writes = 0;
    for config in configs {
        let view = server
            .write(
                Method::PUT,
                &switch,
                json!({"version": version, "config": config}),
            )
            .await;
        version = view["version"].as_i64().expect("flag version");
        writes += 1;
        for enabled in [false, true] {
            server
                .write(
                    Method::POST,
                    &format!("{switch}/toggle"),
                    json!({"enabled": enabled}),
                )
                .await;
            writes += 1;
            version += 1;
        }
    }
    for _ in 0..writes {
        let patch = patch_of(next_message(&mut ws).await);
        assert_eq!((patch.from, patch.to), (env.version, env.version + 1));
        assert_eq!(patch.flags.len(), 1);
        env.apply(&patch).unwrap();
    }
    assert_eq!(sorted(env), truth(&server.db, seeded.env_id).await);
    assert_eq!(
        server.counter("stream_local_patches_total").await - local_before,
        f64::from(writes),
        "every config write published its own patch"
    );
    assert_eq!(
        server.counter("stream_patch_read_seconds_count").await,
        reads_before,
        "no patch was read back from the database (on Postgres, not even for the write's own \
         notification)"
    );
    server.stop().await;
}

async fn versions_catch_up_by_patches_or_snapshot(backend: Backend) {
    let mut server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    let mut first = connect(server.addr, &seeded.sdk_key).await;
    send(&mut first, json!({"type": "hello"})).await;
    let start = snapshot_of(next_message(&mut first).await).version;
    let mut versions = vec![start];
    for i in 0..3 {
        server.toggle("switch", i % 2 == 0).await;
        let patch = patch_of(next_message(&mut first).await);
        assert_eq!(patch.from, *versions.last().unwrap());
        versions.push(patch.to);
    }
    let latest = *versions.last().unwrap();

    // A client holding a recent version gets exactly the patches it lacks.
    let mut second = connect(server.addr, &seeded.sdk_key).await;
    send(
        &mut second,
        json!({"type": "hello", "version": versions[1]}),
    )
    .await;
    let mut held = versions[1];
    while held < latest {
        let patch = patch_of(next_message(&mut second).await);
        assert_eq!(patch.from, held, "never a gap");
        held = patch.to;
    }
    // Resync by version: the same patches again; without a version: a snapshot.
    send(
        &mut second,
        json!({"type": "resync", "version": versions[2]}),
    )
    .await;
    assert_eq!(patch_of(next_message(&mut second).await).to, latest);
    send(&mut second, json!({"type": "resync"})).await;
    assert_eq!(snapshot_of(next_message(&mut second).await).version, latest);
    send(&mut second, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut second).await, ServerMessage::Pong);

    // A version this database never had: the current snapshot.
    let mut stranger = connect(server.addr, &seeded.sdk_key).await;
    send(
        &mut stranger,
        json!({"type": "hello", "version": latest + 1000}),
    )
    .await;
    assert_eq!(
        snapshot_of(next_message(&mut stranger).await).version,
        latest
    );
    server.stop().await;
}

async fn bad_credentials_are_refused_before_the_upgrade(backend: Backend) {
    let mut server = Server::start(fresh_db(backend).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    for key in [
        None,
        Some("fp_sdk_not_a_real_key_000000000000000000000000"),
        Some(ADMIN_TOKEN),
    ] {
        match try_connect(server.addr, key).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{key:?}")
            }
            Ok(_) => panic!("{key:?} was accepted"),
            Err(other) => panic!("{key:?}: unexpected {other}"),
        }
    }
    // A valid key on a plain GET: the JSON error format, not axum's text.
    let req = Request::builder()
        .uri("/sdk/v1/stream")
        .header("authorization", format!("Bearer {}", seeded.sdk_key))
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, body) = server.send(req).await;
    assert!(status.is_client_error(), "{status}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["error"]["code"], "websocket_upgrade_required",
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_with_1003_and_1009() {
    let mut server = Server::start(fresh_db(Backend::Sqlite).await.unwrap(), 15).await;
    let seeded = seed(&server).await;

    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "launch_missiles"})).await;
    let ServerMessage::Error { code, .. } = next_message(&mut ws).await else {
        panic!("expected an error before the close")
    };
    assert_eq!(code, "malformed_message");
    assert_eq!(close_code(&mut ws).await, Some(close_code::UNSUPPORTED));

    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    use futures_util::SinkExt as _;
    let huge = "x".repeat(flagpole_core::wire::MAX_CLIENT_FRAME + 1);
    // The server refuses the frame by its header and closes while the client is still
    // writing it (a megabyte does not fit in the socket buffers), so the write may fail
    // with a reset; what the server sent before closing is still there to read.
    let _ = ws.send(Message::text(huge)).await;
    assert_eq!(close_code(&mut ws).await, Some(close_code::TOO_BIG));

    // The server is unharmed.
    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello"})).await;
    snapshot_of(next_message(&mut ws).await);
    server.stop().await;
}

/// Revoking an SDK key closes its open streams with 1008 within a heartbeat interval;
/// streams of the environment's other keys carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_closes_its_streams_with_1008() {
    let mut server = Server::start(fresh_db(Backend::Sqlite).await.unwrap(), 2).await;
    let seeded = seed(&server).await;
    let keys = "/api/v1/projects/shop/environments/production/sdk-keys";
    let doomed_key = server
        .write(Method::POST, keys, json!({"name": "doomed"}))
        .await;
    let revoked_id = doomed_key["id"].as_i64().expect("key id");
    let doomed_key = doomed_key["key"].as_str().unwrap().to_owned();
    let mut doomed = connect(server.addr, &doomed_key).await;
    let mut kept = connect(server.addr, &seeded.sdk_key).await;
    for ws in [&mut doomed, &mut kept] {
        send(ws, json!({"type": "hello"})).await;
        snapshot_of(next_message(ws).await);
    }
    let revoking = std::time::Instant::now();
    let (status, _) = server
        .call(Method::DELETE, &format!("{keys}/{revoked_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut doomed).await, Some(close_code::POLICY));
    let took = revoking.elapsed();
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");

    send(&mut kept, json!({"type": "ping"})).await;
    server.toggle("switch", true).await;
    loop {
        match next_message(&mut kept).await {
            ServerMessage::Patch(_) => break,
            ServerMessage::Pong => continue,
            other => panic!("expected the patch, got {other:?}"),
        }
    }
    // The revoked key cannot open a new stream.
    assert!(try_connect(server.addr, Some(&doomed_key)).await.is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_with_4000_after_two_heartbeats() {
    let mut server = Server::start(fresh_db(Backend::Sqlite).await.unwrap(), 1).await;
    let seeded = seed(&server).await;
    let mut ws = connect(server.addr, &seeded.sdk_key).await;
    send(&mut ws, json!({"type": "hello"})).await;
    let said_hello = std::time::Instant::now();
    snapshot_of(next_message(&mut ws).await);
    // `next` skips the server's pings, which this client never answers.
    assert_eq!(close_code(&mut ws).await, Some(close_code::TIMEOUT));
    let after = said_hello.elapsed();
    assert!(
        after >= std::time::Duration::from_millis(1900)
            && after < std::time::Duration::from_secs(4),
        "closed after {after:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_says_goodbye_then_closes_with_1001() {
    let mut server = Server::start(fresh_db(Backend::Sqlite).await.unwrap(), 15).await;
    let seeded = seed(&server).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(server.addr, &seeded.sdk_key).await;
        send(&mut ws, json!({"type": "hello"})).await;
        snapshot_of(next_message(&mut ws).await);
        clients.push(ws);
    }
    server.stop().await;
    for mut ws in clients {
        let ServerMessage::Goodbye {
            reason,
            reconnect_after_ms,
        } = next_message(&mut ws).await
        else {
            panic!("expected a goodbye")
        };
        assert_eq!(reason, "shutdown");
        assert!(reconnect_after_ms > 0);
        assert_eq!(close_code(&mut ws).await, Some(close_code::GOING_AWAY));
    }
}
