//! The contract the server's write validation rests on (`src/scope.rs`): compiling the
//! closure of what a change can affect reports exactly what a compile of the whole
//! environment reports for it, and the change cannot affect anything outside.
//!
//! For every environment of the case files and a few hundred generated ones (prerequisite
//! graphs with cycles and dangling keys, segments naming segments, flags naming segments),
//! and for every flag and segment of each, a series of changes is made: prerequisites
//! added (cycles included) and dropped, variants removed, segments named and unnamed, the
//! subject removed, a new one added under a key others already name. For each, with
//! `scope` = the written subject plus its dependents:
//! - the errors a compile of `after.closure(scope)` reports are exactly the whole
//!   compile's errors about the subjects in scope;
//! - every subject outside the scope has the same errors before and after;
//! - the dependents are the same before and after the change (the server reads them from
//!   an index of the stored state, before applying the change).

use std::path::PathBuf;
use std::sync::Arc;

use flagpole_core::model::{
    Clause, EnvironmentSnapshot, Flag, FlagConfig, FlagKind, FlagState, Operator, Prerequisite,
    Rule, Segment, SegmentRule, Serve, Variant,
};
use flagpole_core::{CompileError, Snapshot, Subject};
use serde_json::{Value, json};

#[test]
fn validating_the_scope_of_a_change_equals_validating_the_environment() {
    let mut envs: Vec<(String, EnvironmentSnapshot)> = case_environments();
    let mut rng = Rng(0x5eed_cafe_f00d);
    for i in 0..300 {
        envs.push((format!("generated #{i}"), generated(&mut rng)));
    }
    let (mut checked, mut with_dependents, mut with_errors) = (0, 0, 0);
    for (name, env) in &envs {
        for (what, written, after) in changes(env, &mut rng) {
            let at = format!("{name}: {what}");
            let n = check(&at, env, &written, &after);
            with_dependents += usize::from(n > 1);
            with_errors += usize::from(!Snapshot::compile(&after).errors().is_empty());
            checked += 1;
        }
    }
    // The generator must exercise what matters: dependents, and changes that break things.
    assert!(checked > 5_000, "only {checked} changes");
    assert!(
        with_dependents * 5 > checked,
        "{with_dependents} of {checked} had dependents"
    );
    assert!(
        with_errors * 3 > checked,
        "{with_errors} of {checked} had errors"
    );
}

/// What was written.
#[derive(Debug, Clone)]
enum Written {
    Flag(String),
    /// A segment changed in place.
    Segment(String),
    /// A segment created or removed.
    SegmentExistence(String),
}

/// Checks one change; returns the number of subjects in scope.
fn check(
    at: &str,
    before: &EnvironmentSnapshot,
    written: &Written,
    after: &EnvironmentSnapshot,
) -> usize {
    let (flags, segments): (Vec<String>, Vec<String>) = match written {
        Written::Flag(key) => {
            let dependents = after.dependents(key);
            assert_eq!(before.dependents(key), dependents, "{at}: dependents");
            (
                std::iter::once(key.clone()).chain(dependents).collect(),
                Vec::new(),
            )
        }
        Written::SegmentExistence(key) => {
            let dependents = after.segment_dependents(key);
            assert_eq!(
                before.segment_dependents(key),
                dependents,
                "{at}: dependents"
            );
            let users = after.segment_users(key);
            assert_eq!(before.segment_users(key), users, "{at}: users");
            // A user's validity changes, and with it the prerequisite graph (a flag that
            // fails to compile takes no part in cycles): its dependents are in scope too.
            let mut flags = users.clone();
            for user in &users {
                flags.extend(after.dependents(user));
            }
            flags.sort();
            flags.dedup();
            (
                flags,
                std::iter::once(key.clone()).chain(dependents).collect(),
            )
        }
        Written::Segment(key) => {
            let dependents = after.segment_dependents(key);
            assert_eq!(
                before.segment_dependents(key),
                dependents,
                "{at}: dependents"
            );
            (
                Vec::new(),
                std::iter::once(key.clone()).chain(dependents).collect(),
            )
        }
    };
    let in_scope = |e: &CompileError| match &e.subject {
        Subject::Flag(k) => flags.contains(k),
        Subject::Segment(k) => segments.contains(k),
    };
    let whole_after = Snapshot::compile(after);
    let whole_before = Snapshot::compile(before);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let segment_refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let part = Snapshot::compile(&after.closure(&flag_refs, &segment_refs));
    let part_errors: Vec<&CompileError> = part.errors().iter().filter(|e| in_scope(e)).collect();
    let expected: Vec<&CompileError> = whole_after
        .errors()
        .iter()
        .filter(|e| in_scope(e))
        .collect();
    assert_eq!(part_errors, expected, "{at}: errors in scope");
    let outside = |s: &Snapshot| -> Vec<CompileError> {
        let mut e: Vec<CompileError> = s
            .errors()
            .iter()
            .filter(|e| !in_scope(e))
            .cloned()
            .collect();
        e.sort_by_key(ToString::to_string);
        e
    };
    assert_eq!(
        outside(&whole_before),
        outside(&whole_after),
        "{at}: errors outside scope"
    );
    flags.len() + segments.len()
}

