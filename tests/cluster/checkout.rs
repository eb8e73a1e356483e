//! The service the alert watches: a small axum app whose requests go through a new code
//! path when flag `new-checkout` is on (evaluated with the real SDK), and that path fails
//! half of them. It serves Prometheus's text format on /metrics:
//! `http_requests_total{service="checkout",code="200"|"500"}`, the series the shipped
//! rule (deploy/prometheus/flagpole-alerts.yml) computes its error ratio from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use flagpole_sdk::{Client, Context};
use tokio::task::JoinHandle;

/// The flag guarding the new code path.
pub(crate) const FLAG: &str = "new-checkout";

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// The running service: its /metrics listener and its traffic.
pub(crate) struct Checkout {
    pub(crate) addr: SocketAddr,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
}

impl Checkout {
    /// Serves /metrics on a free port and handles a request every 10 ms, evaluating the
    /// flag with `sdk` for each.
    pub(crate) async fn start(sdk: Arc<Client>) -> Checkout {
        let counters = Arc::new(Counters::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the checkout service");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/metrics", get(metrics))
            .with_state(counters.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve /metrics");
        });
        let c = counters.clone();
        let traffic = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for n in 0u64.. {
                tick.tick().await;
                let ctx = Context::new(format!("user-{}", n % 100));
                let new_path = sdk.bool_value(FLAG, &ctx, false);
                if new_path && n % 2 == 0 {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                } else {
                    c.ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Checkout {
            addr,
            counters,
            tasks: vec![server, traffic],
        }
    }

    /// Requests that failed so far.
    pub(crate) fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn metrics(State(c): State<Arc<Counters>>) -> String {
    // Both series from the start: a rate needs two samples, and the one of failures must
    // exist before the first failure for the alert to see it at once.
    format!(
        "# HELP http_requests_total Requests handled, by status code.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{{service=\"checkout\",code=\"200\"}} {}\n\
         http_requests_total{{service=\"checkout\",code=\"500\"}} {}\n",
        c.ok.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed)
    )
}
