//! What a compile of some flags and segments depends on, and what a change can break:
//! the contract that lets the server validate a write by compiling a small part of an
//! environment instead of all of it.
//!
//! A flag's compile errors depend on its own state, on the keys and variants of the flags
//! its prerequisites name, on the keys of the segments its clauses name, and on whether
//! following prerequisites from it reaches a cycle. A segment's depend on its own
//! definition, on the keys of the segments it names, and on whether following those
//! reaches a cycle. Nothing else: no check looks at the environment as a whole (keys are
//! unique in a stored project, so the duplicate-key checks cannot differ).
//!
//! Hence:
//! - compiling [`EnvironmentSnapshot::closure`] of some subjects reports exactly the errors
//!   a compile of the whole environment reports for those subjects;
//! - a change to flag F can change the errors of F and of the flags that reach F through
//!   prerequisites ([`EnvironmentSnapshot::dependents`]), of no one else;
//! - a change to segment S can change the errors of S and of the segments that reach S
//!   ([`EnvironmentSnapshot::segment_dependents`]), and, only when S comes into being or
//!   goes, of the flags that name it ([`EnvironmentSnapshot::segment_users`]) and their
//!   dependents: a flag only needs the segments it names to exist, but whether it
//!   compiles decides whether its prerequisites take part in the cycle check.
//!
//! `tests/scope.rs` checks all three against whole-environment compiles.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::model::{Clause, EnvironmentSnapshot, FlagConfig, Operator, Segment};

impl FlagConfig {
    /// Keys of the flags this config names as prerequisites.
    pub fn prerequisite_keys(&self) -> impl Iterator<Item = &str> {
        self.prerequisites.iter().map(|p| p.flag.as_str())
    }

    /// Keys of the segments its rules' `in_segment` clauses name.
    pub fn segment_keys(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| segments_named(&r.clauses))
    }
}

impl Segment {
    /// Keys of the segments its rules' `in_segment` clauses name.
    pub fn segment_keys(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| segments_named(&r.clauses))
    }
}

fn segments_named(clauses: &[Clause]) -> impl Iterator<Item = &str> {
    clauses
        .iter()
        .filter(|c| c.op == Operator::InSegment)
        .flat_map(|c| c.values.iter().filter_map(Value::as_str))
}

impl EnvironmentSnapshot {
    /// The flags `flags` and segments `segments` (keys not in the environment are
    /// ignored) with everything their compile reads: the flags their prerequisites name
    /// and the segments their clauses name, transitively. Order is kept, so errors come in
    /// the order a whole compile reports them.
    pub fn closure(&self, flags: &[&str], segments: &[&str]) -> EnvironmentSnapshot {
        let flag_at: HashMap<&str, usize> = self
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.flag.key.as_str(), i))
            .collect();
        let segment_at: HashMap<&str, usize> = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.as_str(), i))
            .collect();
        let mut flag_set = BTreeSet::new();
        let mut segment_set = BTreeSet::new();
        let mut pending_flags: Vec<&str> = flags.to_vec();
        let mut pending_segments: Vec<&str> = segments.to_vec();
        while let Some(key) = pending_flags.pop() {
            let Some(&i) = flag_at.get(key) else { continue };
            if flag_set.insert(i) {
                let config = &self.flags[i].config;
                pending_flags.extend(config.prerequisite_keys());
                pending_segments.extend(config.segment_keys());
            }
        }
        while let Some(key) = pending_segments.pop() {
            let Some(&i) = segment_at.get(key) else {
                continue;
            };
            if segment_set.insert(i) {
                pending_segments.extend(self.segments[i].segment_keys());
            }
        }
        EnvironmentSnapshot {
            version: self.version,
            flags: flag_set
                .into_iter()
                .map(|i| self.flags[i].clone())
                .collect(),
            segments: segment_set
                .into_iter()
                .map(|i| self.segments[i].clone())
                .collect(),
        }
    }

    /// Keys of the flags other than `key` that reach flag `key` by following
    /// prerequisites, in environment order.
    pub fn dependents(&self, key: &str) -> Vec<String> {
        reaching(
            key,
            self.flags
                .iter()
                .map(|f| (f.flag.key.as_str(), f.config.prerequisite_keys().collect())),
        )
    }

    /// Keys of the flags whose clauses name segment `key`, in environment order.
    pub fn segment_users(&self, key: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|f| f.config.segment_keys().any(|k| k == key))
            .map(|f| f.flag.key.clone())
            .collect()
    }

    /// Keys of the segments other than `key` that reach segment `key` by following the
    /// segments their clauses name, in environment order.
    pub fn segment_dependents(&self, key: &str) -> Vec<String> {
        reaching(
            key,
            self.segments
                .iter()
                .map(|s| (s.key.as_str(), s.segment_keys().collect())),
        )
    }
}

/// Nodes other than `target` from which `target` can be reached, given each node's edges.
fn reaching<'a>(target: &str, nodes: impl Iterator<Item = (&'a str, Vec<&'a str>)>) -> Vec<String> {
    let nodes: Vec<(&str, Vec<&str>)> = nodes.collect();
    let mut reached: BTreeSet<&str> = BTreeSet::from([target]);
    loop {
        let before = reached.len();
        for (key, edges) in &nodes {
            if edges.iter().any(|e| reached.contains(e)) {
                reached.insert(key);
            }
        }
        if reached.len() == before {
            break;
        }
    }
    nodes
        .iter()
        .filter(|(key, _)| *key != target && reached.contains(key))
        .map(|(key, _)| (*key).to_owned())
        .collect()
}