/// Changes to every flag and segment of `env`, each applied to `env` itself.
fn changes(
    env: &EnvironmentSnapshot,
    rng: &mut Rng,
) -> Vec<(String, Written, EnvironmentSnapshot)> {
    let mut out = Vec::new();
    let flag_keys: Vec<String> = env.flags.iter().map(|f| f.flag.key.clone()).collect();
    let segment_keys: Vec<String> = env.segments.iter().map(|s| s.key.clone()).collect();
    for (i, key) in flag_keys.iter().enumerate() {
        let written = Written::Flag(key.clone());
        let mut flag_change = |what: &str, change: &mut dyn FnMut(&mut FlagState, &mut Rng)| {
            let mut next = env.clone();
            let mut state = (*next.flags[i]).clone();
            change(&mut state, rng);
            next.flags[i] = Arc::new(state);
            out.push((format!("flag `{key}`: {what}"), written.clone(), next));
        };
        flag_change("a prerequisite on a random flag", &mut |f, rng| {
            let other = rng.pick(&flag_keys).clone();
            let variant = rng
                .pick(&["on".to_owned(), "off".to_owned(), "x".to_owned()])
                .clone();
            f.config.prerequisites.push(Prerequisite {
                flag: other,
                variants: vec![variant],
            });
        });
        flag_change("no prerequisites", &mut |f, _| {
            f.config.prerequisites.clear()
        });
        flag_change("variant `on` removed", &mut |f, _| {
            f.flag.variants.retain(|v| v.key != "on")
        });
        flag_change("a new variant", &mut |f, _| {
            f.flag.variants.push(Variant {
                key: "x".into(),
                value: f
                    .flag
                    .variants
                    .first()
                    .map_or(json!(true), |v| v.value.clone()),
                name: String::new(),
                description: String::new(),
            });
        });
        flag_change("naming a random segment", &mut |f, rng| {
            let segment = if segment_keys.is_empty() || rng.below(4) == 0 {
                "missing".to_owned()
            } else {
                rng.pick(&segment_keys).clone()
            };
            f.config.rules.push(segment_rule(&segment, "on"));
        });
        flag_change("no rules", &mut |f, _| f.config.rules.clear());
        let mut next = env.clone();
        next.flags.remove(i);
        out.push((format!("flag `{key}` removed"), written.clone(), next));
    }
    // A new flag under a key that others may already name (dangling before).
    for key in ["g0", "g3", "new"] {
        if flag_keys.iter().any(|k| k == key) {
            continue;
        }
        let mut next = env.clone();
        next.flags.push(Arc::new(flag_state(key, vec![], vec![])));
        out.push((
            format!("flag `{key}` created"),
            Written::Flag(key.into()),
            next,
        ));
    }
    for (i, key) in segment_keys.iter().enumerate() {
        let written = Written::Segment(key.clone());
        let mut segment_change = |what: &str, change: &mut dyn FnMut(&mut Segment, &mut Rng)| {
            let mut next = env.clone();
            let mut segment = (*next.segments[i]).clone();
            change(&mut segment, rng);
            next.segments[i] = Arc::new(segment);
            out.push((format!("segment `{key}`: {what}"), written.clone(), next));
        };
        segment_change("naming a random segment", &mut |s, rng| {
            let other = rng.pick(&segment_keys).clone();
            s.rules.push(SegmentRule {
                id: String::new(),
                clauses: vec![in_segment(&other)],
            });
        });
        segment_change("no rules", &mut |s, _| s.rules.clear());
        segment_change("a broken rule", &mut |s, _| {
            s.rules.push(SegmentRule {
                id: String::new(),
                clauses: vec![Clause {
                    attribute: "v".into(),
                    op: Operator::SemverGt,
                    values: vec![json!("nope")],
                    negate: false,
                    case_insensitive: false,
                }],
            });
        });
        {
            let mut next = env.clone();
            next.segments.remove(i);
            let written = Written::SegmentExistence(key.clone());
            out.push((format!("segment `{key}` removed"), written, next));
        }
    }
    for key in ["s1", "fresh"] {
        if segment_keys.iter().any(|k| k == key) {
            continue;
        }
        let mut next = env.clone();
        next.segments.push(Arc::new(segment(key, vec![])));
        out.push((
            format!("segment `{key}` created"),
            Written::SegmentExistence(key.into()),
            next,
        ));
    }
    out
}

