//! `Snapshot::recompile` (what SDKs do on every patch, reusing the flags a change did not
//! touch) must evaluate exactly like `Snapshot::compile` of the same environment, and report
//! the same errors, whatever the change: a flag edited, removed, added in front (every
//! position shifts), duplicated, broken and repaired, prerequisites forming a cycle and
//! leaving it, segments edited, renamed and reordered. Each environment of the case files
//! goes through a chain of such changes, each step recompiled from the one before (so reuse
//! across several generations is covered), and every flag is evaluated for every context the
//! case files use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flagpole_core::model::{EnvironmentSnapshot, FlagState, Prerequisite, Segment};
use flagpole_core::{Context, Snapshot};
use serde_json::Value;

#[test]
fn recompiling_after_any_change_evaluates_like_compiling_from_scratch() {
    let (mut steps, mut clean_steps) = (0, 0);
    for path in case_files() {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let env: EnvironmentSnapshot = serde_json::from_value(file["environment"].clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let contexts = contexts(&file);
        let mut held = (env.clone(), Snapshot::compile(&env));
        for (what, next) in changes(&env) {
            clean_steps += usize::from(held.1.errors().is_empty());
            let incremental = Snapshot::recompile(&next, &held.0, &held.1);
            let scratch = Snapshot::compile(&next);
            let at = format!("{}: after {what}", path.display());
            assert_same(&at, &next, &contexts, &incremental, &scratch);
            held = (next, incremental);
            steps += 1;
        }
    }
    assert!(steps > 100, "only {steps} changes were checked");
    assert!(
        clean_steps * 3 > steps,
        "only {clean_steps} of {steps} changes started from a snapshot without errors, \
         the only kind `recompile` reuses from"
    );
}

/// A chain of changes, each applied to the result of the one before, sharing every
/// untouched flag and segment by `Arc` as a patch does.
fn changes(start: &EnvironmentSnapshot) -> Vec<(String, EnvironmentSnapshot)> {
    let mut chain = Vec::new();
    let mut env = start.clone();
    let mut push = |what: String, next: EnvironmentSnapshot, env: &mut EnvironmentSnapshot| {
        let mut next = next;
        next.version = env.version + 1;
        *env = next.clone();
        chain.push((what, next));
    };

    push("nothing".into(), env.clone(), &mut env);
    for i in 0..env.flags.len() {
        let next = with_flag(&env, i, |f| f.config.enabled = !f.config.enabled);
        push(format!("toggling flag {i}"), next, &mut env);
    }
    if let Some(first) = env.flags.first().cloned() {
        let mut next = env.clone();
        next.flags.remove(0);
        push("removing the first flag".into(), next, &mut env);

        let mut next = env.clone();
        let mut added = (*first).clone();
        added.flag.key = "recompile-added".into();
        next.flags.insert(0, Arc::new(added));
        push("adding a flag in front".into(), next, &mut env);

        // The first definition of a key wins: the flag already there becomes the duplicate.
        let mut next = env.clone();
        let last = (*next.flags[next.flags.len() - 1]).clone();
        next.flags.insert(0, Arc::new(last));
        push("a duplicate key in front".into(), next, &mut env);
        let mut next = env.clone();
        next.flags.remove(0);
        push("removing the duplicate".into(), next, &mut env);
    }
    if !env.flags.is_empty() {
        let intact = env.flags[0].clone();
        let next = with_flag(&env, 0, |f| f.flag.variants.clear());
        push("breaking a flag".into(), next, &mut env);
        let next = with_flag(&env, env.flags.len() - 1, |f| {
            f.config.enabled = !f.config.enabled;
        });
        push("another change while one is broken".into(), next, &mut env);
        let mut next = env.clone();
        next.flags[0] = intact;
        push("repairing it".into(), next, &mut env);
    }
    if env.flags.len() >= 2 {
        let (a, b) = (env.flags[0].clone(), env.flags[1].clone());
        let requires = |f: &mut FlagState, other: &FlagState| {
            f.config.prerequisites.push(Prerequisite {
                flag: other.flag.key.clone(),
                variants: vec![
                    other
                        .flag
                        .variants
                        .first()
                        .map(|v| v.key.clone())
                        .unwrap_or_default(),
                ],
            });
        };
        let next = with_flag(&env, 0, |f| requires(f, &b));
        push("a prerequisite".into(), next, &mut env);
        let next = with_flag(&env, 1, |f| requires(f, &a));
        push("a prerequisite cycle".into(), next, &mut env);
        let next = with_flag(&env, 1, |f| {
            f.config.prerequisites.pop();
        });
        push("breaking the cycle".into(), next, &mut env);
    }
    for i in 0..env.segments.len() {
        let next = with_segment(&env, i, |s| {
            s.rules.clear();
            s.included.clear();
        });
        push(format!("editing segment {i}"), next, &mut env);
    }
    if env.segments.len() >= 2 {
        let mut next = env.clone();
        next.segments.swap(0, 1);
        push("reordering segments".into(), next, &mut env);
    }
    if !env.segments.is_empty() {
        let next = with_segment(&env, 0, |s| s.key.push_str("-renamed"));
        push("renaming a segment".into(), next, &mut env);
        let mut next = env.clone();
        next.segments.remove(0);
        push("removing a segment".into(), next, &mut env);
    }
    chain
}

fn with_flag(
    env: &EnvironmentSnapshot,
    i: usize,
    change: impl FnOnce(&mut FlagState),
) -> EnvironmentSnapshot {
    let mut next = env.clone();
    edit(&mut next.flags, i, change);
    next
}

fn with_segment(
    env: &EnvironmentSnapshot,
    i: usize,
    change: impl FnOnce(&mut Segment),
) -> EnvironmentSnapshot {
    let mut next = env.clone();
    edit(&mut next.segments, i, change);
    next
}

/// Replaces item `i` by a changed copy; the others stay shared.
fn edit<T: Clone>(items: &mut [Arc<T>], i: usize, change: impl FnOnce(&mut T)) {
    let mut item = (*items[i]).clone();
    change(&mut item);
    items[i] = Arc::new(item);
}

fn assert_same(
    at: &str,
    env: &EnvironmentSnapshot,
    contexts: &[Context],
    incremental: &Snapshot,
    scratch: &Snapshot,
) {
    let errors = |s: &Snapshot| {
        let mut e: Vec<String> = s.errors().iter().map(ToString::to_string).collect();
        e.sort();
        e
    };
    assert_eq!(errors(incremental), errors(scratch), "{at}: errors");
    assert_eq!(incremental.version(), env.version, "{at}: version");
    assert!(
        incremental.flag_keys().eq(scratch.flag_keys()),
        "{at}: flag keys"
    );
    let keys = env
        .flags
        .iter()
        .map(|f| f.flag.key.as_str())
        .chain(["no-such-flag"]);
    for key in keys {
        for ctx in contexts {
            assert_eq!(
                incremental.evaluate(key, ctx),
                scratch.evaluate(key, ctx),
                "{at}: flag `{key}`, context {ctx:?}"
            );
        }
    }
}

/// Every context the file's cases evaluate, plus an empty one.
fn contexts(file: &Value) -> Vec<Context> {
    let mut contexts = vec![Context::default()];
    for case in file["cases"].as_array().into_iter().flatten() {
        if let Ok(ctx) = serde_json::from_value(case["context"].clone()) {
            contexts.push(ctx);
        }
    }
    contexts
}

fn case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files: Vec<PathBuf> = ["cases", "compile_errors"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "case files not found");
    files
}
