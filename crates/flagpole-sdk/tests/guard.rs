//! `guard` and `shadow` against an in-test stream server: what they report (per variant
//! and kind: calls, errors, mismatches, latencies), that they return the user's result
//! unchanged, that the candidate's bound and time limit hold, and what the helpers cost
//! the user's path (printed: `cargo nextest run -p flagpole-sdk --test guard
//! --no-capture`).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flagpole_core::wire::{OutcomeCount, OutcomeKind, ServerMessage, latency};
use flagpole_sdk::{Client, Context};
use support::*;

async fn ready(server: &mut TestServer, builder: flagpole_sdk::ClientBuilder) -> (Client, Conn) {
    let client = builder.build().unwrap();
    let mut conn = server.accept().await;
    conn.hello().await;
    let mut guarded = bool_flag("guarded", true);
    guarded["version"] = 7.into();
    let mut shadowed = bool_flag("shadowed", true);
    shadowed["version"] = 3.into();
    conn.send(&snapshot(
        1,
        vec![guarded, shadowed, bool_flag("off-flag", false)],
    ))
    .await;
    client.wait_until_ready(WAIT).await.unwrap();
    (client, conn)
}

/// Acknowledges batches and adds their outcomes up per (variant, kind) until `done`.
async fn outcomes_until(
    conn: &mut Conn,
    mut done: impl FnMut(&BTreeMap<(String, OutcomeKind), OutcomeCount>) -> bool,
) -> BTreeMap<(String, OutcomeKind), OutcomeCount> {
    let mut sums: BTreeMap<(String, OutcomeKind), OutcomeCount> = BTreeMap::new();
    while !done(&sums) {
        let batch = conn.telemetry().await;
        batch.validate(flagpole_sdk_now()).unwrap();
        conn.send(&ServerMessage::TelemetryAck {
            id: batch.id.clone(),
        })
        .await;
        for o in batch.outcomes {
            let held = sums
                .entry((o.variant.clone(), o.kind))
                .or_insert_with(|| OutcomeCount {
                    flag: o.flag.clone(),
                    flag_version: o.flag_version,
                    variant: o.variant.clone(),
                    kind: o.kind,
                    ..OutcomeCount::default()
                });
            assert_eq!(held.flag_version, o.flag_version);
            held.calls += o.calls;
            held.errors += o.errors;
            held.mismatches += o.mismatches;
            held.timeouts += o.timeouts;
            held.skipped += o.skipped;
            held.duration_us += o.duration_us;
            let mut buckets: BTreeMap<u32, u64> = held.latency.drain(..).collect();
            for (b, n) in o.latency {
                *buckets.entry(b).or_default() += n;
            }
            held.latency = buckets.into_iter().collect();
        }
    }
    sums
}

fn flagpole_sdk_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn calls(
    sums: &BTreeMap<(String, OutcomeKind), OutcomeCount>,
    variant: &str,
    kind: OutcomeKind,
) -> u64 {
    sums.get(&(variant.to_owned(), kind))
        .map_or(0, |o| o.calls + o.skipped)
}

