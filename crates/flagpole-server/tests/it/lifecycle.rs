//! The shutdown sequence a rolling deploy relies on: on the signal /readyz fails at once
//! while requests are still served for the drain delay, then the listener closes and
//! `serve` returns well within the shutdown timeout.

use std::time::{Duration, Instant};

use flagpole_server::App;
use flagpole_server::probe::get_status;

use crate::support::config;

/// GET over a real socket (the probe is blocking, hence `spawn_blocking`).
async fn status(url: String) -> Option<u16> {
    tokio::task::spawn_blocking(move || get_status(&url, Duration::from_secs(2)).ok())
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_fails_readiness_then_drains_then_stops() {
    let mut config = config();
    config.drain_delay_secs = 1;
    config.shutdown_timeout_secs = 5;
    let app = App::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));

    assert_eq!(status(format!("{base}/readyz")).await, Some(200));
    let signalled = Instant::now();
    stop.send(()).unwrap();
    // Readiness fails at once (well inside the drain delay)...
    let mut draining = false;
    while signalled.elapsed() < Duration::from_millis(800) {
        if status(format!("{base}/readyz")).await == Some(503) {
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(draining, "/readyz still passes after the signal");
    // ...while new connections are still served.
    assert_eq!(status(format!("{base}/healthz")).await, Some(200));

    let served = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns before the shutdown timeout")
        .unwrap();
    served.unwrap();
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "stopped before the drain delay: {took:?}"
    );
    assert_eq!(
        status(format!("{base}/healthz")).await,
        None,
        "listener closed"
    );
}
