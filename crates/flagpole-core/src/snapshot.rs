//! Compilation of an [`EnvironmentSnapshot`] into a [`Snapshot`] that evaluates.
//!
//! All validation happens here, once, so that evaluation cannot fail on a compiled flag:
//! variants referenced exist, weights sum to 100%, regexes and versions parse, prerequisite
//! and segment graphs are acyclic. Evaluation itself lives in [`crate::eval`].

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::attribute::AttrRef;
use crate::clause::{self, CompiledClause};
use crate::context::Context;
use crate::error::{CompileError, CompileErrors, Sink, Subject};
use crate::model::{EnvironmentSnapshot, FlagKind, FlagState, Segment, Serve, TOTAL_WEIGHT};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Longest key accepted for flags and segments.
pub const MAX_KEY_LEN: usize = 200;

/// A compiled environment: every flag and segment, ready to evaluate. Immutable; share it
/// behind an `Arc` and swap in a new one when the environment changes.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) version: u64,
    pub(crate) flags: Vec<CompiledFlag>,
    pub(crate) index: FastMap<Box<str>, usize>,
    pub(crate) segments: Vec<CompiledSegment>,
    errors: Vec<CompileError>,
}

#[derive(Debug)]
pub(crate) struct CompiledFlag {
    pub(crate) key: Box<str>,
    pub(crate) kind: FlagKind,
    /// `None` when the flag failed to compile: it evaluates to an error.
    pub(crate) body: Option<FlagBody>,
}

#[derive(Debug)]
pub(crate) struct FlagBody {
    pub(crate) variant_keys: Box<[Box<str>]>,
    pub(crate) values: Box<[Value]>,
    pub(crate) salt: Box<[u8]>,
    pub(crate) enabled: bool,
    pub(crate) off: usize,
    pub(crate) targets: FastMap<Box<str>, usize>,
    /// (flag index, accepted variant indices of that flag)
    pub(crate) prerequisites: Box<[(usize, Box<[usize]>)]>,
    pub(crate) rules: Box<[CompiledRule]>,
    pub(crate) default: CompiledServe,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) id: Box<str>,
    pub(crate) clauses: Box<[CompiledClause]>,
    pub(crate) serve: CompiledServe,
}

#[derive(Debug)]
pub(crate) enum CompiledServe {
    Variant(usize),
    /// Slices as (exclusive upper bucket, variant index), zero-weight slices dropped.
    Rollout {
        bucket_by: AttrRef,
        slices: Box<[(u32, usize)]>,
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
        Compiler::default().run(env)
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
        self.flags.iter().map(|f| &*f.key)
    }

    /// The kind of a flag, if it exists.
    pub fn flag_kind(&self, key: &str) -> Option<FlagKind> {
        self.index.get(key).map(|&i| self.flags[i].kind)
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
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may contain only ASCII letters, digits, `-`, `_` and `.`".into());
    }
    Ok(())
}

#[derive(Default)]
struct Compiler {
    errors: Vec<CompileError>,
}

