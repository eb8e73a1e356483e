//! Incremental compilation: what a new [`Snapshot`] may take from the one compiled before
//! it, so that an SDK applying a patch compiles what the patch changed rather than the
//! whole environment (with 100 flags, compiling all of them was most of an SDK's CPU per
//! change).
//!
//! A compiled flag depends on its own state, on the positions of the segments its
//! clauses name, and, through prerequisites, on other flags' positions and variants and
//! on the prerequisite graph. Flags and segments are shared between versions of an
//! environment by `Arc` ([`EnvironmentSnapshot::applied`] replaces only what a patch
//! carries), so "unchanged" is a pointer comparison.

use std::sync::Arc;

use crate::index::KeyIndex;
use crate::model::{EnvironmentSnapshot, FlagState};
use crate::snapshot::{CompiledFlag, CompiledSegment, Snapshot};

/// The previous environment and its snapshot, with what the new environment keeps of
/// their layout.
pub(crate) struct Reuse<'a> {
    previous_env: &'a EnvironmentSnapshot,
    previous: &'a Snapshot,
    /// The same flag keys at the same positions: the key index can be copied, and flag
    /// `i` can only have come from flag `i`.
    same_flag_keys: bool,
}

impl<'a> Reuse<'a> {
    /// `None` when nothing can be reused: `previous` was not compiled from
    /// `previous_env`, had errors (a lenient snapshot with errors is rare and not worth
    /// tracking errors per flag for), or the segment keys changed (clauses refer to
    /// segments by position).
    pub(crate) fn new(
        env: &EnvironmentSnapshot,
        previous_env: &'a EnvironmentSnapshot,
        previous: &'a Snapshot,
    ) -> Option<Reuse<'a>> {
        let compiled_from = previous.version == previous_env.version
            && previous.flags.len() == previous_env.flags.len()
            && previous.segments.len() == previous_env.segments.len();
        if !compiled_from || !previous.errors.is_empty() {
            return None;
        }
        let same_segment_keys = same_keys(&env.segments, &previous_env.segments, |s| &s.key);
        if !same_segment_keys {
            return None;
        }
        Some(Reuse {
            previous_env,
            previous,
            same_flag_keys: same_keys(&env.flags, &previous_env.flags, |f| &f.flag.key),
        })
    }

    /// The previous compiled segments, if `env` holds the very same segments.
    pub(crate) fn segments(&self, env: &EnvironmentSnapshot) -> Option<Arc<[CompiledSegment]>> {
        let same = env.segments.len() == self.previous_env.segments.len()
            && env
                .segments
                .iter()
                .zip(&self.previous_env.segments)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        same.then(|| Arc::clone(&self.previous.segments))
    }

    /// A copy of the previous key index, if the flag keys are the same in the same order.
    pub(crate) fn index(&self) -> Option<KeyIndex> {
        self.same_flag_keys.then(|| self.previous.index.detached())
    }

    /// The previous compiled form of flag `i` of the new environment (`state`), if it can
    /// stand: the very same state, not a duplicate key now, and no prerequisites.
    ///
    /// Reads as little of the flag as it can: in a process holding many environments (a
    /// load test's fleet of SDKs) every flag state is a cache miss, and reading each
    /// flag's key and prerequisites was most of the cost of applying a one-flag patch to
    /// an environment of 100.
    pub(crate) fn flag(
        &self,
        i: usize,
        state: &Arc<FlagState>,
        index: &KeyIndex,
    ) -> Option<Arc<CompiledFlag>> {
        // Same keys at the same positions as a snapshot without errors: no duplicates.
        let j = if self.same_flag_keys {
            i
        } else {
            let key = &state.flag.key;
            if index.get(key) != Some(i) {
                return None;
            }
            self.previous.index.get(key)?
        };
        if !Arc::ptr_eq(&self.previous_env.flags[j], state) {
            return None;
        }
        let compiled = &self.previous.flags[j];
        let body = compiled.body.as_ref()?;
        body.prerequisites.is_empty().then(|| Arc::clone(compiled))
    }
}

/// Same length and the same key at every position (pointer-equal items need no string
/// comparison).
fn same_keys<T>(a: &[Arc<T>], b: &[Arc<T>], key: impl Fn(&T) -> &String) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| Arc::ptr_eq(x, y) || key(x) == key(y))
}
