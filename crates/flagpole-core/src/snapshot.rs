//! Compilation of an [`EnvironmentSnapshot`] into a [`Snapshot`] that evaluates.
//!
//! All validation happens here, once, so that evaluation cannot fail on a compiled flag:
//! variants referenced exist, weights sum to 100%, regexes and versions parse, prerequisite
//! and segment graphs are acyclic. Evaluation itself lives in [`crate::eval`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::attribute::{AttrRef, Names};
use crate::bucket::SaltedPrefix;
use crate::clause::{self, CompiledClause};
use crate::context::Context;
use crate::error::{CompileError, CompileErrors, Path, Sink, Subject};
use crate::index::KeyIndex;
use crate::model::{
    EnvironmentSnapshot, FlagKind, FlagState, Segment, Serve, TOTAL_WEIGHT, Variant,
};
use crate::reuse::Reuse;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Up to this many items (variants of a flag, rules, weights), compilation finds keys and
/// duplicates by scanning: cheaper than allocating and filling a hash set for each flag.
const LINEAR_MAX: usize = 16;

/// Longest key accepted for flags and segments.
pub const MAX_KEY_LEN: usize = 200;

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
    /// Empty lists with exactly the room `state` needs (rollout slices counted with their
    /// zero weights, which are dropped), except clauses: those are compiled into the
    /// compiler's scratch list and copied out (see [`Compiler::clauses`]). A flag costs one
    /// allocation per list it uses, and a list it does not use costs none.
    fn for_flag(state: &FlagState) -> Store {
        let (variants, rules) = (&state.flag.variants, &state.config.rules);
        let weights = |serve: &Serve| match serve {
            Serve::Rollout(r) => r.weights.len(),
            Serve::Variant(_) => 0,
        };
        let text = variants.iter().map(|v| v.key.len()).sum::<usize>()
            + rules.iter().map(|r| r.id.len()).sum::<usize>();
        let slices = rules.iter().map(|r| weights(&r.serve)).sum::<usize>()
            + weights(&state.config.default_serve);
        Store {
            text: String::with_capacity(text),
            variant_keys: Vec::with_capacity(variants.len()),
            values: Vec::with_capacity(variants.len()),
            rules: Vec::with_capacity(rules.len()),
            clauses: Vec::new(),
            slices: Vec::with_capacity(slices),
        }
    }

    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span {
            start,
            len: s.len(),
        }
    }

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
        Compiler::default().run(env, None)
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
        Compiler::default().run(env, Reuse::new(env, previous_env, previous))
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

    /// The flag with this key, and its position.
    #[inline(always)]
    pub(crate) fn find(&self, key: &str) -> Option<(usize, &CompiledFlag)> {
        self.index.find(key)
    }
}

/// Checks a flag or segment key: non-empty, short, and URL/SDK friendly.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("must be at most {MAX_KEY_LEN} bytes"));
    }
    if !key.bytes().all(|b| KEY_BYTES[usize::from(b)]) {
        return Err("may contain only ASCII letters, digits, `-`, `_` and `.`".into());
    }
    Ok(())
}

/// The bytes allowed in keys, as a table: every flag key is checked on every compile.
const KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
        b += 1;
    }
    table
};

#[derive(Default)]
struct Compiler {
    errors: Vec<CompileError>,
    /// The store of the flag being compiled.
    store: Store,
    /// Scratch for the clauses of the flag being compiled, kept from flag to flag: a flag
    /// whose only rule has one clause keeps it in its body (`FlagBody::lone_rule`), so
    /// its store's clause list stays empty and allocates nothing.
    clauses: Vec<CompiledClause>,
    names: Names,
}

