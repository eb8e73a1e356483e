//! The compiled form of an environment, [`Snapshot`], and its query API.
//!
//! [`compile`] turns an [`EnvironmentSnapshot`] into this layout, doing all validation once
//! so that evaluation ([`crate::eval`]) cannot fail on a compiled flag. The compiler is a
//! child module so that it can fill the layout's private fields while the rest of the crate
//! only reads them, through [`Store`]'s accessors.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::attribute::AttrRef;
use crate::bucket::SaltedPrefix;
use crate::clause::CompiledClause;
use crate::context::Context;
use crate::error::{CompileError, CompileErrors};
use crate::index::KeyIndex;
use crate::model::{EnvironmentSnapshot, FlagKind};
use crate::reuse::Reuse;

mod compile;

pub use compile::{MAX_KEY_LEN, validate_key};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A compiled environment: every flag and segment, ready to evaluate. Immutable; share it
/// behind an `Arc` and swap in a new one when the environment changes
/// ([`Snapshot::recompile`] reuses every flag the change did not touch).
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) version: u64,
    /// Each flag in its own allocation, with its own [`Store`], so that the next snapshot
    /// can share every flag a change did not touch instead of compiling it again.
    pub(crate) flags: Vec<Arc<CompiledFlag>>,
    pub(crate) index: KeyIndex,
    pub(crate) segments: Arc<[CompiledSegment]>,
    pub(crate) errors: Vec<CompileError>,
    /// Set by [`Snapshot::with_counting`] (`crate::counting`).
    pub(crate) counters: Option<Box<crate::counting::Counters>>,
}

/// A run of items in one of the [`Store`]'s lists, or of bytes of its text.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    start: usize,
    len: usize,
}

impl Span {
    #[inline]
    fn range(self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }

    /// Number of items.
    #[inline]
    pub(crate) fn len(self) -> usize {
        self.len
    }
}

/// What a flag's body is made of, in one list per kind of item: the body refers to its
/// variants, rules, clauses and rollout slices by [`Span`]. Boxing a list per rule and per
/// serve meant ~14 small allocations per flag, half the time of compiling a snapshot; the
/// lists are sized from the flag first, so a flag takes a handful.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Variant keys and rule ids, back to back.
    text: String,
    variant_keys: Vec<Span>,
    values: Vec<Value>,
    rules: Vec<CompiledRule>,
    clauses: Vec<CompiledClause>,
    slices: Vec<(u32, usize)>,
}

impl Store {
    #[inline]
    pub(crate) fn text(&self, span: Span) -> &str {
        &self.text[span.range()]
    }

    /// Key of the `v`th of a flag's `variants`.
    #[inline]
    pub(crate) fn variant_key(&self, variants: Span, v: usize) -> &str {
        self.text(self.variant_keys[variants.start + v])
    }

    /// Value of the `v`th of a flag's `variants`.
    #[inline]
    pub(crate) fn value(&self, variants: Span, v: usize) -> &Value {
        &self.values[variants.start + v]
    }

    #[inline]
    pub(crate) fn rules(&self, span: Span) -> &[CompiledRule] {
        &self.rules[span.range()]
    }

    #[inline]
    pub(crate) fn clauses(&self, span: Span) -> &[CompiledClause] {
        &self.clauses[span.range()]
    }

    #[inline]
    pub(crate) fn slices(&self, span: Span) -> &[(u32, usize)] {
        &self.slices[span.range()]
    }
}

#[derive(Debug)]
pub(crate) struct CompiledFlag {
    pub(crate) kind: FlagKind,
    /// [`crate::model::FlagState::version`], which counts are reported against.
    pub(crate) version: u64,
    /// `None` when the flag failed to compile: it evaluates to an error.
    pub(crate) body: Option<FlagBody>,
}

#[derive(Debug)]
pub(crate) struct FlagBody {
    /// What the spans below refer to.
    pub(crate) store: Store,
    /// The flag's variants in [`Store::variant_key`] and [`Store::value`].
    pub(crate) variants: Span,
    /// The bucketing hash part-way through `salt ++ ":"` (the salt being the flag key
    /// unless set): evaluation only hashes the context's value.
    pub(crate) salt: SaltedPrefix,
    pub(crate) enabled: bool,
    pub(crate) off: usize,
    pub(crate) targets: FastMap<Box<str>, usize>,
    /// (flag index, accepted variant indices of that flag)
    pub(crate) prerequisites: Box<[(usize, Box<[usize]>)]>,
    /// In [`Store::rules`].
    pub(crate) rules: Span,
    /// The commonest targeting, a single rule of a single clause, held here rather than
    /// in the store: evaluating it then reads the flag's own memory instead of following
    /// the body to its rule and the rule to its clause, two dependent loads that were a
    /// fifth of such an evaluation. When set, the rule's clause span in the store is empty
    /// and [`crate::eval`] must use this instead.
    pub(crate) lone_rule: Option<(CompiledClause, CompiledServe)>,
    pub(crate) default: CompiledServe,
    /// The variant every context gets, when that does not depend on the context (the flag
    /// is off, or has no prerequisites, targets or rules and a fixed default): kill
    /// switches and fully rolled-out flags, the commonest kind, skip evaluation entirely
    /// in the value-only calls.
    pub(crate) constant: Option<usize>,
    /// The counting slot of [`FlagBody::constant`] (relative to the flag's base), so the
    /// value-only calls count it without working out why it is constant.
    pub(crate) constant_slot: usize,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    /// In [`Store::text`].
    pub(crate) id: Span,
    /// In [`Store::clauses`].
    pub(crate) clauses: Span,
    pub(crate) serve: CompiledServe,
}

