//! The telemetry upkeep loop: every `--telemetry-upkeep-secs` it creates the raw
//! partitions ahead (Postgres), rolls hourly counters up into daily rows, and applies
//! retention (dropping whole raw partitions on Postgres, deleting rows otherwise). Every
//! replica runs it; each step is safe to run concurrently (`if not exists`, `skip
//! locked`, deletes by cutoff). Stops on shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{Db, now_ms};
use crate::store::ingest::DAY_MS;
use crate::store::rollup::{self, Retention};

/// Raw partitions are kept for at least this many days: SDKs may deliver events up to 7
/// days old (`wire::MAX_AGE_MS`), whose partition must still be there.
const MIN_RAW_DAYS: u32 = 8;
/// Days of raw partitions created ahead of today.
const DAYS_AHEAD: i64 = 3;
/// Batch ids are kept two days: the SDK is promised at least one.
const BATCH_IDS_MS: i64 = 2 * DAY_MS;

/// How often and how long.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Between runs.
    pub interval: Duration,
    /// What is kept.
    pub retention: Retention,
}

impl Settings {
    /// From the server's settings.
    pub fn from_config(config: &Config) -> Settings {
        let days = |d: u32| i64::from(d) * DAY_MS;
        Settings {
            interval: Duration::from_secs(config.telemetry_upkeep_secs.max(1)),
            retention: Retention {
                raw_ms: days(config.telemetry_raw_days.max(MIN_RAW_DAYS)),
                hourly_ms: days(config.telemetry_hourly_days.max(1)),
                daily_ms: days(config.telemetry_daily_days.max(1)),
                batch_ids_ms: BATCH_IDS_MS,
            },
        }
    }
}

/// Runs until `shutdown`; the first run is at once, so partitions exist before SDKs report.
pub async fn run(db: Db, settings: Settings, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        // A step that fails (database away) is retried at the next tick.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = run_once(&db, &settings, now_ms()) => {}
        }
    }
    tracing::debug!("telemetry upkeep stopped");
}

/// One pass of every step at `now`.
pub async fn run_once(db: &Db, settings: &Settings, now: i64) {
    let back = settings.retention.raw_ms / DAY_MS;
    if let Err(error) = rollup::create_partitions(db, now, back.min(8), DAYS_AHEAD).await {
        tracing::warn!(%error, "creating telemetry partitions failed");
    }
    match rollup::roll_up(db).await {
        Ok(0) => {}
        Ok(days) => tracing::debug!(days, "rolled telemetry up into daily rows"),
        Err(error) => tracing::warn!(%error, "telemetry rollup failed"),
    }
    match rollup::apply_retention(db, &settings.retention, now).await {
        Ok(removed) if removed.rows > 0 || !removed.partitions.is_empty() => {
            tracing::info!(
                rows = removed.rows,
                partitions = removed.partitions.len(),
                "telemetry retention applied"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "telemetry retention failed"),
    }
}
