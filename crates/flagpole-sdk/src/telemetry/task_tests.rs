//! The task's delivery decisions, against a scripted count source and a stand-in HTTP
//! server.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Mutex;

use flagpole_core::wire::{ClientMessage, EvalCount};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::*;
use crate::shared::ConnectionState;
use crate::telemetry::buffer::Limits;
use crate::telemetry::{Recorder, Settings, batch};

#[test]
fn a_stream_message_is_a_client_telemetry_message() {
    let batch = TelemetryBatch {
        id: uuid::Uuid::now_v7().to_string(),
        sdk: "flagpole-rust/0".into(),
        dropped: 4,
        ..TelemetryBatch::default()
    };
    let text = serde_json::to_string(&StreamMessage { batch: &batch }).unwrap();
    assert_eq!(
        serde_json::from_str::<ClientMessage>(&text).unwrap(),
        ClientMessage::Telemetry { batch }
    );
}

/// Counts handed out by the next drain, as the test pushes them.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Vec<EvalCount>>>);

impl Scripted {
    fn push(&self, variant: &str, count: u64) {
        self.0.lock().unwrap().push(EvalCount {
            flag: "f".into(),
            flag_version: 1,
            variant: Some(variant.into()),
            reason: "FALLTHROUGH".into(),
            start_ms: 1_000,
            end_ms: 2_000,
            count,
            ..EvalCount::default()
        });
    }
}

impl CountSource for Scripted {
    fn drain(&self, _start_ms: i64, _end_ms: i64, out: &mut Vec<EvalCount>) {
        out.append(&mut self.0.lock().unwrap());
    }
}

/// `POST /sdk/v1/events` answered with the scripted statuses in turn (the last one
/// repeated); every batch posted is sent to the receiver. `before_answer` runs with each
/// status just before it is sent.
async fn events_stub(
    statuses: &[u16],
    before_answer: impl Fn(u16) + Clone + Send + Sync + 'static,
) -> (EventsEndpoint, mpsc::UnboundedReceiver<TelemetryBatch>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk/v1/events", listener.local_addr().unwrap());
    let statuses = Arc::new(Mutex::new(
        statuses.iter().copied().collect::<VecDeque<_>>(),
    ));
    let (posted, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (statuses, posted) = (statuses.clone(), posted.clone());
            let before_answer = before_answer.clone();
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (statuses, posted) = (statuses.clone(), posted.clone());
                let before_answer = before_answer.clone();
                async move {
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let _ = posted.send(serde_json::from_slice(&body).unwrap());
                    let status = {
                        let mut statuses = statuses.lock().unwrap();
                        if statuses.len() > 1 {
                            statuses.pop_front().unwrap()
                        } else {
                            statuses[0]
                        }
                    };
                    before_answer(status);
                    let mut response = Response::new(Full::new(bytes::Bytes::from_static(
                        br#"{"error":{"code":"not_found","message":"no route"}}"#,
                    )));
                    *response.status_mut() = StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let endpoint = EventsEndpoint {
        url: url.parse().unwrap(),
        authorization: HeaderValue::from_static("Bearer fp_sdk_test"),
        #[cfg(feature = "rustls")]
        tls: None,
    };
    (endpoint, received)
}

fn task(counts: Scripted, http: EventsEndpoint) -> Task<Scripted> {
    let settings = Settings::default();
    Task {
        outbox: batch::Outbox::new("flagpole-rust/test", "app", "1"),
        recorder: Arc::new(Recorder::new(Limits::default())),
        settings,
        counts,
        shared: Arc::new(Shared::new(ConnectionState::Connected)),
        http,
        window_start_ms: 0,
        paused: None,
        not_before: None,
        unsupported_until: None,
        warned_unsupported: false,
    }
}

fn total(batch: &TelemetryBatch, variant: &str) -> u64 {
    batch
        .counts
        .iter()
        .filter(|c| c.variant.as_deref() == Some(variant))
        .map(|c| c.count)
        .sum()
}

#[tokio::test]
async fn a_server_without_the_endpoint_is_left_alone_and_the_counts_kept() {
    let (http, mut posted) = events_stub(&[404, 202], |_| {}).await;
    let counts = Scripted::default();
    let mut task = task(counts.clone(), http);

    counts.push("on", 3);
    task.flush(false).await;
    let first = posted.recv().await.unwrap();
    assert_eq!(total(&first, "on"), 3);
    let until = task.unsupported_until.expect("backing off");
    assert!(until >= Instant::now() + UNSUPPORTED_BACKOFF - Duration::from_secs(5));
    assert!(task.warned_unsupported);
    assert_eq!(task.outbox.len(), 1, "not stored: kept");

    // Flushes during the back-off, the final one at close included, post nothing; their
    // counts merge into the kept batch.
    counts.push("on", 4);
    task.flush(false).await;
    counts.push("off", 1);
    task.flush(true).await;
    assert!(posted.try_recv().is_err(), "posted during the back-off");
    let kept = &task.outbox.front().unwrap().batch;
    assert_eq!((total(kept, "on"), total(kept, "off")), (7, 1));

    // Ten minutes later (the test moves the deadline rather than wait), the server was
    // upgraded: the kept batch goes, under its first id, with everything counted since.
    task.unsupported_until = Some(Instant::now());
    task.flush(false).await;
    let resent = posted.recv().await.unwrap();
    assert_eq!(resent.id, first.id, "never stored, so the same batch");
    assert_eq!((total(&resent, "on"), total(&resent, "off")), (7, 1));
    assert_eq!(task.outbox.len(), 0, "stored");
    assert_eq!(task.unsupported_until, None);
}

/// A 401 pauses delivery until the stream connects again, and only a connection made
/// after the refused request counts, however late the 401's answer is handled.
#[tokio::test]
async fn a_401_pauses_until_a_later_connection_even_one_made_before_the_answer() {
    for reconnect_before_answer in [false, true] {
        let shared = Arc::new(Shared::new(ConnectionState::Connected));
        let hook = shared.clone();
        let (http, mut posted) = events_stub(&[401, 202], move |status| {
            if status == 401 && reconnect_before_answer {
                // The stream drops and comes back while the 401 is on its way.
                hook.telemetry.connections.send_modify(|n| *n += 1);
            }
        })
        .await;
        let counts = Scripted::default();
        let mut task = task(counts.clone(), http);
        task.shared = shared.clone();

        counts.push("on", 1);
        task.flush(false).await;
        let refused = posted.recv().await.unwrap();
        assert_eq!(task.paused, Some(0), "refused during connection 0");
        counts.push("on", 2);
        task.flush(false).await;
        if reconnect_before_answer {
            let resent = posted.recv().await.unwrap();
            assert_eq!(resent.id, refused.id, "the refused batch, kept");
            assert_eq!(total(&resent, "on"), 3);
            assert_eq!(task.paused, None);
        } else {
            assert!(
                posted.try_recv().is_err(),
                "posted while the key is refused"
            );
            shared.telemetry.connections.send_modify(|n| *n += 1);
            task.flush(false).await;
            assert_eq!(posted.recv().await.unwrap().id, refused.id);
        }
        assert_eq!(task.outbox.len(), 0, "stored");
    }
}
