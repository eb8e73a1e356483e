//! Backoff and heartbeat timing, on a paused clock.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
    let mut backoff = Backoff::new(500 * MS, Duration::from_secs(30));
    let bases = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
    for _round in 0..20 {
        for base in bases {
            let d = backoff.next_delay();
            assert!(
                d >= base / 2 * MS && d <= base * MS,
                "{d:?} not in [{}, {base}] ms",
                base / 2
            );
        }
        backoff.reset();
    }
}

#[test]
fn jitter_spreads_delays() {
    let mut backoff = Backoff::new(Duration::from_secs(8), Duration::from_secs(8));
    let delays: std::collections::HashSet<_> = (0..50).map(|_| backoff.next_delay()).collect();
    assert!(
        delays.len() > 10,
        "delays should differ between clients: {delays:?}"
    );
    for _ in 0..50 {
        let d = after_goodbye(Duration::from_secs(2));
        assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(3));
    }
}

#[tokio::test(start_paused = true)]
async fn heartbeat_declares_death_after_two_intervals_and_a_margin() {
    let interval = Duration::from_secs(15);
    let start = Instant::now();
    let mut hb = Heartbeat::new(interval, start);
    tokio::time::sleep(Duration::from_secs(20)).await;
    hb.heard(Instant::now());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        Instant::now() < hb.deadline(),
        "30 s after the last frame is not yet dead"
    );
    tokio::time::sleep_until(hb.deadline()).await;
    assert!(Instant::now() >= hb.deadline());
    let silence = Instant::now() - (start + Duration::from_secs(20));
    assert!(
        silence >= 2 * interval && silence <= 3 * interval,
        "{silence:?}"
    );
}
