//! One process of `cargo xtask load-push`'s SDK fleet: N real `flagpole-sdk` clients.
//!
//! The coordinator starts several of these (one process may hold at most ~20,000 files
//! here) and speaks to each over stdin/stdout, one JSON line per message:
//! - it prints `{"ready": true, "connect_ms": …}` once every client holds flags;
//! - on `final V` from stdin it waits until every client holds version V, writes every
//!   sample (`[sent, µs]`: the change's send time in Unix ns, and µs from then to the
//!   change applied in that client) to `--samples` and prints `{"done": true, "samples": …, "behind": …}`.
//!
//! Each change the coordinator makes puts its send time (Unix ns) into the target key of
//! the `load` flag (`t<ns>`), so a client measures latency from the flags it holds, with
//! no clock other than the machine's own.
//!
//! With `--raw` the clients are bare protocol clients instead of SDKs: hello, then read
//! frames and pick the version and send time out of the text, decoding nothing else. That
//! measures the server's fan-out without the CPU that thousands of SDKs sharing this
//! machine's two cores spend applying every change.

use std::io::BufRead as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use flagpole_sdk::Client;

#[derive(Parser)]
struct Args {
    /// Server URLs; clients are spread over them round-robin.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    #[arg(long)]
    sdk_key: String,
    #[arg(long)]
    clients: usize,
    /// Clients connecting at once (the rest wait), so the listen backlog never overflows.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Where to write the latency samples (JSON array of `[sent Unix ns, µs]`).
    #[arg(long)]
    samples: std::path::PathBuf,
    /// Bare protocol clients instead of SDKs.
    #[arg(long)]
    raw: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // Two workers: this machine has two cores, and a fleet of thousands of SDKs applying
    // every change is CPU-bound (one worker would serialise them all behind each other).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(fleet(args))
}

async fn fleet(args: Args) -> Result<()> {
    if args.raw {
        return raw::fleet(args).await;
    }
    let samples: Samples = Arc::default();
    let started = Instant::now();
    let mut clients = Vec::with_capacity(args.clients);
    for batch in (0..args.clients).collect::<Vec<_>>().chunks(args.batch) {
        let mut waiting = Vec::with_capacity(batch.len());
        for &i in batch {
            let client = Client::builder(args.urls[i % args.urls.len()].clone(), &args.sdk_key)
                .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(2))
                .build()
                .context("building a client")?;
            waiting.push(client);
        }
        for client in waiting {
            client
                .wait_until_ready(Duration::from_secs(30))
                .await
                .map_err(|e| anyhow::anyhow!("client not ready: {e}"))?;
            spawn_recorder(client.clone(), samples.clone());
            clients.push(client);
        }
    }
    println!(
        "{}",
        serde_json::json!({"ready": true, "connect_ms": started.elapsed().as_secs_f64() * 1e3})
    );

    let final_version = final_version().await?;
    let behind = settle(|| {
        clients
            .iter()
            .filter(|c| c.flags().version() < Some(final_version))
            .count()
    })
    .await;
    // Let the recorders see the last events.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    std::fs::write(&args.samples, serde_json::to_vec(&samples)?)?;
    println!(
        "{}",
        serde_json::json!({"done": true, "samples": samples.len(), "behind": behind})
    );
    for client in &clients {
        client.close().await;
    }
    if behind > 0 {
        bail!("{behind} clients did not reach version {final_version}");
    }
    Ok(())
}

/// Latency samples of every client in this process: (the change's send time in Unix ns,
/// µs from then until a client applied it). The send time identifies the change, so the
/// coordinator can also measure from the moment the write was acknowledged.
type Samples = Arc<Mutex<Vec<(u64, u32)>>>;

fn record(samples: &Samples, sent_ns: u64, now_ns: u64) {
    let micros = now_ns.saturating_sub(sent_ns) / 1_000;
    let micros = u32::try_from(micros).unwrap_or(u32::MAX);
    samples.lock().unwrap().push((sent_ns, micros));
}

