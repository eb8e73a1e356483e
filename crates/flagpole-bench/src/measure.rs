//! What load tools measure, the same way in each: CPU time of processes, latency
//! percentiles, the wall clock that stamps samples.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// CPU time used by processes, in clock ticks, from /proc/PID/stat.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    user: u64,
    system: u64,
}

impl std::ops::AddAssign for Cpu {
    fn add_assign(&mut self, other: Cpu) {
        self.user += other.user;
        self.system += other.system;
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, other: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(other.user),
            system: self.system.saturating_sub(other.system),
        }
    }
}

impl Cpu {
    /// User plus system time, in seconds.
    pub(crate) fn seconds(self) -> f64 {
        (self.user + self.system) as f64 / 100.0
    }

    /// µs per delivery, user and system (Linux counts in ticks of 1/100 s).
    pub(crate) fn per(self, deliveries: f64) -> Value {
        let us = |ticks: u64| round3(ticks as f64 * 10_000.0 / deliveries);
        json!({"user": us(self.user), "system": us(self.system)})
    }
}

pub(crate) fn cpu_of(pids: impl IntoIterator<Item = u32>) -> Result<Cpu> {
    let mut total = Cpu::default();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are the 14th and
        // 15th of the whole line.
        let rest = stat.rsplit_once(')').context("/proc stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| -> Result<u64> {
            fields
                .get(i)
                .context("/proc stat field")?
                .parse()
                .context("ticks")
        };
        total += Cpu {
            user: field(11)?,
            system: field(12)?,
        };
    }
    Ok(total)
}

pub(crate) fn percentiles(sorted_us: &[u32]) -> Value {
    let at = |q: f64| -> f64 {
        if sorted_us.is_empty() {
            return f64::NAN;
        }
        let i = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
        round3(f64::from(sorted_us[i]) / 1e3)
    };
    json!({"p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub(crate) fn unix_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}
