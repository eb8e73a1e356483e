//! The compiler: turns an [`EnvironmentSnapshot`] into the [`Snapshot`] layout.
//!
//! All validation happens here, once, so that evaluation cannot fail on a compiled flag:
//! variants referenced exist, weights sum to 100%, regexes and versions parse, prerequisite
//! and segment graphs are acyclic. This file drives a compilation (segments, then flags,
//! then the cycle checks) and compiles segments; [`flag`] compiles one flag, [`serve`] what
//! a rule or a default serves, and [`crate::clause`] one clause.

use std::collections::HashMap;
use std::sync::Arc;

use crate::attribute::Names;
use crate::clause::{self, CompiledClause};
use crate::error::{CompileError, Path, Sink, Subject};
use crate::index::KeyIndex;
use crate::model::{EnvironmentSnapshot, Segment};
use crate::reuse::Reuse;
use crate::snapshot::{CompiledFlag, CompiledSegment, Snapshot, Span};

mod flag;
mod serve;

/// Up to this many items (variants of a flag, rules, weights), compilation finds keys and
/// duplicates by scanning: cheaper than allocating and filling a hash set for each flag.
const LINEAR_MAX: usize = 16;

/// Longest key accepted for flags and segments.
pub const MAX_KEY_LEN: usize = 200;

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

/// One compilation: the errors found so far, and what is kept from flag to flag.
#[derive(Default)]
pub(super) struct Compiler {
    errors: Vec<CompileError>,
    /// Scratch for the clauses of the flag being compiled, kept from flag to flag: a flag
    /// whose only rule has one clause keeps it in its body (`FlagBody::lone_rule`), so
    /// its store's clause list stays empty and allocates nothing.
    clauses: Vec<CompiledClause>,
    names: Names,
}

impl Compiler {
    /// Compiles `env`, taking from `reuse` what the previous snapshot may give.
    pub(super) fn run(mut self, env: &EnvironmentSnapshot, reuse: Option<Reuse<'_>>) -> Snapshot {
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
            counters: None,
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
                version: flags[node].version,
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
    use serde_json::{Value, json};

    use crate::model::TOTAL_WEIGHT;

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