impl Compiler {
    fn run(mut self, env: &EnvironmentSnapshot, reuse: Option<Reuse<'_>>) -> Snapshot {
        let segment_index = first_index(env.segments.iter().map(|s| s.key.as_str()));
        let segments = match reuse.as_ref().and_then(|r| r.segments(env)) {
            Some(segments) => segments,
            None => self.segments(env, &segment_index).into(),
        };

        // Built first: compilation resolves prerequisites and duplicates through it, and
        // the snapshot keeps it for evaluation.
        let index = match reuse.as_ref().and_then(Reuse::index) {
            Some(index) => index,
            None => KeyIndex::new(env.flags.iter().map(|f| f.flag.key.as_str())),
        };
        let mut flags: Vec<Arc<CompiledFlag>> = env
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if let Some(compiled) = reuse.as_ref().and_then(|r| r.flag(i, f, &index)) {
                    return compiled;
                }
                let unique = index.get(&f.flag.key) == Some(i);
                Arc::new(self.flag(f, unique, &index, env, &segment_index))
            })
            .collect();
        self.break_prerequisite_cycles(env, &mut flags);
        // After the cycle check, which may replace flags.
        let mut index = index;
        index.attach(&flags);

        Snapshot {
            version: env.version,
            flags,
            index,
            segments,
            errors: self.errors,
        }
    }

    fn segments(
        &mut self,
        env: &EnvironmentSnapshot,
        segment_index: &HashMap<&str, usize>,
    ) -> Vec<CompiledSegment> {
        let mut segments: Vec<CompiledSegment> = env
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                self.segment(
                    s,
                    segment_index.get(s.key.as_str()) == Some(&i),
                    segment_index,
                )
            })
            .collect();
        self.break_segment_cycles(env, &mut segments);
        segments
    }

    fn segment(
        &mut self,
        s: &Segment,
        unique: bool,
        segment_index: &HashMap<&str, usize>,
    ) -> CompiledSegment {
        let mut sink = Sink::segment(&s.key, &mut self.errors);
        if let Err(msg) = validate_key(&s.key) {
            sink.push("key", msg);
        } else if !unique {
            sink.push("key", "duplicate segment key");
        }
        let mut rules = Vec::with_capacity(s.rules.len());
        for (ri, rule) in s.rules.iter().enumerate() {
            let mut clauses = Vec::with_capacity(rule.clauses.len());
            compile_clauses(
                &rule.clauses,
                &Path::root_at("rules", ri),
                segment_index,
                &mut self.names,
                &mut sink,
                &mut clauses,
            );
            rules.push(clauses.into_boxed_slice());
        }
        let valid = sink.is_clean();
        CompiledSegment {
            included: s.included.iter().map(|k| k.as_str().into()).collect(),
            excluded: s.excluded.iter().map(|k| k.as_str().into()).collect(),
            rules: rules.into(),
            valid,
        }
    }

    fn flag(
        &mut self,
        state: &FlagState,
        unique: bool,
        flag_index: &KeyIndex,
        env: &EnvironmentSnapshot,
        segment_index: &HashMap<&str, usize>,
    ) -> CompiledFlag {
        let (flag, config) = (&state.flag, &state.config);
        self.store = Store::for_flag(state);
        self.clauses.clear();
        let mut sink = Sink::flag(&flag.key, &mut self.errors);

        if let Err(msg) = validate_key(&flag.key) {
            sink.push("flag.key", msg);
        } else if !unique {
            sink.push("flag.key", "duplicate flag key");
        }
        if flag.variants.is_empty() {
            sink.push("flag.variants", "a flag needs at least one variant");
        }
        let variant_index = VariantIndex::new(&flag.variants);
        for (i, v) in flag.variants.iter().enumerate() {
            if v.key.is_empty() {
                sink.push(format!("flag.variants[{i}].key"), "must not be empty");
            } else if variant_index.get(&v.key) != Some(i) {
                sink.push(
                    format!("flag.variants[{i}].key"),
                    format!("duplicate variant `{}`", v.key),
                );
            }
            if let Some(expected) = kind_mismatch(flag.kind, &v.value) {
                sink.push(
                    format!("flag.variants[{i}].value"),
                    format!("expected {expected}"),
                );
            }
        }
        let lookup = |sink: &mut Sink<'_>, path: &Path<'_>, key: &str| -> Option<usize> {
            let found = variant_index.get(key);
            if found.is_none() {
                sink.push(path, format!("unknown variant `{key}`"));
            }
            found
        };

        let off = lookup(
            &mut sink,
            &Path::root("config.off_variant"),
            &config.off_variant,
        );

        let config_path = Path::root("config");
        let mut targets = FastMap::default();
        for (ti, t) in config.targets.iter().enumerate() {
            let Some(v) = lookup(
                &mut sink,
                &config_path.at("targets", ti).field("variant"),
                &t.variant,
            ) else {
                continue;
            };
            for (ki, key) in t.keys.iter().enumerate() {
                if key.is_empty() {
                    sink.push(
                        format!("config.targets[{ti}].keys[{ki}]"),
                        "must not be empty",
                    );
                } else if targets.insert(Box::<str>::from(key.as_str()), v).is_some() {
                    sink.push(
                        format!("config.targets[{ti}].keys[{ki}]"),
                        format!("`{key}` is targeted more than once"),
                    );
                }
            }
        }

        let mut prerequisites = Vec::with_capacity(config.prerequisites.len());
        for (pi, p) in config.prerequisites.iter().enumerate() {
            let path = config_path.at("prerequisites", pi);
            if p.flag == flag.key {
                sink.push(path.field("flag"), "a flag cannot be its own prerequisite");
                continue;
            }
            let Some(target) = flag_index.get(&p.flag) else {
                sink.push(path.field("flag"), format!("unknown flag `{}`", p.flag));
                continue;
            };
            if p.variants.is_empty() {
                sink.push(path.field("variants"), "at least one variant is required");
                continue;
            }
            let other = &env.flags[target].flag;
            let mut accepted = Vec::with_capacity(p.variants.len());
            for (vi, vk) in p.variants.iter().enumerate() {
                match other.variants.iter().position(|v| &v.key == vk) {
                    Some(idx) => accepted.push(idx),
                    None => sink.push(
                        path.at("variants", vi),
                        format!("flag `{}` has no variant `{vk}`", p.flag),
                    ),
                }
            }
            prerequisites.push((target, accepted.into_boxed_slice()));
        }

        // Few rules per flag: duplicate ids are found by scanning, unless there are many.
        let mut rule_ids: Option<FastSet<&str>> =
            (config.rules.len() > LINEAR_MAX).then(FastSet::default);
        let rules_start = self.store.rules.len();
        for (ri, rule) in config.rules.iter().enumerate() {
            let path = config_path.at("rules", ri);
            let duplicate = !rule.id.is_empty()
                && match &mut rule_ids {
                    Some(ids) => !ids.insert(&rule.id),
                    None => config.rules[..ri].iter().any(|r| r.id == rule.id),
                };
            if duplicate {
                sink.push(path.field("id"), format!("duplicate rule id `{}`", rule.id));
            }
            let clauses_start = self.clauses.len();
            compile_clauses(
                &rule.clauses,
                &path,
                segment_index,
                &mut self.names,
                &mut sink,
                &mut self.clauses,
            );
            let clauses = span_from(clauses_start, self.clauses.len());
            let serve = compile_serve(
                &rule.serve,
                &path.field("serve"),
                &lookup,
                &mut self.names,
                &mut sink,
                &mut self.store.slices,
            );
            if let Some(serve) = serve {
                let id = self.store.push_text(&rule.id);
                self.store.rules.push(CompiledRule { id, clauses, serve });
            }
        }
        let rules = span_from(rules_start, self.store.rules.len());
        let default = compile_serve(
            &config.default_serve,
            &Path::root("config.default_serve"),
            &lookup,
            &mut self.names,
            &mut sink,
            &mut self.store.slices,
        );

        // See `FlagBody::lone_rule`. The rule's clause is the last one compiled.
        let lone_rule = match self.store.rules(rules) {
            [rule] if rule.clauses.len == 1 && sink.is_clean() => {
                let serve = rule.serve.clone();
                let clause = self.clauses.pop().expect("the rule's clause");
                self.store.rules[rules.start].clauses = Span::default();
                Some((clause, serve))
            }
            _ => None,
        };
        let body = match (sink.is_clean(), off, default) {
            (true, Some(off), Some(default)) => {
                let constant = if !config.enabled {
                    Some(off)
                } else if prerequisites.is_empty() && targets.is_empty() && rules.len == 0 {
                    match &default {
                        CompiledServe::Variant(v) => Some(*v),
                        CompiledServe::Rollout { slices, .. } => {
                            match *self.store.slices(*slices) {
                                [(_, only)] => Some(only),
                                _ => None,
                            }
                        }
                    }
                } else {
                    None
                };
                let variants = {
                    let start = self.store.values.len();
                    for v in &flag.variants {
                        let key = self.store.push_text(&v.key);
                        self.store.variant_keys.push(key);
                        self.store.values.push(v.value.clone());
                    }
                    span_from(start, self.store.values.len())
                };
                Some(FlagBody {
                    store: Store {
                        clauses: self.clauses.drain(..).collect(),
                        ..std::mem::take(&mut self.store)
                    },
                    lone_rule,
                    constant,
                    variants,
                    salt: SaltedPrefix::new(if flag.salt.is_empty() {
                        flag.key.as_bytes()
                    } else {
                        flag.salt.as_bytes()
                    }),
                    enabled: config.enabled,
                    off,
                    targets,
                    prerequisites: prerequisites.into(),
                    rules,
                    default,
                })
            }
            _ => None,
        };
        CompiledFlag {
            kind: flag.kind,
            body,
        }
    }

    /// Marks segments that reference each other in a cycle (or reference such a segment)
    /// invalid, so membership checks can never recurse forever.
    fn break_segment_cycles(
        &mut self,
        env: &EnvironmentSnapshot,
        segments: &mut [CompiledSegment],
    ) {
        let edges: Vec<Vec<usize>> = segments
            .iter()
            .map(|s| {
                s.rules
                    .iter()
                    .flatten()
                    .flat_map(|c| c.segment_refs().iter().copied())
                    .collect()
            })
            .collect();
        for node in unresolved_nodes(&edges) {
            segments[node].valid = false;
            let subject = Subject::Segment(env.segments[node].key.clone());
            Sink::new(&subject, &mut self.errors).push(
                "rules",
                "segment references form a cycle (a segment must not contain itself)",
            );
        }
    }

    /// Marks flags whose prerequisites form a cycle (or lead into one) invalid.
    fn break_prerequisite_cycles(
        &mut self,
        env: &EnvironmentSnapshot,
        flags: &mut [Arc<CompiledFlag>],
    ) {
        // Most environments use no prerequisites at all: skip building the graph.
        if flags
            .iter()
            .all(|f| f.body.as_ref().is_none_or(|b| b.prerequisites.is_empty()))
        {
            return;
        }
        let edges: Vec<Vec<usize>> = flags
            .iter()
            .map(|f| {
                f.body
                    .as_ref()
                    .map(|b| b.prerequisites.iter().map(|p| p.0).collect())
                    .unwrap_or_default()
            })
            .collect();
        // Only flags with prerequisites lie on or lead into a cycle, and those are never
        // reused from a previous snapshot (see `Reuse::flag`), so nothing shared is lost.
        for node in unresolved_nodes(&edges) {
            flags[node] = Arc::new(CompiledFlag {
                kind: flags[node].kind,
                body: None,
            });
            let subject = Subject::Flag(env.flags[node].flag.key.clone());
            Sink::new(&subject, &mut self.errors)
                .push("config.prerequisites", "prerequisites form a cycle");
        }
    }
}

