//! Outcomes of flag-controlled code paths, from [`crate::Client::guard`] and
//! [`crate::Client::shadow`]: per (flag, flag version, variant, kind) the runs, errors,
//! mismatches and a latency histogram ([`flagpole_core::wire::latency`]), added up in
//! memory and drained into each flush's batch as [`OutcomeCount`]s. One entry per
//! identity whatever the number of calls, so memory follows the flags guarded, not the
//! traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use flagpole_core::wire::{OutcomeCount, OutcomeKind, latency};

/// Identity of an outcome: (flag, flag version, variant, kind).
type Id = (String, u64, String, OutcomeKind);

/// One run's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// Finished without error; for a shadow candidate, `mismatch` says whether its
    /// result differed from the current path's.
    Ok { mismatch: bool },
    /// Returned an error (a candidate erring where the current path did not is also a
    /// mismatch).
    Failed { mismatch: bool },
    /// A candidate stopped at its time limit.
    TimedOut,
}

#[derive(Debug, Default)]
struct Sums {
    calls: u64,
    errors: u64,
    mismatches: u64,
    timeouts: u64,
    skipped: u64,
    duration_us: u64,
    latency: Vec<u64>,
}

/// What the helpers recorded since the last drain.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// A std mutex, held for one addition or one swap, never across an await.
    sums: Mutex<HashMap<Id, Sums>>,
}

impl Outcomes {
    fn with(
        &self,
        flag: &str,
        version: u64,
        variant: &str,
        kind: OutcomeKind,
        f: impl FnOnce(&mut Sums),
    ) {
        let mut sums = self.sums.lock().unwrap_or_else(|e| e.into_inner());
        let id = (flag.to_owned(), version, variant.to_owned(), kind);
        f(sums.entry(id).or_default());
    }

    /// One run of `kind`'s path for `variant`, taking `took`.
    pub(crate) fn record(
        &self,
        flag: &str,
        version: u64,
        variant: &str,
        kind: OutcomeKind,
        run: Run,
        took: Duration,
    ) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.with(flag, version, variant, kind, |s| {
            s.calls += 1;
            s.duration_us = s.duration_us.saturating_add(us);
            match run {
                Run::Ok { mismatch } => s.mismatches += u64::from(mismatch),
                Run::Failed { mismatch } => {
                    s.errors += 1;
                    s.mismatches += u64::from(mismatch);
                }
                Run::TimedOut => {
                    s.errors += 1;
                    s.timeouts += 1;
                }
            }
            if s.latency.is_empty() {
                s.latency = vec![0; latency::BUCKETS as usize];
            }
            s.latency[latency::bucket_of(us) as usize] += 1;
        });
    }

    /// A shadow candidate not run: the concurrency bound was full.
    pub(crate) fn skipped(&self, flag: &str, version: u64, variant: &str) {
        self.with(flag, version, variant, OutcomeKind::ShadowNew, |s| {
            s.skipped += 1
        });
    }

    /// Everything recorded since the last drain, as outcomes over `[start_ms, end_ms)`.
    pub(crate) fn drain(&self, start_ms: i64, end_ms: i64) -> Vec<OutcomeCount> {
        let sums = std::mem::take(&mut *self.sums.lock().unwrap_or_else(|e| e.into_inner()));
        sums.into_iter()
            .map(|((flag, flag_version, variant, kind), s)| OutcomeCount {
                flag,
                flag_version,
                variant,
                kind,
                start_ms,
                end_ms,
                calls: s.calls,
                errors: s.errors,
                mismatches: s.mismatches,
                timeouts: s.timeouts,
                skipped: s.skipped,
                duration_us: s.duration_us,
                latency: (0u32..).zip(s.latency).filter(|(_, n)| *n > 0).collect(),
            })
            .collect()
    }
}

/// Same (flag, flag version, variant, kind): the outbox adds them into one.
pub(crate) fn same_identity(a: &OutcomeCount, b: &OutcomeCount) -> bool {
    a.flag == b.flag
        && a.flag_version == b.flag_version
        && a.variant == b.variant
        && a.kind == b.kind
}

/// Adds `add` into `into` (same identity), widening the window and the histogram.
pub(crate) fn merge(into: &mut OutcomeCount, add: &OutcomeCount) {
    into.start_ms = into.start_ms.min(add.start_ms);
    into.end_ms = into.end_ms.max(add.end_ms);
    into.calls += add.calls;
    into.errors += add.errors;
    into.mismatches += add.mismatches;
    into.timeouts += add.timeouts;
    into.skipped += add.skipped;
    into.duration_us = into.duration_us.saturating_add(add.duration_us);
    let mut buckets: std::collections::BTreeMap<u32, u64> = into.latency.drain(..).collect();
    for &(b, n) in &add.latency {
        *buckets.entry(b).or_default() += n;
    }
    into.latency = buckets.into_iter().collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_add_up_per_identity_and_drain_once() {
        let o = Outcomes::default();
        for i in 0..100u64 {
            let run = if i % 10 == 0 {
                Run::Failed { mismatch: false }
            } else {
                Run::Ok {
                    mismatch: i % 4 == 0,
                }
            };
            o.record(
                "f",
                3,
                "on",
                OutcomeKind::ShadowNew,
                run,
                Duration::from_micros(1000 + i),
            );
        }
        o.record(
            "f",
            3,
            "on",
            OutcomeKind::ShadowNew,
            Run::TimedOut,
            Duration::from_millis(50),
        );
        o.skipped("f", 3, "on");
        o.record(
            "f",
            3,
            "off",
            OutcomeKind::Guard,
            Run::Ok { mismatch: false },
            Duration::from_millis(2),
        );
        let mut drained = o.drain(10, 20);
        drained.sort_by(|a, b| a.variant.cmp(&b.variant));
        assert_eq!(drained.len(), 2);
        let on = &drained[1];
        assert_eq!(
            (on.calls, on.errors, on.timeouts, on.skipped),
            (101, 11, 1, 1)
        );
        // i % 4 == 0 and i % 10 != 0 among 0..100: 25 - 5.
        assert_eq!(on.mismatches, 20);
        assert_eq!(on.latency.iter().map(|(_, n)| n).sum::<u64>(), 101);
        assert_eq!(on.duration_us, (1000..1100).sum::<u64>() + 50_000);
        let batch = flagpole_core::wire::TelemetryBatch {
            id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
            outcomes: drained.clone(),
            ..Default::default()
        };
        assert_eq!(batch.validate(15), Ok(()));
        assert!(o.drain(20, 30).is_empty());

        let mut held = drained[1].clone();
        merge(&mut held, &drained[1]);
        assert_eq!(held.calls, 202);
        assert_eq!(held.latency.iter().map(|(_, n)| n).sum::<u64>(), 202);
    }
}
