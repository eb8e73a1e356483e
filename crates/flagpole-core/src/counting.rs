//! Evaluation counting: how often each flag gave each outcome, per snapshot, cheaply
//! enough to stay on for every evaluation (docs/protocol.md, "Telemetry").
//!
//! Layout. [`Snapshot::with_counting`] gives every flag a range of slots, one per
//! (variant × outcome) plus its error slots, so that an evaluation names its slot with an
//! addition and a multiplication: see [`outcome_slot`]. The flag's first slot (its
//! *base*) is kept in the snapshot's key index next to the flag, so finding the flag finds
//! it too. Compiled flags are shared between snapshots; bases are not, which is why they
//! live in the per-snapshot index and not in the flag.
//!
//! Counters. Each slot has one cell per stripe; a stripe is owned by one thread at a time
//! ([`stripe`]), so the owner increments with a plain load and store: no lock, no locked
//! instruction, no cache line written by two threads. Stripes are allocated the first time
//! a thread counts on a snapshot, so a snapshot costs memory for the threads that use it,
//! not for every thread that might.
//!
//! Draining ([`drain`]) sums the stripes; since each cell only grows, the drainer keeps
//! the sums it reported last time and emits the difference.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::eval::ErrorKind;
use crate::snapshot::{CompiledFlag, Snapshot};

mod drain;
mod stripe;

/// Distinct unknown flag keys counted per drain window; more are counted together under
/// [`UNKNOWN_FLAGS_OVERFLOW`], so a client asking for made-up keys cannot grow the counts
/// (or the server's rows) without bound.
pub const MAX_UNKNOWN_FLAGS: usize = 100;

/// The flag key under which evaluations of unknown flags are counted once
/// [`MAX_UNKNOWN_FLAGS`] distinct keys were counted in a window, and evaluations of keys
/// that no flag could have (empty, too long, bad characters). `#` is not allowed in flag
/// keys, so it cannot name a real flag.
pub const UNKNOWN_FLAGS_OVERFLOW: &str = "#other";

/// Error slots at the start of every flag's range, in this order.
const INVALID_FLAG: usize = 0;
const WRONG_TYPE: usize = 1;
const MISSING_BUCKET_KEY: usize = 2;
const ERROR_SLOTS: usize = 3;

/// Outcomes of an evaluation that served a variant; rule `i` is `RULES + i`.
pub(crate) const OFF: usize = 0;
pub(crate) const TARGET: usize = 1;
pub(crate) const PREREQUISITE: usize = 2;
pub(crate) const FALLTHROUGH: usize = 3;
pub(crate) const RULES: usize = 4;

/// Unused cells before a flag's first slot and after the last, so that no two stripes
/// (nor a stripe and other heap data) share a cache line.
const PAD: usize = 8;

/// The slot (relative to the flag's base) of serving variant `v` of a flag with
/// `variants` variants, for `outcome`.
#[inline(always)]
pub(crate) fn outcome_slot(variants: usize, outcome: usize, v: usize) -> usize {
    ERROR_SLOTS + outcome * variants + v
}

/// The slot (relative to the flag's base) of an error.
#[inline(always)]
pub(crate) fn error_slot(error: ErrorKind) -> usize {
    match error {
        ErrorKind::WrongType => WRONG_TYPE,
        ErrorKind::MissingBucketKey => MISSING_BUCKET_KEY,
        // Not found and not ready have no flag, hence no slot; the callers never pass them.
        _ => INVALID_FLAG,
    }
}

/// How many slots a flag takes.
fn flag_slots(flag: &CompiledFlag) -> usize {
    match &flag.body {
        Some(body) => {
            let outcomes = RULES + body.store.rules(body.rules).len();
            ERROR_SLOTS + outcomes * body.variants.len()
        }
        None => ERROR_SLOTS,
    }
}

/// A counting snapshot's counters.
pub(crate) struct Counters {
    /// Cells per stripe: every flag's slots and the padding.
    len: usize,
    /// Indexed by [`stripe::current`]; each written by the one thread that owns the stripe.
    /// An array rather than a slice, so that checking the index costs no load.
    stripes: [OnceLock<Box<[AtomicU64]>>; stripe::EXCLUSIVE],
    /// Written with `fetch_add` by every thread that has no exclusive stripe.
    shared: OnceLock<Box<[AtomicU64]>>,
    /// Per slot, the sum of the exclusive stripes' cells at the last drain.
    reported: Mutex<Vec<u64>>,
    unknown: Mutex<Unknown>,
}