/// Records, for every change the client applies, how long ago the change was sent. It
/// watches the client's status (which moves with the version it serves) rather than
/// subscribing to flag changes: most applications do not subscribe, and the SDK works out
/// which flags a change touched only for subscribers.
fn spawn_recorder(client: Client, samples: Samples) {
    let mut status = client.watch_status();
    tokio::spawn(async move {
        let mut last = None;
        while status.changed().await.is_ok() {
            let now = unix_ns();
            let sent = client.flags().environment().and_then(|env| {
                let flag = env.flags.iter().find(|f| f.flag.key == "load")?;
                let key = flag.config.targets.first()?.keys.first()?;
                key.strip_prefix('t')?.parse::<u64>().ok()
            });
            // The status also moves with the connection's state; a change is recorded once.
            if sent.is_some() && sent != last {
                record(&samples, sent.unwrap_or_default(), now);
                last = sent;
            }
        }
    });
}

/// Waits up to 30 s for `behind` (clients not yet at the final version) to reach 0;
/// returns its last value.
async fn settle(behind: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = behind();
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `final V` from stdin.
async fn final_version() -> Result<u64> {
    tokio::task::spawn_blocking(|| -> Result<u64> {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim()
            .strip_prefix("final ")
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("expected `final V`, got {line:?}"))
    })
    .await?
}

fn unix_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// Bare protocol clients.
mod raw {
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

    use super::*;

    pub(super) async fn fleet(args: Args) -> Result<()> {
        let samples: Samples = Arc::default();
        let started = Instant::now();
        let mut versions = Vec::with_capacity(args.clients);
        for batch in (0..args.clients).collect::<Vec<_>>().chunks(args.batch) {
            let mut waiting = Vec::new();
            for &i in batch {
                let url = format!("{}/sdk/v1/stream", args.urls[i % args.urls.len()])
                    .replacen("http://", "ws://", 1);
                let version = Arc::new(AtomicU64::new(0));
                let (ready_tx, ready) = tokio::sync::oneshot::channel();
                tokio::spawn(client(
                    url,
                    args.sdk_key.clone(),
                    version.clone(),
                    samples.clone(),
                    ready_tx,
                ));
                versions.push(version);
                waiting.push(ready);
            }
            for ready in waiting {
                tokio::time::timeout(Duration::from_secs(30), ready)
                    .await
                    .context("a client did not get its snapshot within 30 s")?
                    .context("a client failed")?;
            }
        }
        println!(
            "{}",
            serde_json::json!({"ready": true, "connect_ms": started.elapsed().as_secs_f64() * 1e3})
        );
        let final_version = final_version().await?;
        let behind = settle(|| {
            versions
                .iter()
                .filter(|v| v.load(Ordering::Relaxed) < final_version)
                .count()
        })
        .await;
        let samples = std::mem::take(&mut *samples.lock().unwrap());
        std::fs::write(&args.samples, serde_json::to_vec(&samples)?)?;
        println!(
            "{}",
            serde_json::json!({"done": true, "samples": samples.len(), "behind": behind})
        );
        if behind > 0 {
            bail!("{behind} clients did not reach version {final_version}");
        }
        Ok(())
    }

    async fn client(
        url: String,
        sdk_key: String,
        version: Arc<AtomicU64>,
        samples: Samples,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> Result<()> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {sdk_key}").parse()?);
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        ws.send(Message::text(r#"{"type":"hello","sdk":"push-fleet-raw"}"#))
            .await?;
        let mut ready = Some(ready);
        while let Some(frame) = ws.next().await {
            let Message::Text(text) = frame? else {
                continue;
            };
            let now = unix_ns();
            if text.starts_with(r#"{"type":"snapshot""#) {
                if let Some(v) = number_after(&text, r#""version":"#) {
                    version.store(v, Ordering::Relaxed);
                }
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            } else if text.starts_with(r#"{"type":"patch""#) {
                if let Some(to) = number_after(&text, r#""to":"#) {
                    version.store(to, Ordering::Relaxed);
                }
                if let Some(sent) = number_after(&text, r#""keys":["t"#) {
                    record(&samples, sent, now);
                }
            } else if text.starts_with(r#"{"type":"ping""#) {
                ws.send(Message::text(r#"{"type":"pong"}"#)).await?;
            }
        }
        Ok(())
    }

    /// The unsigned number right after the first `marker` in `text`.
    fn number_after(text: &str, marker: &str) -> Option<u64> {
        let rest = &text[text.find(marker)? + marker.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }
}