#[derive(Debug, Clone)]
pub(crate) enum CompiledServe {
    Variant(usize),
    /// Slices as (exclusive upper bucket, variant index), zero-weight slices dropped, in
    /// [`Store::slices`].
    Rollout {
        bucket_by: AttrRef,
        slices: Span,
    },
}

#[derive(Debug)]
pub(crate) struct CompiledSegment {
    included: FastSet<Box<str>>,
    excluded: FastSet<Box<str>>,
    rules: Box<[Box<[CompiledClause]>]>,
    /// False when the segment failed to compile or is part of a reference cycle.
    valid: bool,
}

impl CompiledSegment {
    /// Membership; `None` if the segment is invalid (then clauses using it do not match).
    pub(crate) fn contains(&self, ctx: &Context, all: &[CompiledSegment]) -> Option<bool> {
        if !self.valid {
            return None;
        }
        if !ctx.key.is_empty() {
            if self.excluded.contains(ctx.key.as_str()) {
                return Some(false);
            }
            if self.included.contains(ctx.key.as_str()) {
                return Some(true);
            }
        }
        Some(
            self.rules
                .iter()
                .any(|rule| rule.iter().all(|c| c.matches(ctx, all))),
        )
    }
}

impl Snapshot {
    /// Compiles leniently: a flag or segment with errors is kept but evaluates to an error
    /// (`ERROR`/`INVALID_FLAG`) instead of failing the whole environment. This is what SDKs
    /// use, so a newer server's unknown operator breaks one flag, not all of them.
    pub fn compile(env: &EnvironmentSnapshot) -> Snapshot {
        compile::Compiler::default().run(env, None)
    }

    /// [`Snapshot::compile`] of `env`, taking from `previous` (compiled from
    /// `previous_env`) every flag and segment the change between the two did not touch:
    /// what an SDK does on each patch, so applying a change costs what the change
    /// contains, not what the environment holds. Evaluates exactly like
    /// `Snapshot::compile(env)`.
    ///
    /// "Not touched" is by pointer: [`EnvironmentSnapshot::applied`] shares every flag
    /// state a patch does not replace. A flag is compiled again when its state was
    /// replaced, when it has prerequisites (they refer to other flags by position and take
    /// part in cycle checks), or when the segment keys changed; everything is compiled
    /// again when `previous` had errors or was not compiled from `previous_env`.
    pub fn recompile(
        env: &EnvironmentSnapshot,
        previous_env: &EnvironmentSnapshot,
        previous: &Snapshot,
    ) -> Snapshot {
        let snapshot =
            compile::Compiler::default().run(env, Reuse::new(env, previous_env, previous));
        if previous.is_counting() {
            snapshot.with_counting()
        } else {
            snapshot
        }
    }

    /// Compiles and fails on any error. This is what the server uses to validate writes.
    pub fn compile_strict(env: &EnvironmentSnapshot) -> Result<Snapshot, CompileErrors> {
        let snapshot = Self::compile(env);
        if snapshot.errors.is_empty() {
            Ok(snapshot)
        } else {
            Err(CompileErrors(snapshot.errors))
        }
    }

    /// An empty snapshot at version 0.
    pub fn empty() -> Snapshot {
        Self::compile(&EnvironmentSnapshot::default())
    }

    /// The environment version this snapshot was compiled from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Problems found by a lenient [`Snapshot::compile`].
    pub fn errors(&self) -> &[CompileError] {
        &self.errors
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// True if there are no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Flag keys, in snapshot order.
    pub fn flag_keys(&self) -> impl ExactSizeIterator<Item = &str> {
        (0..self.flags.len()).map(|i| self.index.key(i))
    }

    /// The kind of a flag, if it exists.
    pub fn flag_kind(&self, key: &str) -> Option<FlagKind> {
        self.find(key).map(|(_, flag)| flag.kind)
    }

    /// The version of a flag (what telemetry reports against), if it exists.
    pub fn flag_version(&self, key: &str) -> Option<u64> {
        self.find(key).map(|(_, flag)| flag.version)
    }

    /// The flag with this key, and its first counting slot (see [`crate::counting`]).
    #[inline(always)]
    pub(crate) fn find(&self, key: &str) -> Option<(usize, &CompiledFlag)> {
        self.index.find(key)
    }
}