/// A random environment: flags `g0`… with prerequisites on each other (and on missing
/// flags), rules naming segments `s0`… (and missing ones), segments naming each other.
fn generated(rng: &mut Rng) -> EnvironmentSnapshot {
    let n_flags = 2 + rng.below(9);
    let n_segments = rng.below(5);
    // Keys beyond the counts are missing: references to them dangle.
    let flag_key = |rng: &mut Rng| format!("g{}", rng.below(n_flags + 1));
    let segment_key = |rng: &mut Rng| format!("s{}", rng.below(n_segments + 1));
    let mut flags = Vec::new();
    for i in 0..n_flags {
        let mut prerequisites = Vec::new();
        for _ in 0..rng.below(3) {
            let variant = if rng.below(8) == 0 { "x" } else { "on" };
            prerequisites.push(Prerequisite {
                flag: flag_key(rng),
                variants: vec![variant.into()],
            });
        }
        let rules = (0..rng.below(3))
            .map(|_| segment_rule(&segment_key(rng), "on"))
            .collect();
        flags.push(Arc::new(flag_state(&format!("g{i}"), prerequisites, rules)));
    }
    let segments = (0..n_segments)
        .map(|i| {
            let rules = (0..rng.below(3))
                .map(|_| SegmentRule {
                    id: String::new(),
                    clauses: vec![in_segment(&segment_key(rng))],
                })
                .collect();
            Arc::new(segment(&format!("s{i}"), rules))
        })
        .collect();
    EnvironmentSnapshot {
        version: 1,
        flags,
        segments,
    }
}

fn flag_state(key: &str, prerequisites: Vec<Prerequisite>, rules: Vec<Rule>) -> FlagState {
    let variant = |key: &str, value: bool| Variant {
        key: key.into(),
        value: Value::Bool(value),
        name: String::new(),
        description: String::new(),
    };
    FlagState::new(
        Flag {
            key: key.into(),
            name: String::new(),
            description: String::new(),
            tags: Vec::new(),
            kind: FlagKind::Boolean,
            variants: vec![variant("on", true), variant("off", false)],
            salt: String::new(),
        },
        FlagConfig {
            enabled: true,
            off_variant: "off".into(),
            targets: Vec::new(),
            prerequisites,
            rules,
            default_serve: Serve::Variant("off".into()),
        },
    )
}

fn segment(key: &str, rules: Vec<SegmentRule>) -> Segment {
    Segment {
        key: key.into(),
        name: String::new(),
        description: String::new(),
        included: Vec::new(),
        excluded: Vec::new(),
        rules,
    }
}

fn in_segment(key: &str) -> Clause {
    Clause {
        attribute: String::new(),
        op: Operator::InSegment,
        values: vec![json!(key)],
        negate: false,
        case_insensitive: false,
    }
}

fn segment_rule(segment: &str, serve: &str) -> Rule {
    Rule {
        id: String::new(),
        description: String::new(),
        clauses: vec![in_segment(segment)],
        serve: Serve::Variant(serve.into()),
    }
}

/// The environments of the evaluation case files. Those with a key twice are left out: a
/// stored project cannot hold one (keys are unique), and the duplicate check is the one
/// that looks at every flag.
fn case_environments() -> Vec<(String, EnvironmentSnapshot)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let file: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let env: EnvironmentSnapshot =
                serde_json::from_value(file["environment"].clone()).unwrap();
            let mut keys: Vec<&str> = env.flags.iter().map(|f| f.flag.key.as_str()).collect();
            let mut segment_keys: Vec<&str> = env.segments.iter().map(|s| s.key.as_str()).collect();
            let n = (keys.len(), segment_keys.len());
            keys.sort_unstable();
            keys.dedup();
            segment_keys.sort_unstable();
            segment_keys.dedup();
            let unique = n == (keys.len(), segment_keys.len());
            unique.then(|| (path.display().to_string(), env))
        })
        .collect()
}

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
