//! `cargo xtask load-ofrep`: OFREP single-flag evaluation under load, against a trivial axum
//! server on the same machine in the same run, with wrk.
//!
//! Both servers are release builds; the flag evaluated (`load-flag`) has a rule with a
//! clause serving a 50/50 rollout, and the context matches the rule, so every request does
//! the full work: SDK-key lookup, snapshot lookup, clause, bucketing hash, serialisation.
//! flagpole runs with `RUST_LOG=warn`, so per-request access logs are not measured (the
//! baseline logs nothing either). Measures `--rounds` alternating rounds (baseline, then
//! OFREP) and prints each on stderr, then one JSON line of medians over the rounds:
//! `{"ofrep_rps":…, "baseline_rps":…, "ofrep_p99_ms":…, "ofrep_p99_max_ms":…,
//! "baseline_p99_ms":…, "ratio":…, "rounds":…}` (`ofrep_p99_max_ms` is the worst round's).

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use flagpole_tests::process::{have, run as sh};
use flagpole_tests::server::{self, Server, free_port};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Rounds, each measuring the baseline then OFREP. Throughput on this shared machine
    /// drifts by ±15% between runs for both servers alike, so one long measurement of each
    /// gives a ratio that swings with the drift; alternating rounds and comparing medians
    /// measures both under the same conditions.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
}

/// What wrk measured.
struct Measured {
    rps: f64,
    p99_ms: f64,
    non_2xx: u64,
}

pub(crate) fn run(args: Args) -> Result<()> {
    ensure_wrk()?;
    crate::release::build()?;

    let server = Server::start(&server::binary("release"), "warn")?;
    let sdk_key = server::seed(server.addr).context("seeding the server")?;
    let baseline = Baseline::start()?;

    let script = std::env::temp_dir().join(format!("flagpole-ofrep-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.body = '{{\"context\":{{\"targetingKey\":\"user-123\",\"plan\":\"pro\"}}}}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {sdk_key}\"\n"
        ),
    )?;
    let ofrep_url = format!("{}/ofrep/v1/evaluate/flags/load-flag", server.url());
    let baseline_url = format!("http://{}/", baseline.addr);

    // Warm both up (connections, caches, CPU frequency), then measure in alternating rounds.
    wrk(&args, &script, &ofrep_url, 2)?;
    wrk(&args, &script, &baseline_url, 2)?;
    let mut rounds = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let base = wrk(&args, &script, &baseline_url, args.seconds)?;
        let ofrep = wrk(&args, &script, &ofrep_url, args.seconds)?;
        if ofrep.non_2xx > 0 {
            bail!("{} OFREP requests did not answer 2xx", ofrep.non_2xx);
        }
        rounds.push((base, ofrep));
    }
    let _ = std::fs::remove_file(&script);
    drop(baseline);
    server.stop()?;

    let median = |f: &dyn Fn(&(Measured, Measured)) -> f64| -> f64 {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (base_rps, ofrep_rps) = (median(&|r| r.0.rps), median(&|r| r.1.rps));
    let (base_p99, ofrep_p99) = (median(&|r| r.0.p99_ms), median(&|r| r.1.p99_ms));
    let ofrep_p99_max = rounds.iter().map(|r| r.1.p99_ms).fold(0.0, f64::max);
    let ratio = ofrep_rps / base_rps;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    for (i, (base, ofrep)) in rounds.iter().enumerate() {
        eprintln!(
            "load-ofrep: round {}: OFREP {:.0} req/s (p99 {:.2} ms), baseline {:.0} req/s \
             (p99 {:.2} ms), ratio {:.3}",
            i + 1,
            ofrep.rps,
            ofrep.p99_ms,
            base.rps,
            base.p99_ms,
            ofrep.rps / base.rps
        );
    }
    eprintln!(
        "load-ofrep: medians: OFREP {ofrep_rps:.0} req/s (p99 {ofrep_p99:.2} ms), baseline \
         {base_rps:.0} req/s (p99 {base_p99:.2} ms), ratio {ratio:.2} \
         (targets: ratio >= 0.6, p99 <= 3 ms)"
    );
    println!(
        "{}",
        serde_json::json!({
            "ofrep_rps": ofrep_rps.round(),
            "baseline_rps": base_rps.round(),
            "ofrep_p99_ms": round3(ofrep_p99),
            "ofrep_p99_max_ms": round3(ofrep_p99_max),
            "baseline_p99_ms": round3(base_p99),
            "ratio": round3(ratio),
            "rounds": rounds.len(),
        })
    );
    Ok(())
}

fn ensure_wrk() -> Result<()> {
    if have("wrk") {
        return Ok(());
    }
    if !have("apt-get") {
        bail!("wrk is not installed (and there is no apt-get to install it)");
    }
    eprintln!("load-ofrep: installing wrk");
    sh(Command::new("apt-get").args(["update", "-qq"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn wrk(args: &Args, script: &std::path::Path, url: &str, seconds: u32) -> Result<Measured> {
    let output = Command::new("wrk")
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Measured> {
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    let p99_ms = duration_ms(p99)?;
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Some(Measured {
        rps,
        p99_ms,
        non_2xx,
    })
}

/// wrk prints latencies as `812.00us`, `1.23ms`, `1.01s` or `2.00m`.
fn duration_ms(s: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// The baseline server (src/bin/baseline.rs), killed when dropped.
struct Baseline {
    child: Child,
    addr: SocketAddr,
}

impl Baseline {
    fn start() -> Result<Baseline> {
        let target = server::binary("release");
        let binary = target.with_file_name("baseline");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let child = Command::new(&binary)
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let baseline = Baseline { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("baseline server did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(baseline)
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  \
            Latency Distribution\n     50%  612.00us\n     75%    1.01ms\n     90%    1.55ms\n     \
            99%    3.20ms\n  200000 requests in 10.00s, 30.00MB read\n  \
            Non-2xx or 3xx responses: 3\nRequests/sec:  19999.51\nTransfer/sec:      3.00MB\n";
        let m = parse_wrk(text).unwrap();
        assert!((m.rps - 19999.51).abs() < 1e-9);
        assert!((m.p99_ms - 3.2).abs() < 1e-9);
        assert_eq!(m.non_2xx, 3);
        assert_eq!(duration_ms("812.00us"), Some(0.812));
        assert_eq!(duration_ms("1.50s"), Some(1500.0));
        assert_eq!(duration_ms("12"), None);
    }
}
