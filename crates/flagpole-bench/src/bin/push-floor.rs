//! One side of `cargo xtask push-floor`: what this machine's kernel alone costs to get one
//! message into N loopback TCP connections and out of them, with no WebSocket, no JSON,
//! no async runtime and no SDK. It is the floor under `cargo xtask load-push`'s latency:
//! no server and no client can deliver a change to N connections on these cores faster.
//!
//! `push-floor writer` accepts N connections, prints `{"listen": "ADDR"}` then
//! `{"ready": true}`, and on each `send` line from stdin writes one message to every
//! connection (spread over `--threads` threads, each writing to its share with one plain
//! `write` per connection, as a server's workers would), then prints `{"sent": true}`.
//!
//! `push-floor reader` opens N connections to `--connect`, prints `{"ready": true}`, reads
//! on `--threads` threads (edge-triggered epoll through mio, one `read` per message, as
//! tokio does), and once every connection has received `--rounds` messages (or nothing
//! arrived for 30 s) writes `[sent Unix ns, µs]` samples to `--samples` and prints
//! `{"done": true, "samples": …}`.
//!
//! Each message is `--bytes` long and starts with its send time (Unix ns, little endian):
//! the writer stamps it once per round, before the first write.

use std::io::{BufRead as _, ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Parser)]
enum Role {
    Writer {
        #[command(flatten)]
        shape: Shape,
    },
    Reader {
        #[command(flatten)]
        shape: Shape,
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        rounds: usize,
        #[arg(long)]
        samples: std::path::PathBuf,
    },
}

/// What both sides agree on.
#[derive(clap::Args)]
struct Shape {
    /// Connections.
    #[arg(long)]
    clients: usize,
    /// Threads sharing them.
    #[arg(long)]
    threads: usize,
    /// Bytes per message.
    #[arg(long)]
    bytes: usize,
}

fn main() -> Result<()> {
    match Role::parse() {
        Role::Writer { shape } => writer(&shape),
        Role::Reader {
            shape,
            connect,
            rounds,
            samples,
        } => reader(&shape, connect, rounds, &samples),
    }
}

fn writer(
    &Shape {
        clients,
        threads,
        bytes,
    }: &Shape,
) -> Result<()> {
    if bytes < 8 {
        bail!("--bytes must be at least 8 (the send time)");
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    say(&serde_json::json!({"listen": listener.local_addr()?.to_string()}));
    let mut shares: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..clients {
        let (stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        shares[i % threads].push(stream);
    }
    let (done_tx, done_rx) = mpsc::channel::<Result<()>>();
    let senders: Vec<mpsc::Sender<Arc<Vec<u8>>>> = shares
        .into_iter()
        .map(|mut share| {
            let (tx, rx) = mpsc::channel::<Arc<Vec<u8>>>();
            let done = done_tx.clone();
            std::thread::spawn(move || {
                for message in rx {
                    let result = share.iter_mut().try_for_each(|s| write_whole(s, &message));
                    if done.send(result).is_err() {
                        return;
                    }
                }
            });
            tx
        })
        .collect();
    say(&serde_json::json!({"ready": true}));
    for line in std::io::stdin().lock().lines() {
        if line? != "send" {
            continue;
        }
        let mut message = vec![b'x'; bytes];
        message[..8].copy_from_slice(&unix_ns().to_le_bytes());
        let message = Arc::new(message);
        for sender in &senders {
            sender.send(message.clone())?;
        }
        for _ in &senders {
            done_rx.recv()??;
        }
        say(&serde_json::json!({"sent": true}));
    }
    Ok(())
}

/// One `write` normally; a full socket buffer (it never is here: one small message per
/// round) is waited out rather than treated as the floor.
fn write_whole(stream: &mut TcpStream, mut message: &[u8]) -> Result<()> {
    while !message.is_empty() {
        match stream.write(message) {
            Ok(n) => message = &message[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn reader(
    &Shape {
        clients,
        threads,
        bytes,
    }: &Shape,
    connect: SocketAddr,
    rounds: usize,
    samples_path: &std::path::Path,
) -> Result<()> {
    let mut shares: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..clients {
        let stream = TcpStream::connect(connect).context("connecting")?;
        stream.set_nonblocking(true)?;
        shares[i % threads].push(stream);
    }
    say(&serde_json::json!({"ready": true}));
    let samples: Arc<Mutex<Vec<(u64, u32)>>> = Arc::default();
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let samples = samples.clone();
            std::thread::spawn(move || read_share(share, bytes, rounds, &samples))
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    std::fs::write(samples_path, serde_json::to_vec(&samples)?)?;
    say(&serde_json::json!({"done": true, "samples": samples.len()}));
    Ok(())
}

fn read_share(
    share: Vec<TcpStream>,
    bytes: usize,
    rounds: usize,
    samples: &Mutex<Vec<(u64, u32)>>,
) -> Result<()> {
    let mut poll = mio::Poll::new()?;
    let mut streams: Vec<mio::net::TcpStream> = share
        .into_iter()
        .map(mio::net::TcpStream::from_std)
        .collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        poll.registry()
            .register(stream, mio::Token(i), mio::Interest::READABLE)?;
    }
    // Bytes of the current message each connection has received.
    let mut partial = vec![0usize; streams.len()];
    let mut pending = streams.len() * rounds;
    let mut mine = Vec::with_capacity(pending);
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    let mut last_heard = Instant::now();
    while pending > 0 && last_heard.elapsed() < Duration::from_secs(30) {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in &events {
            let i = event.token().0;
            loop {
                let n = match streams[i].read(&mut buf) {
                    Ok(0) => bail!("writer closed a connection"),
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                };
                let now = unix_ns();
                last_heard = Instant::now();
                let mut at = 0;
                while at < n {
                    // One message per round, written with one `write`: a read never ends
                    // inside the first 8 bytes of one.
                    if partial[i] == 0 {
                        let stamp = buf
                            .get(at..at + 8)
                            .context("a message's send time arrived split over two reads")?;
                        let sent = u64::from_le_bytes(stamp.try_into()?);
                        let micros = now.saturating_sub(sent) / 1_000;
                        mine.push((sent, u32::try_from(micros).unwrap_or(u32::MAX)));
                    }
                    let take = (bytes - partial[i]).min(n - at);
                    partial[i] = (partial[i] + take) % bytes;
                    at += take;
                    if partial[i] == 0 {
                        pending = pending.saturating_sub(1);
                    }
                }
                // A short read drained the socket (the same shortcut tokio takes): no
                // second `read` just to hear "would block".
                if n < buf.len() {
                    break;
                }
            }
        }
    }
    samples.lock().unwrap().extend(mine);
    Ok(())
}

fn say(value: &serde_json::Value) {
    println!("{value}");
}

fn unix_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}
