//! Reading a snapshot's counters out as [`EvalCount`]s.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{
    Counters, ERROR_SLOTS, FALLTHROUGH, INVALID_FLAG, MISSING_BUCKET_KEY, OFF, PAD, PREREQUISITE,
    RULES, TARGET, UNKNOWN_FLAGS_OVERFLOW, WRONG_TYPE, flag_slots,
};
use crate::eval::{ErrorKind, Reason};
use crate::snapshot::{CompiledFlag, Snapshot};
use crate::wire::EvalCount;

impl Snapshot {
    /// Appends to `out` what was counted since the last drain, one [`EvalCount`] per
    /// (flag, variant, reason and rule, error) that was evaluated at least once, all with
    /// the window `[start_ms, end_ms)` and the flag's version. Returns how many were
    /// appended; 0 when the snapshot is not counting ([`Snapshot::with_counting`]).
    ///
    /// Safe to call while other threads evaluate: an evaluation is reported by exactly
    /// one drain, this one or a later one. Drains of one snapshot run one at a time.
    ///
    /// **Retiring a snapshot.** When a new snapshot replaces this one, evaluations that
    /// started on this one may still be running. The caller keeps the old `Arc<Snapshot>`
    /// and drains it on every harvest until it is the last holder
    /// (`Arc::strong_count(&old) == 1`): from then on nobody can evaluate on it, so one
    /// more drain reports its last counts and it can be dropped.
    pub fn drain_counts(&self, start_ms: i64, end_ms: i64, out: &mut Vec<EvalCount>) -> usize {
        let Some(counters) = &self.counters else {
            return 0;
        };
        let before = out.len();
        let mut emit = |flag: &str, version: u64, outcome: Outcome<'_>, count: u64| {
            let (reason, variant, rule, error) = outcome.fields();
            out.push(EvalCount {
                flag: flag.to_owned(),
                flag_version: version,
                variant: variant.map(str::to_owned),
                reason: reason.to_owned(),
                rule,
                error: error.map(|e| e.code().to_owned()),
                start_ms,
                end_ms,
                count,
            });
        };
        let counts = counters.take();
        let mut base = PAD;
        for (i, flag) in self.flags.iter().enumerate() {
            let slots = flag_slots(flag);
            for (rel, &count) in counts[base..base + slots].iter().enumerate() {
                if count > 0 {
                    emit(self.index.key(i), flag.version, outcome(flag, rel), count);
                }
            }
            base += slots;
        }
        let (unknown, overflow) = counters.take_unknown();
        for (key, count) in unknown {
            emit(&key, 0, Outcome::Error(ErrorKind::FlagNotFound), count);
        }
        if overflow > 0 {
            emit(
                UNKNOWN_FLAGS_OVERFLOW,
                0,
                Outcome::Error(ErrorKind::FlagNotFound),
                overflow,
            );
        }
        out.len() - before
    }
}

impl Counters {
    /// Every slot's count since the last call.
    fn take(&self) -> Vec<u64> {
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        reported.resize(self.len, 0);
        let mut sums = vec![0u64; self.len];
        for cells in self.stripes.iter().filter_map(|s| s.get()) {
            for (sum, cell) in sums.iter_mut().zip(cells.iter()) {
                *sum += cell.load(Ordering::Relaxed);
            }
        }
        // Each exclusive cell only grows (one writer, no reset), so the sum does too: the
        // new counts are the difference from the sum reported last time.
        let mut counts = vec![0u64; self.len];
        for ((count, sum), last) in counts.iter_mut().zip(&sums).zip(reported.iter_mut()) {
            *count = sum - *last;
            *last = *sum;
        }
        // The shared stripe has many writers and no such history: take its counts by
        // swapping zero in, so that an increment lands before the swap or after it.
        if let Some(cells) = self.shared.get() {
            for (count, cell) in counts.iter_mut().zip(cells.iter()) {
                *count += cell.swap(0, Ordering::Relaxed);
            }
        }
        counts
    }

    fn take_unknown(&self) -> (Vec<(Box<str>, u64)>, u64) {
        let mut unknown = self.unknown.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = std::mem::take(&mut unknown.keys).into_iter().collect();
        (keys, std::mem::take(&mut unknown.overflow))
    }
}

/// What a slot counts, decoded from its place in the flag's range.
enum Outcome<'s> {
    Error(ErrorKind),
    Served {
        variant: &'s str,
        reason: Reason<'static>,
        rule: Option<String>,
    },
}

impl<'s> Outcome<'s> {
    /// (reason code, variant, rule, error).
    fn fields(
        self,
    ) -> (
        &'static str,
        Option<&'s str>,
        Option<String>,
        Option<ErrorKind>,
    ) {
        match self {
            Outcome::Error(error) => ("ERROR", None, None, Some(error)),
            Outcome::Served {
                variant,
                reason,
                rule,
            } => (reason.code(), Some(variant), rule, None),
        }
    }
}

/// The outcome counted in slot `rel` of `flag`'s range (the inverse of
/// [`super::outcome_slot`] and [`super::error_slot`]).
fn outcome(flag: &CompiledFlag, rel: usize) -> Outcome<'_> {
    let body = match (rel, &flag.body) {
        (INVALID_FLAG, _) | (_, None) => return Outcome::Error(ErrorKind::InvalidFlag),
        (WRONG_TYPE, _) => return Outcome::Error(ErrorKind::WrongType),
        (MISSING_BUCKET_KEY, _) => return Outcome::Error(ErrorKind::MissingBucketKey),
        (_, Some(body)) => body,
    };
    let variants = body.variants.len();
    let (kind, v) = (
        (rel - ERROR_SLOTS) / variants,
        (rel - ERROR_SLOTS) % variants,
    );
    // Only the reason's code is reported; the fields filled in here are placeholders.
    let (reason, rule) = match kind {
        OFF => (Reason::Off, None),
        TARGET => (Reason::TargetMatch, None),
        PREREQUISITE => (Reason::PrerequisiteFailed { prerequisite: "" }, None),
        FALLTHROUGH => (Reason::Fallthrough { in_rollout: false }, None),
        _ => {
            let i = kind - RULES;
            let id = body.store.text(body.store.rules(body.rules)[i].id);
            let rule = if id.is_empty() {
                format!("#{i}")
            } else {
                id.to_owned()
            };
            let reason = Reason::RuleMatch {
                rule_index: i,
                rule_id: "",
                in_rollout: false,
            };
            (reason, Some(rule))
        }
    };
    Outcome::Served {
        variant: body.store.variant_key(body.variants, v),
        reason,
        rule,
    }
}
