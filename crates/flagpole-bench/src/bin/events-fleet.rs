//! One process of `cargo xtask load-events`' SDK fleet: N stream connections that report
//! telemetry (docs/protocol.md, "Telemetry") at a steady pace and time each batch's
//! acknowledgement.
//!
//! The coordinator speaks to it over stdin/stdout, one JSON line per message:
//! - it prints `{"ready": true}` once every connection is open and announced telemetry;
//! - on `go SECS` it reports for SECS seconds, each connection sending one batch every
//!   `--interval-ms` (first ones spread over the interval) and waiting for its answer,
//!   then writes every acknowledgement latency (µs) to `--samples` and prints
//!   `{"done": true, "acked": …, "nacked": …, "counts": …, "evaluations": …, "raw": …}`
//!   with what was acknowledged.
//!
//! Bare protocol clients (hello, then telemetry frames), not SDKs: what is measured is the
//! server's ingestion, not thousands of SDKs' evaluation loops sharing two cores with it.

use std::io::BufRead as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    sdk_key: String,
    #[arg(long)]
    connections: usize,
    /// Distinguishes this process's batch ids from the other fleets'.
    #[arg(long)]
    fleet: u32,
    /// Each connection sends one batch this often.
    #[arg(long)]
    interval_ms: u64,
    /// Flags counted in every batch (three outcomes each: on by rule, on and off by
    /// rollout).
    #[arg(long)]
    flags: usize,
    /// Exposures and tracked events (half each) in every batch.
    #[arg(long)]
    raw: usize,
    /// Where to write the acknowledgement latencies (JSON array of µs).
    #[arg(long)]
    samples: std::path::PathBuf,
}

#[derive(Default)]
struct Totals {
    acked: AtomicU64,
    nacked: AtomicU64,
    counts: AtomicU64,
    evaluations: AtomicU64,
    raw: AtomicU64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(fleet(args))
}

async fn fleet(args: Args) -> Result<()> {
    let args = Arc::new(args);
    let url = format!("{}/sdk/v1/stream", args.url).replacen("http://", "ws://", 1);
    let mut sockets = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let mut request = url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {}", args.sdk_key).parse()?);
        let (mut ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .context("connecting")?;
        if response.headers().get("flagpole-telemetry").is_none() {
            bail!("the server does not announce telemetry on the stream");
        }
        ws.send(Message::text(r#"{"type":"hello","version":null}"#))
            .await?;
        sockets.push(ws);
    }
    println!("{}", json!({"ready": true}));
    let secs = go().await?;
    let totals = Arc::new(Totals::default());
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(connection(
            ws,
            i,
            args.clone(),
            totals.clone(),
            until,
        )));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    std::fs::write(&args.samples, serde_json::to_vec(&samples)?)?;
    println!(
        "{}",
        json!({"done": true, "acked": totals.acked.load(Ordering::Relaxed),
               "nacked": totals.nacked.load(Ordering::Relaxed),
               "counts": totals.counts.load(Ordering::Relaxed),
               "evaluations": totals.evaluations.load(Ordering::Relaxed),
               "raw": totals.raw.load(Ordering::Relaxed)})
    );
    Ok(())
}

/// Waits for `go SECS` on stdin.
async fn go() -> Result<u64> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await??;
    line.trim()
        .strip_prefix("go ")
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("expected `go SECS`, got {line:?}"))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection: a batch every interval, each acknowledged before the next.
async fn connection(
    mut ws: Ws,
    index: usize,
    args: Arc<Args>,
    totals: Arc<Totals>,
    until: Instant,
) -> Result<Vec<u32>> {
    let interval = Duration::from_millis(args.interval_ms);
    // Spread the connections' first batches over one interval.
    let offset = interval.mul_f64((index % 1000) as f64 / 1000.0);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        let id = format!("{:08x}-{:04x}-7000-8000-{n:012x}", args.fleet, index);
        let (text, evaluations) = batch(&id, &args);
        let sent = Instant::now();
        ws.send(Message::text(text)).await?;
        loop {
            let Some(frame) = ws.next().await else {
                bail!("connection closed");
            };
            let Message::Text(text) = frame? else {
                continue;
            };
            let message: Value = serde_json::from_str(&text)?;
            match message["type"].as_str() {
                Some("telemetry_ack") if message["id"] == id.as_str() => {
                    samples.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    totals.acked.fetch_add(1, Ordering::Relaxed);
                    totals
                        .counts
                        .fetch_add(3 * args.flags as u64, Ordering::Relaxed);
                    totals.evaluations.fetch_add(evaluations, Ordering::Relaxed);
                    totals.raw.fetch_add(args.raw as u64, Ordering::Relaxed);
                    break;
                }
                Some("telemetry_nack") if message["id"] == id.as_str() => {
                    totals.nacked.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some("ping") => ws.send(Message::text(r#"{"type":"pong"}"#)).await?,
                _ => {}
            }
        }
        n += 1;
    }
    let _ = ws.close(None).await;
    Ok(samples)
}

/// A batch: three counters per flag, `raw` exposures and events; and its evaluations.
fn batch(id: &str, args: &Args) -> (String, u64) {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    let mut counts = Vec::with_capacity(args.flags * 3);
    let mut evaluations = 0;
    for f in 0..args.flags {
        let flag = format!("flag-{f}");
        for (variant, reason, rule, n) in [
            ("on", "RULE_MATCH", Some("nordics"), 7),
            ("on", "FALLTHROUGH", None, 20),
            ("off", "FALLTHROUGH", None, 73),
        ] {
            evaluations += n;
            counts.push(json!({"flag": flag, "flag_version": 2, "variant": variant,
                "reason": reason, "rule": rule, "start_ms": now - 10_000, "end_ms": now,
                "count": n}));
        }
    }
    let exposures: Vec<Value> = (0..args.raw / 2)
        .map(|i| {
            json!({"flag": "flag-0", "flag_version": 2, "variant": "on",
                        "context_key": format!("{id}-{i}"), "at_ms": now})
        })
        .collect();
    let events: Vec<Value> = (0..args.raw - args.raw / 2)
        .map(|i| {
            json!({"name": "checkout_completed", "context_key": format!("{id}-{i}"),
                        "value": 42.5, "properties": {"plan": "pro"}, "at_ms": now})
        })
        .collect();
    let text = json!({"type": "telemetry", "batch": {
        "id": id, "sdk": "events-fleet/1.0", "app": "load-events", "app_version": "1",
        "counts": counts, "exposures": exposures, "events": events}})
    .to_string();
    (text, evaluations)
}