#[allow(clippy::cast_precision_loss)]
fn mean_ms(o: &OutcomeCount) -> f64 {
    o.duration_us as f64 / o.calls as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_reports_errors_and_durations_per_variant_and_returns_the_result() {
    let mut server = TestServer::with_stream_telemetry().await;
    let builder =
        Client::builder(server.url(), KEY).telemetry_flush_interval(Duration::from_millis(50));
    let (client, mut conn) = ready(&mut server, builder).await;
    let ctx = Context::new("user-1");
    let mut returned = Vec::new();
    for i in 0..200u32 {
        let flag = if i < 150 { "guarded" } else { "off-flag" };
        let r: Result<u32, String> = client
            .guard(flag, &ctx, |variant| async move {
                if variant == "on" {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                if i % 10 == 0 {
                    Err(format!("boom {i}"))
                } else {
                    Ok(i)
                }
            })
            .await;
        returned.push(r);
    }
    assert_eq!(returned[10], Err("boom 10".to_owned()));
    assert_eq!(returned[11], Ok(11));

    let sums = outcomes_until(&mut conn, |s| {
        calls(s, "on", OutcomeKind::Guard) == 150 && calls(s, "off", OutcomeKind::Guard) == 50
    })
    .await;
    let on = &sums[&("on".to_owned(), OutcomeKind::Guard)];
    assert_eq!((on.flag.as_str(), on.flag_version), ("guarded", 7));
    assert_eq!((on.calls, on.errors, on.mismatches), (150, 15, 0));
    assert_eq!(on.latency.iter().map(|(_, n)| n).sum::<u64>(), 150);
    assert!(mean_ms(on) >= 2.0, "{}", mean_ms(on));
    let p50 = latency::quantile(&on.latency, 0.5).unwrap() / 1000.0;
    assert!((2.0..10.0).contains(&p50), "p50 {p50} ms");
    let off = &sums[&("off".to_owned(), OutcomeKind::Guard)];
    assert_eq!(
        (off.flag.as_str(), off.calls, off.errors),
        ("off-flag", 50, 5)
    );
    assert!(mean_ms(off) < mean_ms(on));
    client.close().await;
}

/// A deterministic "random" 0..10 per input.
fn tenth(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_reports_a_tenth_mismatching_and_5ms_slower_candidate_and_costs_the_user_little() {
    let mut server = TestServer::with_stream_telemetry().await;
    let builder = Client::builder(server.url(), KEY)
        .telemetry_flush_interval(Duration::from_millis(100))
        .shadow_limits(64, Duration::from_secs(1));
    let (client, mut conn) = ready(&mut server, builder).await;
    let ctx = Context::new("user-1");
    const N: u64 = 600;
    const WORK: Duration = Duration::from_millis(2);
    let mut differ = 0;
    let mut user_us = Vec::new();
    let mut plain_us = Vec::new();
    for i in 0..N {
        differ += u64::from(tenth(i) == 0);
        // The same work without the helper, then with it: the user's latency either way.
        let start = Instant::now();
        let plain: Result<u64, ()> = async {
            tokio::time::sleep(WORK).await;
            Ok(i * 2)
        }
        .await;
        plain_us.push(start.elapsed().as_micros());
        let start = Instant::now();
        let r: Result<u64, ()> = client
            .shadow(
                "shadowed",
                &ctx,
                async move {
                    tokio::time::sleep(WORK).await;
                    Ok(i * 2)
                },
                async move {
                    tokio::time::sleep(WORK + Duration::from_millis(5)).await;
                    Ok(if tenth(i) == 0 { i * 2 + 1 } else { i * 2 })
                },
                |a, b| a == b,
            )
            .await;
        user_us.push(start.elapsed().as_micros());
        assert_eq!(r, plain, "the user's result, unchanged");
    }
    let sums = outcomes_until(&mut conn, |s| {
        calls(s, "on", OutcomeKind::ShadowNew) == N
            && calls(s, "on", OutcomeKind::ShadowCurrent) == N
    })
    .await;
    let new = &sums[&("on".to_owned(), OutcomeKind::ShadowNew)];
    let current = &sums[&("on".to_owned(), OutcomeKind::ShadowCurrent)];
    assert_eq!((new.flag.as_str(), new.flag_version), ("shadowed", 3));
    assert_eq!((new.skipped, new.timeouts, new.errors), (0, 0, 0));
    // Every input that differs is counted, and no other.
    assert_eq!(new.mismatches, differ);
    #[allow(clippy::cast_precision_loss)]
    let rate = new.mismatches as f64 / new.calls as f64;
    // The inputs' differing tenth is itself a sample: 10% within three standard errors.
    #[allow(clippy::cast_precision_loss)]
    let se = (0.1f64 * 0.9 / N as f64).sqrt();
    assert!((rate - 0.1).abs() < 3.0 * se, "mismatch rate {rate}");
    let slower = mean_ms(new) - mean_ms(current);
    assert!(
        (4.0..7.5).contains(&slower),
        "candidate slower by {slower} ms"
    );
    let p50 = |o: &OutcomeCount| latency::quantile(&o.latency, 0.5).unwrap() / 1000.0;
    let p99 = |o: &OutcomeCount| latency::quantile(&o.latency, 0.99).unwrap() / 1000.0;

    // The helper's own cost on the user's path: ready futures, so only the helper counts.
    const M: u32 = 20_000;
    let start = Instant::now();
    for i in 0..M {
        let r: Result<u32, ()> = std::future::ready(Ok(i)).await;
        std::hint::black_box(r).ok();
    }
    let bare = start.elapsed();
    let start = Instant::now();
    for i in 0..M {
        let r: Result<u32, ()> = client
            .shadow(
                "off-flag",
                &ctx,
                std::future::ready(Ok(i)),
                std::future::ready(Ok(i)),
                |a, b| a == b,
            )
            .await;
        std::hint::black_box(r).ok();
    }
    let not_shadowed = start.elapsed();
    let start = Instant::now();
    for i in 0..M {
        let r: Result<u32, ()> = client
            .guard("guarded", &ctx, |_| std::future::ready(Ok(i)))
            .await;
        std::hint::black_box(r).ok();
    }
    let guarded = start.elapsed();
    let start = Instant::now();
    for i in 0..M {
        let r: Result<u32, ()> = client
            .shadow(
                "shadowed",
                &ctx,
                std::future::ready(Ok(i)),
                std::future::ready(Ok(i)),
                |a, b| a == b,
            )
            .await;
        std::hint::black_box(r).ok();
    }
    let shadowed = start.elapsed();
    user_us.sort_unstable();
    plain_us.sort_unstable();
    let at = |v: &[u128], q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() as f64 * q) as usize).min(v.len() - 1);
        #[allow(clippy::cast_precision_loss)]
        let ms = v[i] as f64 / 1000.0;
        ms
    };
    let per = |d: Duration| d.as_nanos() / u128::from(M);
    println!(
        "shadow: {N} calls, mismatch rate {rate:.4} (inputs differing: {differ}), current mean {:.2} ms \
         p50 {:.2} p99 {:.2}; candidate mean {:.2} ms p50 {:.2} p99 {:.2}; slower by {slower:.2} ms",
        mean_ms(current),
        p50(current),
        p99(current),
        mean_ms(new),
        p50(new),
        p99(new),
    );
    println!(
        "user's path with 2 ms of work: p50 {:.3} ms / p99 {:.3} ms shadowed, p50 {:.3} / p99 {:.3} ms plain",
        at(&user_us, 0.5),
        at(&user_us, 0.99),
        at(&plain_us, 0.5),
        at(&plain_us, 0.99),
    );
    println!(
        "helper overhead per call (ready futures, {M} calls): bare {} ns, shadow not shadowed {} ns, \
         guard {} ns, shadow with candidate spawned {} ns",
        per(bare),
        per(not_shadowed),
        per(guarded),
        per(shadowed),
    );
    // The user's path is not slowed by the candidate: its median stays with the plain
    // median, far below the candidate's 5 ms more.
    assert!(at(&user_us, 0.5) < at(&plain_us, 0.5) + 1.0);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bound_skips_candidates_and_a_slow_one_times_out() {
    let mut server = TestServer::with_stream_telemetry().await;
    let builder = Client::builder(server.url(), KEY)
        .telemetry_flush_interval(Duration::from_millis(50))
        .shadow_limits(2, Duration::from_millis(30));
    let (client, mut conn) = ready(&mut server, builder).await;
    let ctx = Context::new("user-1");
    let start = Instant::now();
    for i in 0..10u32 {
        let r: Result<u32, ()> = client
            .shadow(
                "shadowed",
                &ctx,
                std::future::ready(Ok(i)),
                async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(i)
                },
                |a, b| a == b,
            )
            .await;
        assert_eq!(r, Ok(i));
    }
    assert!(
        start.elapsed() < Duration::from_millis(30),
        "{:?}",
        start.elapsed()
    );
    let sums = outcomes_until(&mut conn, |s| calls(s, "on", OutcomeKind::ShadowNew) == 10).await;
    let new = &sums[&("on".to_owned(), OutcomeKind::ShadowNew)];
    assert_eq!(
        (new.calls, new.skipped, new.timeouts, new.errors),
        (2, 8, 2, 2)
    );
    assert_eq!(
        sums[&("on".to_owned(), OutcomeKind::ShadowCurrent)].calls,
        10
    );
    client.close().await;
}
