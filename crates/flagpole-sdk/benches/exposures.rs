//! What telemetry adds to an evaluation through the client, as JSON lines:
//! `cargo bench -p flagpole-sdk --bench exposures`.
//!
//! Cases: telemetry off; on, with no marked flag in the environment (the usual case: one
//! `Option` check); on, evaluating an unmarked flag while another flag is marked (a
//! lookup in the marked set); on, a marked flag whose exposure is already recorded (the
//! dedupe: hash, lock, LRU lookup), on one thread and on four at once (one context key
//! per thread; the machine has two cores, so four threads also time-share). Each figure is
//! the best of five runs of 2,000,000 evaluations; compare figures from one run only
//! (this machine's timings swing between runs).

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use flagpole_sdk::{Client, Context};
use support::*;

const N: u32 = 2_000_000;

async fn client(telemetry: bool, flags: Vec<serde_json::Value>) -> Client {
    let mut server = TestServer::start().await;
    let client = Client::builder(server.url(), KEY)
        .telemetry(telemetry)
        // No delivery during the measurement.
        .telemetry_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&snapshot(1, flags)).await;
    client.wait_until_ready(WAIT).await.unwrap();
    // The server end is dropped with this function; the client keeps its flags.
    client
}

fn ns_per_eval(client: &Client, flag: &str, threads: usize) -> f64 {
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    s.spawn(move || {
                        // One user per thread, as requests for different users would.
                        let ctx = Context::new(format!("user-{t}"));
                        for _ in 0..N {
                            black_box(client.bool_value(black_box(flag), &ctx, false));
                        }
                    });
                }
            });
            start.elapsed()
        })
        .min()
        .unwrap();
    best.as_nanos() as f64 / f64::from(N)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let plain = || vec![bool_flag("plain", true)];
    let with_marked = || vec![bool_flag("plain", true), marked_flag("exp", 3)];
    let off = rt.block_on(client(false, with_marked()));
    let unmarked_env = rt.block_on(client(true, plain()));
    let marked_env = rt.block_on(client(true, with_marked()));
    let cases = [
        ("telemetry_off", &off, "exp", 1),
        ("on_no_marked_flags", &unmarked_env, "plain", 1),
        (
            "on_unmarked_flag_beside_a_marked_one",
            &marked_env,
            "plain",
            1,
        ),
        ("on_marked_flag_dedupe_hit", &marked_env, "exp", 1),
        ("on_marked_flag_dedupe_hit_4_threads", &marked_env, "exp", 4),
    ];
    for (case, client, flag, threads) in cases {
        let ns = ns_per_eval(client, flag, threads);
        println!(
            "{{\"bench\":\"sdk_exposures\",\"case\":\"{case}\",\"threads\":{threads},\"ns_per_eval\":{ns:.1}}}"
        );
    }
    rt.block_on(async {
        for c in [off, unmarked_env, marked_env] {
            c.close().await;
        }
    });
}