fn compile_clauses(
    clauses: &[crate::model::Clause],
    path: &Path<'_>,
    segment_index: &HashMap<&str, usize>,
    names: &mut Names,
    sink: &mut Sink<'_>,
    compiled: &mut Vec<CompiledClause>,
) {
    for (ci, c) in clauses.iter().enumerate() {
        compiled.extend(clause::compile(
            c,
            &path.at("clauses", ci),
            segment_index,
            names,
            sink,
        ));
    }
}

/// The span of a list's items from `start` to its current length `end`.
fn span_from(start: usize, end: usize) -> Span {
    Span {
        start,
        len: end - start,
    }
}

fn compile_serve(
    serve: &Serve,
    path: &Path<'_>,
    lookup: &dyn Fn(&mut Sink<'_>, &Path<'_>, &str) -> Option<usize>,
    names: &mut Names,
    sink: &mut Sink<'_>,
    slices: &mut Vec<(u32, usize)>,
) -> Option<CompiledServe> {
    match serve {
        Serve::Variant(v) => lookup(sink, &path.field("variant"), v).map(CompiledServe::Variant),
        Serve::Rollout(r) => {
            let bucket_by = if r.bucket_by.is_empty() {
                AttrRef::Key
            } else {
                match AttrRef::parse(&r.bucket_by, names) {
                    Ok(a) => a,
                    Err(msg) => {
                        sink.push(path.field("rollout.bucket_by"), msg);
                        return None;
                    }
                }
            };
            if r.weights.is_empty() {
                sink.push(
                    format!("{path}.rollout.weights"),
                    "at least one weight is required",
                );
                return None;
            }
            // Few weights per rollout: repeats are found by scanning the earlier ones (the
            // same key is the same variant), unless there are many.
            let mut seen: Option<FastSet<usize>> =
                (r.weights.len() > LINEAR_MAX).then(FastSet::default);
            let slices_start = slices.len();
            let mut total: u64 = 0;
            let mut ok = true;
            let rollout = path.field("rollout");
            for (wi, w) in r.weights.iter().enumerate() {
                // Counted before the variant is resolved, so an unknown variant is reported
                // once, not again as a bogus "weights must sum" error.
                total += u64::from(w.weight);
                let weight = rollout.at("weights", wi);
                let Some(v) = lookup(sink, &weight.field("variant"), &w.variant) else {
                    ok = false;
                    continue;
                };
                let repeated = match &mut seen {
                    Some(seen) => !seen.insert(v),
                    None => r.weights[..wi].iter().any(|p| p.variant == w.variant),
                };
                if repeated {
                    sink.push(
                        weight.field("variant"),
                        format!("variant `{}` appears twice", w.variant),
                    );
                    ok = false;
                }
                if w.weight > 0 {
                    slices.push((total.min(u64::from(TOTAL_WEIGHT)) as u32, v));
                }
            }
            if total != u64::from(TOTAL_WEIGHT) {
                sink.push(
                    format!("{path}.rollout.weights"),
                    format!("weights must sum to {TOTAL_WEIGHT} (100%), got {total}"),
                );
                return None;
            }
            ok.then(|| CompiledServe::Rollout {
                bucket_by,
                slices: span_from(slices_start, slices.len()),
            })
        }
    }
}

