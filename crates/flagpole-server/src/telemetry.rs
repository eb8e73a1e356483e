//! Metrics and request logging: the Prometheus recorder, and the layers that give every
//! request an id, a log span and its HTTP metrics.
//!
//! Metric names:
//! - `http_requests_total{method, route, status}` and
//!   `http_request_duration_seconds{method, route, status}` (histogram). `route` is the
//!   matched route template (`/ofrep/v1/evaluate/flags/{key}`), never the raw path, so
//!   flag keys and ids cannot blow up the label cardinality; unmatched paths are `unmatched`.
//! - `flag_evaluations_total{reason}` (OFREP; see `http::ofrep`).
//! - `db_pool_connections`, `db_pool_idle_connections`, `db_pool_max_connections`,
//!   `snapshot_cache_environments` (gauges set when `/metrics` is scraped).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// Request id header: taken from the client or load balancer when present, else generated;
/// echoed in the response and recorded on every log line of the request.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Latency buckets in seconds: fine-grained below 10 ms, where evaluation lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process-wide Prometheus handle. The recorder is installed globally on first use;
/// a process (a test binary builds many apps) installs it once.
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".into()),
            LATENCY_BUCKETS,
        ) {
            Ok(b) => b,
            // Only fails for an empty bucket list, which LATENCY_BUCKETS is not.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// Drains histogram samples into their buckets periodically, so memory stays bounded
/// between scrapes (the exporter's own HTTP listener would do this; we serve /metrics
/// ourselves). Ends when `shutdown` is cancelled.
pub(crate) async fn upkeep(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => prometheus().run_upkeep(),
        }
    }
}

/// Wraps every route of `router` (and its fallback) with, from the outside in: request id
/// (set if absent, then propagated to the response), a tracing span with the request id,
/// method, route and path plus one log line per response with status and latency, and the
/// HTTP metrics.
///
/// The layers go in as one `ServiceBuilder` stack: `Router::layer` boxes each layer it is
/// given around every route, and axum clones that box chain per request, so four separate
/// `.layer` calls cost four allocations and clones per request where one stack costs one.
pub(crate) fn instrument<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!(
                "request",
                request_id,
                method = %req.method(),
                route,
                path = req.uri().path(),
            )
        })
        .on_request(())
        .on_response(|res: &Response, latency: Duration, _span: &Span| {
            tracing::info!(
                status = res.status().as_u16(),
                latency_ms = latency.as_secs_f64() * 1000.0,
                "request finished"
            );
        });
    // `Router::layer` wraps each route after routing, so `MatchedPath` is available to the
    // span and the metrics. In a ServiceBuilder the first layer is the outermost: the id is
    // set before the span opens.
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), FastRequestId))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(axum::middleware::from_fn(track_http)),
    )
}

/// Request ids shaped like UUIDs (v4 layout), from a per-process random seed and a counter
/// mixed by splitmix64. Unique within the process and unpredictable enough to tell
/// processes apart, without the `getrandom` system call per request that `Uuid::new_v4`
/// makes (measurable under OFREP load).
#[derive(Clone, Copy)]
struct FastRequestId;

impl MakeRequestId for FastRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        static SEED: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            // RandomState is seeded from the OS once per process: a random u64 without
            // another dependency.
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(u64::from(std::process::id()));
            h.finish()
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let hi = splitmix64(seed ^ n);
        let lo = splitmix64(hi ^ n.rotate_left(32));
        // Version 4 and RFC 4122 variant bits, so it parses as a UUID.
        let hi = (hi & !0xf000) | 0x4000;
        let lo = (lo & !(0xc000 << 48)) | (0x8000 << 48);
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        );
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Counts the request and records its latency, labelled by method, route template and
/// status.
async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let (count, duration) = http_meters(&method, route, response.status().as_u16());
    count.increment(1);
    duration.record(started.elapsed().as_secs_f64());
    response
}

/// One request's counter and latency histogram.
type HttpMeters = (metrics::Counter, metrics::Histogram);

/// Meters by route template, then (method, status). The metrics macros build a labelled
/// key (three label strings and a vector) and hash it into the registry on every call;
/// under load that was several allocations and lookups per request. Routes, methods and
/// statuses are few, so each combination is looked up once and its handles kept here.
type MeterCache = std::collections::HashMap<Box<str>, Vec<(Method, u16, HttpMeters)>>;

fn http_meters(method: &Method, route: &str, status: u16) -> HttpMeters {
    static CACHE: OnceLock<RwLock<MeterCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(RwLock::default);
    let find = |cache: &MeterCache| {
        cache.get(route).and_then(|by| {
            by.iter()
                .find(|(m, s, _)| m == method && *s == status)
                .map(|(_, _, meters)| meters.clone())
        })
    };
    if let Some(meters) = find(&cache.read().unwrap_or_else(|p| p.into_inner())) {
        return meters;
    }
    let mut cache = cache.write().unwrap_or_else(|p| p.into_inner());
    if let Some(meters) = find(&cache) {
        return meters;
    }
    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let meters = (
        metrics::counter!("http_requests_total", &labels),
        metrics::histogram!("http_request_duration_seconds", &labels),
    );
    cache
        .entry(route.into())
        .or_default()
        .push((method.clone(), status, meters.clone()));
    meters
}