/// Evaluations of keys the snapshot has no flag for, since the last drain.
#[derive(Debug, Default)]
struct Unknown {
    keys: HashMap<Box<str>, u64>,
    overflow: u64,
}

/// Not derived: that would print every cell of every stripe.
impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("slots", &self.len)
            .field(
                "stripes_in_use",
                &self.stripes.iter().filter(|s| s.get().is_some()).count(),
            )
            .field("shared_in_use", &self.shared.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Counters {
    fn new(len: usize) -> Counters {
        Counters {
            len,
            stripes: std::array::from_fn(|_| OnceLock::new()),
            shared: OnceLock::new(),
            reported: Mutex::default(),
            unknown: Mutex::default(),
        }
    }

    /// Counts one evaluation in `slot` (a base plus a relative slot).
    #[inline(always)]
    pub(crate) fn add(&self, slot: usize) {
        let s = stripe::current();
        match self.stripes.get(s).and_then(OnceLock::get) {
            Some(cells) => {
                // This thread is the stripe's only writer: no read-modify-write needed,
                // and a drain reading concurrently sees the cell before or after.
                let cell = &cells[slot];
                cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            None => self.add_first(s, slot),
        }
    }

    /// [`Counters::add`] for a thread without a stripe yet, one whose stripe has no cells
    /// in this snapshot yet, or one on the shared stripe.
    #[cold]
    #[inline(never)]
    fn add_first(&self, s: usize, slot: usize) {
        let s = if s == stripe::UNASSIGNED {
            stripe::claim()
        } else {
            s
        };
        match self.stripes.get(s) {
            Some(lock) => {
                let cell = &lock.get_or_init(|| self.cells())[slot];
                cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            None => {
                self.shared.get_or_init(|| self.cells())[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn cells(&self) -> Box<[AtomicU64]> {
        (0..self.len).map(|_| AtomicU64::new(0)).collect()
    }

    /// Counts an evaluation of a key the snapshot has no flag for.
    #[cold]
    #[inline(never)]
    pub(crate) fn add_unknown(&self, key: &str) {
        let mut unknown = self.unknown.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = unknown.keys.get_mut(key) {
            *n += 1;
        } else if unknown.keys.len() < MAX_UNKNOWN_FLAGS && crate::validate_key(key).is_ok() {
            unknown.keys.insert(key.into(), 1);
        } else {
            unknown.overflow += 1;
        }
    }
}

impl Snapshot {
    /// This snapshot, counting every evaluation from now on, per flag, variant, reason
    /// (and rule) and flag version: see [`Snapshot::drain_counts`]. Evaluating a counting
    /// snapshot allocates nothing, except once per thread and snapshot (the thread's
    /// counters: 8 bytes per slot, a slot per variant and outcome of each flag) and for a
    /// new unknown flag key.
    ///
    /// [`Snapshot::recompile`] of a counting snapshot counts too: the new snapshot has its
    /// own counters, starting at zero. Calling this on a snapshot that counts already
    /// changes nothing.
    pub fn with_counting(mut self) -> Snapshot {
        if self.is_counting() {
            return self;
        }
        let mut bases = Vec::with_capacity(self.flags.len());
        let mut next = PAD;
        for flag in &self.flags {
            bases.push(next);
            next += flag_slots(flag);
        }
        self.index.set_bases(&bases);
        self.counters = Some(Box::new(Counters::new(next + PAD)));
        self
    }

    /// True if this snapshot counts evaluations ([`Snapshot::with_counting`]).
    pub fn is_counting(&self) -> bool {
        self.counters.is_some()
    }

    /// Counts an evaluation in `slot`, when counting.
    #[inline(always)]
    pub(crate) fn count(&self, slot: usize) {
        if let Some(counters) = &self.counters {
            counters.add(slot);
        }
    }

    /// Counts an evaluation of an unknown flag, when counting.
    #[inline(always)]
    pub(crate) fn count_unknown(&self, key: &str) {
        if let Some(counters) = &self.counters {
            counters.add_unknown(key);
        }
    }
}
