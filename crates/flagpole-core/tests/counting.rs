//! Evaluation counting (`Snapshot::with_counting`, `Snapshot::drain_counts`): what is
//! drained equals exactly what was evaluated, through every entry point and for every
//! reason and error kind, while other threads evaluate, across recompiles, and nothing
//! when counting is off.
//!
//! The expected counts come from the evaluation case files (`tests/cases/*.json`): each
//! case says which variant and reason its flag gives, so evaluating it `k` times must
//! drain as `k` evaluations of that (flag, version, variant, reason, rule, error).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Barrier};

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::wire::EvalCount;
use flagpole_core::{Context, MAX_UNKNOWN_FLAGS, Snapshot, UNKNOWN_FLAGS_OVERFLOW, validate_key};
use serde_json::{Value, json};

/// What a count is of: (flag, version, variant, reason, rule, error).
type Identity = (
    String,
    u64,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn identity(c: &EvalCount) -> Identity {
    (
        c.flag.clone(),
        c.flag_version,
        c.variant.clone(),
        c.reason.clone(),
        c.rule.clone(),
        c.error.clone(),
    )
}

/// Drains `snapshot` into totals per identity, checking the window and that no count is 0.
fn drain(snapshot: &Snapshot, totals: &mut BTreeMap<Identity, u64>) {
    let mut out = Vec::new();
    let n = snapshot.drain_counts(1_000, 2_000, &mut out);
    assert_eq!(n, out.len());
    for c in &out {
        assert!(
            c.count > 0 && c.start_ms == 1_000 && c.end_ms == 2_000,
            "{c:?}"
        );
        *totals.entry(identity(c)).or_default() += c.count;
    }
}

fn drained(snapshot: &Snapshot) -> BTreeMap<Identity, u64> {
    let mut totals = BTreeMap::new();
    drain(snapshot, &mut totals);
    totals
}

fn context(raw: &Value) -> Context {
    let mut ctx = Context::new(raw["key"].as_str().unwrap_or_default());
    for (name, value) in raw["attributes"].as_object().into_iter().flatten() {
        ctx = ctx.with(name, value.clone());
    }
    ctx
}

/// The identity a case file's expected reason (`{"kind": "RULE_MATCH", "rule_id": ...}`)
/// and variant stand for.
fn expected(flag: &str, version: u64, variant: Option<&str>, reason: &Value) -> Identity {
    let kind = reason["kind"].as_str().unwrap().to_string();
    let error = reason["error"].as_str().map(str::to_string);
    let rule = (kind == "RULE_MATCH").then(|| match reason["rule_id"].as_str() {
        Some("") | None => format!("#{}", reason["rule_index"]),
        Some(id) => id.to_string(),
    });
    let (version, variant) = match error.as_deref() {
        // A key no flag could have is counted with the other unknown keys.
        Some("FLAG_NOT_FOUND") if validate_key(flag).is_err() => {
            return (UNKNOWN_FLAGS_OVERFLOW.into(), 0, None, kind, rule, error);
        }
        Some("FLAG_NOT_FOUND") => (0, None),
        Some(_) => (version, None),
        None => (version, variant.map(str::to_string)),
    };
    (flag.to_string(), version, variant, kind, rule, error)
}

#[test]
fn counts_equal_what_was_evaluated_for_every_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut seen = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Distinct versions per flag, so that a count reported against the wrong flag's
        // version shows.
        let mut versions = BTreeMap::new();
        for (i, flag) in file["environment"]["flags"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            let key = flag["flag"]["key"].as_str().unwrap().to_string();
            flag["version"] = json!(100 + i);
            // The first flag of a key is the one evaluated.
            versions.entry(key).or_insert(100 + i as u64);
        }
        let env: EnvironmentSnapshot = serde_json::from_value(file["environment"].clone()).unwrap();
        let snapshot = Snapshot::compile(&env).with_counting();
        assert!(snapshot.is_counting());

        let mut want: BTreeMap<Identity, u64> = BTreeMap::new();
        for (j, case) in file["cases"].as_array().unwrap().iter().enumerate() {
            let key = case["flag"].as_str().unwrap();
            let ctx = context(&case["context"]);
            let version = versions.get(key).copied().unwrap_or(0);
            let expect = &case["expect"];
            let variant = expect["variant"].as_str();
            // Each case a different number of times, through each untyped entry point.
            let times = 1 + j as u64 % 3;
            for t in 0..times {
                match t {
                    0 => drop(snapshot.evaluate(key, &ctx)),
                    1 => drop(snapshot.json_detail(key, &ctx, &Value::Null)),
                    _ => drop(snapshot.json_value(key, &ctx, &Value::Null)),
                }
            }
            *want
                .entry(expected(key, version, variant, &expect["reason"]))
                .or_default() += times;
            // Typed calls may give WRONG_TYPE instead; each is made as `*_detail` and
            // as `*_value`.
            if let Some(typed) = case.get("typed") {
                let reason = typed.get("expect_reason").unwrap_or(&expect["reason"]);
                let default = &typed["default"];
                match typed["call"].as_str().unwrap() {
                    "bool" => {
                        snapshot.bool_detail(key, &ctx, false);
                        snapshot.bool_value(key, &ctx, false);
                    }
                    "string" => {
                        snapshot.string_detail(key, &ctx, "");
                        snapshot.string_value(key, &ctx, "");
                    }
                    "number" => {
                        snapshot.number_detail(key, &ctx, 0.0);
                        snapshot.number_value(key, &ctx, 0.0);
                    }
                    _ => {
                        snapshot.json_detail(key, &ctx, default);
                        snapshot.json_value(key, &ctx, default);
                    }
                }
                *want
                    .entry(expected(key, version, variant, reason))
                    .or_default() += 2;
            }
        }
        let got = drained(&snapshot);
        assert_eq!(got, want, "{}", path.display());
        assert!(
            drained(&snapshot).is_empty(),
            "a second drain repeats counts"
        );
        seen.extend(got.keys().map(|(_, _, _, reason, rule, error)| {
            (
                reason.clone(),
                rule.as_ref().is_some_and(|r| r.starts_with('#')),
                error.clone(),
            )
        }));
        files += 1;
    }
    assert!(files >= 10, "only {files} case files");
    // Every reason and error kind a snapshot can give was counted at least once.
    let reasons: BTreeSet<&str> = seen.iter().map(|(r, _, _)| r.as_str()).collect();
    let errors: BTreeSet<&str> = seen.iter().filter_map(|(_, _, e)| e.as_deref()).collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            "ERROR",
            "FALLTHROUGH",
            "OFF",
            "PREREQUISITE_FAILED",
            "RULE_MATCH",
            "TARGET_MATCH"
        ])
    );
    assert_eq!(
        errors,
        BTreeSet::from([
            "FLAG_NOT_FOUND",
            "INVALID_FLAG",
            "MISSING_BUCKET_KEY",
            "WRONG_TYPE"
        ])
    );
    assert!(
        seen.iter().any(|(_, unnamed_rule, _)| *unnamed_rule),
        "no rule without an id was counted (as `#i`)"
    );
}