/// Returns `None` if `value` fits `kind`, else a description of what was expected.
fn kind_mismatch(kind: FlagKind, value: &Value) -> Option<&'static str> {
    let fits = match kind {
        FlagKind::Boolean => value.is_boolean(),
        FlagKind::String => value.is_string(),
        FlagKind::Number => value.is_number(),
        FlagKind::Json => true,
    };
    (!fits).then_some(match kind {
        FlagKind::Boolean => "a boolean",
        FlagKind::String => "a string",
        FlagKind::Number => "a number",
        FlagKind::Json => "JSON",
    })
}

/// Variant key → index within one flag. A scan of the flag's own list up to
/// [`LINEAR_MAX`] variants, a map beyond.
struct VariantIndex<'a> {
    variants: &'a [Variant],
    map: Option<FastMap<&'a str, usize>>,
}

impl<'a> VariantIndex<'a> {
    fn new(variants: &'a [Variant]) -> Self {
        let map = (variants.len() > LINEAR_MAX).then(|| {
            let mut map = FastMap::with_capacity_and_hasher(variants.len(), Default::default());
            for (i, v) in variants.iter().enumerate() {
                map.entry(v.key.as_str()).or_insert(i);
            }
            map
        });
        VariantIndex { variants, map }
    }

    /// The first variant with this key; empty keys are invalid and never found.
    #[inline]
    fn get(&self, key: &str) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        match &self.map {
            Some(map) => map.get(key).copied(),
            None => self
                .variants
                .iter()
                .position(|v| crate::index::bytes_eq(v.key.as_bytes(), key.as_bytes())),
        }
    }
}

