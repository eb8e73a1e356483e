//! Failed-login counters, per email and per client address, kept in memory.
//!
//! A fixed window per key: the first failure opens it, and once `max` failures are counted
//! in it, logins for that key get 429 until it closes. In memory (moka, bounded, entries
//! expire with their window) rather than in the database: a counter that resets on restart
//! or differs between replicas still caps guessing at a few attempts per minute per replica,
//! and a database write per failed attempt would let an attacker load the database instead.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::future::Cache;

/// One key's window.
#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    failures: u32,
}

/// Counts failed logins and says when to refuse more.
#[derive(Clone)]
pub struct LoginLimiter {
    counters: Cache<Key, Window>,
    max_per_email: u32,
    max_per_client: u32,
    window: Duration,
}

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Client(IpAddr),
}

impl LoginLimiter {
    /// At most `max_per_email` failures for one email and `max_per_client` for one client
    /// address within `window`. The client limit is higher: offices share an address.
    pub fn new(max_per_email: u32, max_per_client: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            // Bounded, so a flood of random emails cannot exhaust memory; the oldest
            // counters go first.
            counters: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            max_per_email,
            max_per_client,
            window,
        }
    }

    fn keys(email: &str, client: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::Email(email.to_owned()))
            .chain(client.map(|ip| Key::Client(network_of(ip))))
    }

    fn max(&self, key: &Key) -> u32 {
        match key {
            Key::Email(_) => self.max_per_email,
            Key::Client(_) => self.max_per_client,
        }
    }

    /// `Err(seconds)` if a login for `email` from `client` must be refused now, with the
    /// seconds until the window closes (for `Retry-After`).
    pub async fn check(&self, email: &str, client: Option<IpAddr>) -> Result<(), u64> {
        self.check_at(email, client, Instant::now()).await
    }

    async fn check_at(&self, email: &str, client: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut wait: Option<Duration> = None;
        for key in Self::keys(email, client) {
            let Some(w) = self.counters.get(&key).await else {
                continue;
            };
            let closes = w.opened + self.window;
            if w.failures >= self.max(&key) && closes > now {
                let left = closes - now;
                wait = Some(wait.map_or(left, |w| w.max(left)));
            }
        }
        match wait {
            // Round up: "retry in 0 s" would invite an immediate, refused retry.
            Some(left) => Err(left.as_secs() + u64::from(left.subsec_nanos() > 0)),
            None => Ok(()),
        }
    }

    /// Counts a failed login.
    pub async fn record_failure(&self, email: &str, client: Option<IpAddr>) {
        self.record_failure_at(email, client, Instant::now()).await;
    }

    async fn record_failure_at(&self, email: &str, client: Option<IpAddr>, now: Instant) {
        let window = self.window;
        for key in Self::keys(email, client) {
            self.counters
                .entry(key)
                .and_upsert_with(|existing| {
                    let next = match existing.map(|e| e.into_value()) {
                        Some(w) if w.opened + window > now => Window {
                            opened: w.opened,
                            failures: w.failures.saturating_add(1),
                        },
                        _ => Window {
                            opened: now,
                            failures: 1,
                        },
                    };
                    std::future::ready(next)
                })
                .await;
        }
    }

    /// Forgets the failures of `email` (after a successful login). The client's count
    /// stays: one success must not unlock guessing at other accounts from that address.
    pub async fn reset(&self, email: &str) {
        self.counters
            .invalidate(&Key::Email(email.to_owned()))
            .await;
    }
}

/// The unit an address is counted by: the address itself for IPv4, its /64 network for
/// IPv6, since one IPv6 client usually holds a whole /64 and could rotate through it.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(v6.to_bits() & !0u128 << 64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));

    #[tokio::test]
    async fn refuses_after_max_failures_until_the_window_closes() {
        let limiter = LoginLimiter::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at("a@x", IP, t0).await, Ok(()));
            limiter.record_failure_at("a@x", IP, t0).await;
        }
        assert_eq!(limiter.check_at("a@x", IP, t0).await, Err(60));
        let later = t0 + Duration::from_millis(59_500);
        assert_eq!(limiter.check_at("a@x", IP, later).await, Err(1));
        // Another email from the same address is not blocked by the email limit.
        assert_eq!(limiter.check_at("b@x", IP, t0).await, Ok(()));
        // When the window has passed, attempts are allowed and a new window opens.
        let after = t0 + Duration::from_secs(61);
        assert_eq!(limiter.check_at("a@x", IP, after).await, Ok(()));
        limiter.record_failure_at("a@x", IP, after).await;
        assert_eq!(limiter.check_at("a@x", IP, after).await, Ok(()));
    }

    #[tokio::test]
    async fn client_limit_spans_emails_and_reset_clears_only_the_email() {
        let limiter = LoginLimiter::new(2, 3, Duration::from_secs(60));
        let t0 = Instant::now();
        limiter.record_failure_at("a@x", IP, t0).await;
        limiter.record_failure_at("a@x", IP, t0).await;
        assert!(limiter.check_at("a@x", None, t0).await.is_err());
        limiter.reset("a@x").await;
        assert_eq!(limiter.check_at("a@x", None, t0).await, Ok(()));
        limiter.record_failure_at("c@x", IP, t0).await;
        // Three failures from IP across emails: the address is now blocked for any email.
        assert!(limiter.check_at("d@x", IP, t0).await.is_err());
        assert_eq!(limiter.check_at("d@x", None, t0).await, Ok(()));
    }

    #[tokio::test]
    async fn ipv6_clients_are_counted_by_their_64_network() {
        let limiter = LoginLimiter::new(100, 2, Duration::from_secs(60));
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.record_failure_at("a@x", Some(a), t0).await;
        limiter.record_failure_at("b@x", Some(b), t0).await;
        assert!(limiter.check_at("c@x", Some(a), t0).await.is_err());
        assert_eq!(limiter.check_at("c@x", Some(elsewhere), t0).await, Ok(()));
    }
}