/// Flags for the tests below: an on/off flag with one rule, and a 50% rollout.
fn env(version: u64) -> EnvironmentSnapshot {
    let variants = json!([{"key": "on", "value": true}, {"key": "off", "value": false}]);
    serde_json::from_value(json!({"version": version, "flags": [
        {"flag": {"key": "rule", "kind": "boolean", "variants": variants},
         "version": version,
         "config": {"enabled": true, "off_variant": "off",
            "rules": [{"id": "no", "clauses": [
                {"attribute": "country", "op": "in", "values": ["no"]}],
                "serve": {"variant": "on"}}],
            "default_serve": {"variant": "off"}}},
        {"flag": {"key": "split", "kind": "boolean", "variants": variants},
         "config": {"enabled": true, "off_variant": "off",
            "default_serve": {"rollout": {"weights": [
                {"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}}}
    ]}))
    .unwrap()
}

fn total(counts: &BTreeMap<Identity, u64>) -> u64 {
    counts.values().sum()
}

#[test]
fn concurrent_evaluations_are_all_drained_exactly_once() {
    // More threads than exclusive stripes (64), all alive at once, so that some count on
    // the shared stripe.
    const THREADS: usize = 72;
    const EVALUATIONS: u64 = 20_000;
    let snapshot = Arc::new(Snapshot::compile_strict(&env(1)).unwrap().with_counting());
    let barrier = Barrier::new(THREADS);
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut totals = BTreeMap::new();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (snapshot, barrier) = (&snapshot, &barrier);
                s.spawn(move || {
                    let ctx = Context::new(format!("user-{t}")).with("country", "no");
                    for i in 0..EVALUATIONS {
                        let key = if i % 2 == 0 { "rule" } else { "split" };
                        std::hint::black_box(snapshot.bool_value(key, &ctx, false));
                        if i == 0 {
                            barrier.wait();
                        }
                    }
                })
            })
            .collect();
        let drainer = s.spawn(|| {
            let mut totals = BTreeMap::new();
            let mut drains = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                drain(&snapshot, &mut totals);
                drains += 1;
            }
            (totals, drains)
        });
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let (drained, drains) = drainer.join().unwrap();
        assert!(drains > 1, "the drainer never ran alongside the evaluators");
        totals = drained;
    });
    drain(&snapshot, &mut totals);
    assert_eq!(total(&totals), THREADS as u64 * EVALUATIONS);
    let rule = ("rule".to_string(), 1, Some("on".to_string()));
    let rule_matches: u64 = totals
        .iter()
        .filter(|(k, _)| (k.0.clone(), k.1, k.2.clone()) == rule && k.4.as_deref() == Some("no"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(rule_matches, THREADS as u64 * EVALUATIONS / 2);
}

#[test]
fn a_recompiled_snapshot_counts_separately() {
    let (env1, env2) = (env(1), env(2));
    let old = Snapshot::compile_strict(&env1).unwrap().with_counting();
    let ctx = Context::new("u").with("country", "no");
    for _ in 0..3 {
        old.bool_value("rule", &ctx, false);
    }
    let new = Snapshot::recompile(&env2, &env1, &old);
    assert!(new.is_counting(), "recompiling a counting snapshot counts");
    for _ in 0..5 {
        new.bool_detail("rule", &ctx, false);
    }
    old.bool_value("rule", &ctx, false); // an evaluator still holding the old one
    let id = |version| {
        let on = Some("on".to_string());
        let reason = "RULE_MATCH".to_string();
        (
            "rule".to_string(),
            version,
            on,
            reason,
            Some("no".into()),
            None,
        )
    };
    assert_eq!(drained(&old), BTreeMap::from([(id(1), 4)]));
    assert_eq!(drained(&new), BTreeMap::from([(id(2), 5)]));
}

#[test]
fn unknown_flags_are_capped() {
    let snapshot = Snapshot::compile_strict(&env(1)).unwrap().with_counting();
    let ctx = Context::new("u");
    let extra = 7;
    for i in 0..MAX_UNKNOWN_FLAGS + extra {
        snapshot.evaluate(&format!("missing-{i}"), &ctx);
        snapshot.bool_value(&format!("missing-{i}"), &ctx, false);
    }
    // Keys no flag can have are counted together too.
    snapshot.evaluate("", &ctx);
    snapshot.evaluate("no spaces allowed", &ctx);
    let counts = drained(&snapshot);
    let overflow = counts
        .iter()
        .find(|(k, _)| k.0 == UNKNOWN_FLAGS_OVERFLOW)
        .map(|(_, n)| *n);
    assert_eq!(overflow, Some(2 * extra as u64 + 2));
    assert_eq!(counts.len(), MAX_UNKNOWN_FLAGS + 1);
    assert!(
        counts
            .iter()
            .all(|(k, n)| k.3 == "ERROR" && k.5.as_deref() == Some("FLAG_NOT_FOUND") && *n >= 2)
    );
    // The cap is per window: after a drain, new keys are counted again.
    snapshot.evaluate("missing-new", &ctx);
    assert_eq!(drained(&snapshot).keys().next().unwrap().0, "missing-new");
}

#[test]
fn a_snapshot_without_counting_counts_nothing() {
    let snapshot = Snapshot::compile_strict(&env(1)).unwrap();
    assert!(!snapshot.is_counting());
    let ctx = Context::new("u").with("country", "no");
    snapshot.evaluate("rule", &ctx);
    snapshot.bool_value("split", &ctx, false);
    snapshot.evaluate("missing", &ctx);
    let mut out = Vec::new();
    assert_eq!(snapshot.drain_counts(0, 1, &mut out), 0);
    assert!(out.is_empty());
    // Nor does one recompiled from it.
    let next = Snapshot::recompile(&env(2), &env(1), &snapshot);
    next.evaluate("rule", &ctx);
    assert!(!next.is_counting());
    assert_eq!(next.drain_counts(0, 1, &mut out), 0);
}

#[test]
fn uncounted_evaluations_answer_the_same_and_count_nothing() {
    let plain = Snapshot::compile_strict(&env(1)).unwrap();
    let counting = Snapshot::compile_strict(&env(1)).unwrap().with_counting();
    for ctx in [
        Context::new("u").with("country", "no"),
        Context::new("v"),
        Context::new(""),
    ] {
        for key in ["rule", "split", "missing", ""] {
            assert_eq!(
                counting.evaluate_uncounted(key, &ctx),
                plain.evaluate(key, &ctx),
                "{key}"
            );
        }
    }
    assert!(drained(&counting).is_empty());
    // The same snapshot still counts what is evaluated through the counted calls.
    counting.evaluate("rule", &Context::new("v"));
    assert_eq!(total(&drained(&counting)), 1);
}