impl Compiler {
    fn run(mut self, env: &EnvironmentSnapshot) -> Snapshot {
        let segment_index = first_index(env.segments.iter().map(|s| s.key.as_str()));
        let mut segments: Vec<CompiledSegment> = env
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                self.segment(
                    s,
                    segment_index.get(s.key.as_str()) == Some(&i),
                    &segment_index,
                )
            })
            .collect();
        self.break_segment_cycles(env, &mut segments);

        let flag_index = first_index(env.flags.iter().map(|f| f.flag.key.as_str()));
        let mut flags: Vec<CompiledFlag> = env
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let unique = flag_index.get(f.flag.key.as_str()) == Some(&i);
                self.flag(f, unique, &flag_index, env, &segment_index)
            })
            .collect();
        self.break_prerequisite_cycles(env, &mut flags);

        let mut index = FastMap::with_capacity_and_hasher(flags.len(), Default::default());
        for (i, f) in flags.iter().enumerate() {
            index.entry(f.key.clone()).or_insert(i);
        }
        Snapshot {
            version: env.version,
            flags,
            index,
            segments,
            errors: self.errors,
        }
    }

    fn segment(
        &mut self,
        s: &Segment,
        unique: bool,
        segment_index: &HashMap<&str, usize>,
    ) -> CompiledSegment {
        let subject = Subject::Segment(s.key.clone());
        let mut sink = Sink::new(&subject, &mut self.errors);
        if let Err(msg) = validate_key(&s.key) {
            sink.push("key", msg);
        } else if !unique {
            sink.push("key", "duplicate segment key");
        }
        let mut rules = Vec::with_capacity(s.rules.len());
        for (ri, rule) in s.rules.iter().enumerate() {
            let clauses = compile_clauses(
                &rule.clauses,
                &format!("rules[{ri}]"),
                segment_index,
                &mut sink,
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
        flag_index: &HashMap<&str, usize>,
        env: &EnvironmentSnapshot,
        segment_index: &HashMap<&str, usize>,
    ) -> CompiledFlag {
        let (flag, config) = (&state.flag, &state.config);
        let subject = Subject::Flag(flag.key.clone());
        let mut sink = Sink::new(&subject, &mut self.errors);

        if let Err(msg) = validate_key(&flag.key) {
            sink.push("flag.key", msg);
        } else if !unique {
            sink.push("flag.key", "duplicate flag key");
        }
        if flag.variants.is_empty() {
            sink.push("flag.variants", "a flag needs at least one variant");
        }
        let mut variant_index: HashMap<&str, usize> = HashMap::with_capacity(flag.variants.len());
        for (i, v) in flag.variants.iter().enumerate() {
            if v.key.is_empty() {
                sink.push(format!("flag.variants[{i}].key"), "must not be empty");
            } else if variant_index.insert(&v.key, i).is_some() {
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
        let lookup = |sink: &mut Sink<'_>, path: String, key: &str| -> Option<usize> {
            let found = variant_index.get(key).copied();
            if found.is_none() {
                sink.push(path, format!("unknown variant `{key}`"));
            }
            found
        };

        let off = lookup(&mut sink, "config.off_variant".into(), &config.off_variant);

        let mut targets = FastMap::default();
        for (ti, t) in config.targets.iter().enumerate() {
            let Some(v) = lookup(
                &mut sink,
                format!("config.targets[{ti}].variant"),
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
            let path = format!("config.prerequisites[{pi}]");
            if p.flag == flag.key {
                sink.push(
                    format!("{path}.flag"),
                    "a flag cannot be its own prerequisite",
                );
                continue;
            }
            let Some(&target) = flag_index.get(p.flag.as_str()) else {
                sink.push(format!("{path}.flag"), format!("unknown flag `{}`", p.flag));
                continue;
            };
            if p.variants.is_empty() {
                sink.push(
                    format!("{path}.variants"),
                    "at least one variant is required",
                );
                continue;
            }
            let other = &env.flags[target].flag;
            let mut accepted = Vec::with_capacity(p.variants.len());
            for (vi, vk) in p.variants.iter().enumerate() {
                match other.variants.iter().position(|v| &v.key == vk) {
                    Some(idx) => accepted.push(idx),
                    None => sink.push(
                        format!("{path}.variants[{vi}]"),
                        format!("flag `{}` has no variant `{vk}`", p.flag),
                    ),
                }
            }
            prerequisites.push((target, accepted.into_boxed_slice()));
        }

        let mut rule_ids: HashSet<&str> = HashSet::new();
        let mut rules = Vec::with_capacity(config.rules.len());
        for (ri, rule) in config.rules.iter().enumerate() {
            let path = format!("config.rules[{ri}]");
            if !rule.id.is_empty() && !rule_ids.insert(&rule.id) {
                sink.push(
                    format!("{path}.id"),
                    format!("duplicate rule id `{}`", rule.id),
                );
            }
            let clauses = compile_clauses(&rule.clauses, &path, segment_index, &mut sink);
            let serve = compile_serve(&rule.serve, &format!("{path}.serve"), &lookup, &mut sink);
            if let Some(serve) = serve {
                rules.push(CompiledRule {
                    id: rule.id.as_str().into(),
                    clauses: clauses.into(),
                    serve,
                });
            }
        }
        let default = compile_serve(
            &config.default_serve,
            "config.default_serve",
            &lookup,
            &mut sink,
        );

        let key: Box<str> = flag.key.as_str().into();
        let body = match (sink.is_clean(), off, default) {
            (true, Some(off), Some(default)) => Some(FlagBody {
                variant_keys: flag
                    .variants
                    .iter()
                    .map(|v| v.key.as_str().into())
                    .collect(),
                values: flag.variants.iter().map(|v| v.value.clone()).collect(),
                salt: if flag.salt.is_empty() {
                    flag.key.as_bytes().into()
                } else {
                    flag.salt.as_bytes().into()
                },
                enabled: config.enabled,
                off,
                targets,
                prerequisites: prerequisites.into(),
                rules: rules.into(),
                default,
            }),
            _ => None,
        };
        CompiledFlag {
            key,
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
    fn break_prerequisite_cycles(&mut self, env: &EnvironmentSnapshot, flags: &mut [CompiledFlag]) {
        let edges: Vec<Vec<usize>> = flags
            .iter()
            .map(|f| {
                f.body
                    .as_ref()
                    .map(|b| b.prerequisites.iter().map(|p| p.0).collect())
                    .unwrap_or_default()
            })
            .collect();
        for node in unresolved_nodes(&edges) {
            flags[node].body = None;
            let subject = Subject::Flag(env.flags[node].flag.key.clone());
            Sink::new(&subject, &mut self.errors)
                .push("config.prerequisites", "prerequisites form a cycle");
        }
    }
}

fn compile_clauses(
    clauses: &[crate::model::Clause],
    path: &str,
    segment_index: &HashMap<&str, usize>,
    sink: &mut Sink<'_>,
) -> Vec<CompiledClause> {
    clauses
        .iter()
        .enumerate()
        .filter_map(|(ci, c)| {
            clause::compile(c, &format!("{path}.clauses[{ci}]"), segment_index, sink)
        })
        .collect()
}

fn compile_serve(
    serve: &Serve,
    path: &str,
    lookup: &dyn Fn(&mut Sink<'_>, String, &str) -> Option<usize>,
    sink: &mut Sink<'_>,
) -> Option<CompiledServe> {
    match serve {
        Serve::Variant(v) => lookup(sink, format!("{path}.variant"), v).map(CompiledServe::Variant),
        Serve::Rollout(r) => {
            let bucket_by = if r.bucket_by.is_empty() {
                AttrRef::Key
            } else {
                match AttrRef::parse(&r.bucket_by) {
                    Ok(a) => a,
                    Err(msg) => {
                        sink.push(format!("{path}.rollout.bucket_by"), msg);
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
            let mut seen = HashSet::new();
            let mut slices = Vec::with_capacity(r.weights.len());
            let mut total: u64 = 0;
            let mut ok = true;
            for (wi, w) in r.weights.iter().enumerate() {
                // Counted before the variant is resolved, so an unknown variant is reported
                // once, not again as a bogus "weights must sum" error.
                total += u64::from(w.weight);
                let Some(v) = lookup(
                    sink,
                    format!("{path}.rollout.weights[{wi}].variant"),
                    &w.variant,
                ) else {
                    ok = false;
                    continue;
                };
                if !seen.insert(v) {
                    sink.push(
                        format!("{path}.rollout.weights[{wi}].variant"),
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
                slices: slices.into(),
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
