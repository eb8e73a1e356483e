//! What a group of batches writes: counters added up across every new batch of the group
//! (one row per distinct key, however many SDKs sent it), exposures and events as rows,
//! applications added up. The caps ([`super::caps`]) apply here.

use std::collections::HashMap;
use std::sync::Arc;

use flagpole_core::wire::TelemetryBatch;

use super::caps::{Caps, OTHER};
use crate::snapshots::CompiledEnvironment;
use crate::store::ingest::{
    AppAdd, AppKey, CountAdd, CountKey, EventRow, ExposureRow, HOUR_MS, Rows,
};
use crate::store::outcomes::{self, OutcomeAdd, OutcomeKey};

/// One batch of the group, with its environment.
pub(crate) struct Entry<'a> {
    pub(crate) environment_id: i64,
    pub(crate) batch: &'a TelemetryBatch,
}

/// The rows of the entries marked `fresh` (not stored before). `known` holds the compiled
/// environments the flag keys are checked against; an environment missing from it (it
/// could not be loaded) has every key taken as known.
pub(crate) fn rows(
    entries: &[Entry<'_>],
    fresh: &[bool],
    known: &HashMap<i64, Arc<CompiledEnvironment>>,
    caps: &mut Caps,
) -> Rows {
    let mut counts: HashMap<CountKey, CountAdd> = HashMap::new();
    let mut apps: HashMap<AppKey, AppAdd> = HashMap::new();
    let mut outcomes: HashMap<OutcomeKey, OutcomeAdd> = HashMap::new();
    let mut rows = Rows::default();
    for (entry, _) in entries.iter().zip(fresh).filter(|(_, fresh)| **fresh) {
        let env = entry.environment_id;
        let batch = entry.batch;
        let is_known = |key: &str| {
            known
                .get(&env)
                .is_none_or(|c| c.snapshot.flag_kind(key).is_some())
        };
        let mut evaluations: i64 = 0;
        let mut dropped = i64::try_from(batch.dropped).unwrap_or(i64::MAX);
        for c in &batch.counts {
            let flag_key = if is_known(&c.flag) || caps.admit_unknown_flag(env, &c.flag) {
                c.flag.clone()
            } else {
                OTHER.to_owned()
            };
            let n = i64::try_from(c.count).unwrap_or(i64::MAX);
            evaluations = evaluations.saturating_add(n);
            let key = CountKey {
                environment_id: env,
                flag_key,
                flag_version: i64::try_from(c.flag_version).unwrap_or(i64::MAX),
                variant: c.variant.clone().unwrap_or_default(),
                reason: c.reason.clone(),
                rule: c.rule.clone().unwrap_or_default(),
                error: c.error.clone().unwrap_or_default(),
                // A window belongs to the hour it starts in (SDK windows are seconds long).
                hour: c.start_ms - c.start_ms.rem_euclid(HOUR_MS),
            };
            let add = counts.entry(key).or_default();
            add.n = add.n.saturating_add(n);
            add.last_at = add.last_at.max(c.end_ms);
        }
        for e in &batch.exposures {
            if !is_known(&e.flag) && !caps.admit_unknown_flag(env, &e.flag) {
                dropped = dropped.saturating_add(1);
                continue;
            }
            rows.exposures.push(ExposureRow {
                environment_id: env,
                flag_key: e.flag.clone(),
                flag_version: i64::try_from(e.flag_version).unwrap_or(i64::MAX),
                variant: e.variant.clone(),
                context_key: e.context_key.clone(),
                at_ms: e.at_ms,
            });
        }
        for e in &batch.events {
            rows.events.push(EventRow {
                environment_id: env,
                name: e.name.clone(),
                context_key: e.context_key.clone(),
                value: e.value,
                properties: serde_json::Value::Object(e.properties.clone()).to_string(),
                at_ms: e.at_ms,
            });
        }
        let mut app = AppKey {
            environment_id: env,
            app: batch.app.clone(),
            app_version: batch.app_version.clone(),
            sdk: batch.sdk.clone(),
        };
        if !caps.admit_app(&app) {
            app = AppKey {
                environment_id: env,
                app: OTHER.to_owned(),
                app_version: String::new(),
                sdk: String::new(),
            };
        }
        let add = apps.entry(app).or_default();
        add.batches += 1;
        add.evaluations = add.evaluations.saturating_add(evaluations);
        add.dropped = add.dropped.saturating_add(dropped);
        add_outcomes(&mut outcomes, env, batch, &is_known, caps);
    }
    rows.counts = counts.into_iter().collect();
    // A stable order: concurrent writers (replicas) then lock rows in the same order and
    // cannot deadlock on each other's upserts.
    rows.counts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows.apps = apps.into_iter().collect();
    rows.apps.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows.outcomes = outcomes.into_iter().collect();
    rows.outcomes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Adds a batch's outcomes into `into`, one entry per (flag, version, variant, kind, hour).
fn add_outcomes(
    into: &mut HashMap<OutcomeKey, OutcomeAdd>,
    env: i64,
    batch: &TelemetryBatch,
    is_known: &dyn Fn(&str) -> bool,
    caps: &mut Caps,
) {
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    for o in &batch.outcomes {
        let flag_key = if is_known(&o.flag) || caps.admit_unknown_flag(env, &o.flag) {
            o.flag.clone()
        } else {
            OTHER.to_owned()
        };
        let key = OutcomeKey {
            environment_id: env,
            flag_key,
            flag_version: int(o.flag_version),
            variant: o.variant.clone(),
            kind: o.kind.as_str().to_owned(),
            hour: outcomes::hour_of(o.start_ms),
        };
        let add = into.entry(key).or_default();
        add.calls = add.calls.saturating_add(int(o.calls));
        add.errors = add.errors.saturating_add(int(o.errors));
        add.mismatches = add.mismatches.saturating_add(int(o.mismatches));
        add.timeouts = add.timeouts.saturating_add(int(o.timeouts));
        add.skipped = add.skipped.saturating_add(int(o.skipped));
        add.duration_us = add.duration_us.saturating_add(int(o.duration_us));
        add.last_at = add.last_at.max(o.end_ms);
        for &(bucket, n) in &o.latency {
            let slot = add.latency.entry(bucket).or_default();
            *slot = slot.saturating_add(int(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagpole_core::wire::EvalCount;

    fn batch(counts: &[(&str, &str, u64)]) -> TelemetryBatch {
        TelemetryBatch {
            id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
            sdk: "flagpole-rust/0.1.0".into(),
            counts: counts
                .iter()
                .map(|(flag, variant, count)| EvalCount {
                    flag: (*flag).into(),
                    variant: Some((*variant).into()),
                    reason: "FALLTHROUGH".into(),
                    start_ms: 7_200_000 + 5,
                    end_ms: 7_200_000 + 10_005,
                    count: *count,
                    ..EvalCount::default()
                })
                .collect(),
            ..TelemetryBatch::default()
        }
    }

    #[test]
    fn counters_of_a_group_add_up_into_one_row_per_key_and_skip_repeats() {
        let a = batch(&[("f", "on", 3), ("f", "off", 1)]);
        let b = batch(&[("f", "on", 4)]);
        let c = batch(&[("f", "on", 100)]);
        let entries = [
            Entry {
                environment_id: 1,
                batch: &a,
            },
            Entry {
                environment_id: 1,
                batch: &b,
            },
            Entry {
                environment_id: 1,
                batch: &c,
            },
        ];
        let rows = rows(
            &entries,
            &[true, true, false],
            &HashMap::new(),
            &mut Caps::new(10),
        );
        let on: Vec<_> = rows
            .counts
            .iter()
            .filter(|(k, _)| k.variant == "on")
            .collect();
        assert_eq!(on.len(), 1);
        assert_eq!(on[0].1.n, 7);
        assert_eq!(on[0].0.hour, 7_200_000);
        assert_eq!(rows.counts.len(), 2);
        assert_eq!(rows.apps.len(), 1);
        assert_eq!(rows.apps[0].1.batches, 2);
        assert_eq!(rows.apps[0].1.evaluations, 8);
    }
}