/// Index of the first occurrence of each key.
fn first_index<'a>(keys: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut map = HashMap::new();
    for (i, k) in keys.enumerate() {
        map.entry(k).or_insert(i);
    }
    map
}

/// Nodes that lie on a cycle or can reach one. Kahn's algorithm on the reversed graph:
/// repeatedly resolve nodes all of whose dependencies are resolved; what remains cannot be
/// evaluated without recursing forever. Iterative, so deep chains cannot overflow the stack.
fn unresolved_nodes(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut pending: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            dependents[to].push(from);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut resolved = vec![false; n];
    while let Some(node) = ready.pop() {
        resolved[node] = true;
        for &d in &dependents[node] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(d);
            }
        }
    }
    (0..n).filter(|&i| !resolved[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Duplicate variants and rule ids and repeated weights are found by scanning up to
    /// `LINEAR_MAX` items and by hashing beyond: both must report the same errors.
    #[test]
    fn duplicates_are_found_the_same_scanned_or_hashed() {
        for n in [3, LINEAR_MAX + 5] {
            let mut variants: Vec<Value> = (0..n)
                .map(|i| json!({"key": format!("v{i}"), "value": i}))
                .collect();
            variants.push(json!({"key": "v1", "value": 99}));
            let rules: Vec<Value> = (0..n)
                .map(|i| {
                    json!({"id": format!("r{}", i.min(n - 2)), "clauses": [],
                    "serve": {"variant": "v0"}})
                })
                .collect();
            let mut weights: Vec<Value> = (0..n)
                .map(|i| json!({"variant": format!("v{i}"), "weight": 0}))
                .collect();
            weights[0]["weight"] = json!(TOTAL_WEIGHT);
            weights.push(json!({"variant": "v0", "weight": 0}));
            let env: EnvironmentSnapshot = serde_json::from_value(json!({"flags": [{
                "flag": {"key": "f", "kind": "number", "variants": variants},
                "config": {"enabled": true, "off_variant": "v0", "rules": rules,
                    "default_serve": {"rollout": {"weights": weights}}}
            }]}))
            .unwrap();
            let errors: Vec<(String, String)> = Snapshot::compile(&env)
                .errors()
                .iter()
                .map(|e| (e.path.clone(), e.message.clone()))
                .collect();
            let expected = [
                (
                    format!("flag.variants[{n}].key"),
                    "duplicate variant `v1`".into(),
                ),
                (
                    format!("config.rules[{}].id", n - 1),
                    format!("duplicate rule id `r{}`", n - 2),
                ),
                (
                    format!("config.default_serve.rollout.weights[{n}].variant"),
                    "variant `v0` appears twice".into(),
                ),
            ];
            assert_eq!(errors, expected, "n = {n}");
        }
    }
}
