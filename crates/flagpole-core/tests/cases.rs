//! Runs the evaluation cases in `tests/cases/*.json` and the compilation cases in
//! `tests/compile_errors/*.json`.
//!
//! Cases are data so that they are cheap to add and so that an SDK in another language can
//! run the same files. Each test reports every failing case (file, name, expected, actual)
//! before failing, and fails on an empty directory, an empty file or a file that does not
//! parse, so a typo cannot silently turn a case off.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flagpole_core::model::EnvironmentSnapshot;
use flagpole_core::{Attributes, Context, Snapshot};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// One file of `tests/cases/`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// What the file covers; required so every file says why it exists.
    #[allow(dead_code)]
    description: String,
    /// Compile with the lenient [`Snapshot::compile`] (the file must then contain
    /// invalid flags); otherwise [`Snapshot::compile_strict`] must succeed.
    #[serde(default)]
    lenient: bool,
    environment: Value,
    cases: Vec<Case>,
}

/// One file of `tests/compile_errors/`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompileErrorFile {
    #[allow(dead_code)]
    description: String,
    environment: Value,
    /// Every error `compile_strict` must report, in any order.
    errors: Vec<ExpectedError>,
    /// Evaluations against the leniently compiled snapshot.
    #[serde(default)]
    cases: Vec<Case>,
}

#[derive(Deserialize, Debug, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
struct ExpectedError {
    subject: Value,
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    flag: String,
    context: CaseContext,
    expect: Expect,
    #[serde(default)]
    typed: Option<Typed>,
}

/// Like [`Context`], but rejecting unknown fields so `"atributes"` is an error, not an
/// empty context.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseContext {
    #[serde(default)]
    key: String,
    #[serde(default)]
    attributes: Map<String, Value>,
}

impl CaseContext {
    fn to_context(&self) -> Context {
        Context {
            key: self.key.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Attributes>(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Absent means "no value" (an error); `null` is a served JSON null.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    variant: Option<String>,
    /// Compared with `serde_json::to_value(evaluation.reason)`.
    reason: Value,
}

/// A typed call (`bool_detail`, ...) on the same flag and context.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Typed {
    call: Call,
    default: Value,
    expect_value: Value,
    /// Defaults to `expect.reason`. The expected variant is `expect.variant`, or none
    /// when this reason is an error.
    #[serde(default)]
    expect_reason: Option<Value>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "snake_case")]
enum Call {
    Bool,
    String,
    Number,
    Json,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// The `.json` files of a directory, sorted; panics if there are none.
fn json_files(name: &str) -> Vec<PathBuf> {
    let path = dir(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", path.display());
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Reads and parses a case file, panicking with the file name on any error.
fn parse<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Deserialises the environment and rejects fields the model does not know (the model
/// types themselves accept unknown fields for forward compatibility): every key of the
/// raw JSON must survive a round trip through [`EnvironmentSnapshot`].
fn environment(path: &Path, raw: &Value) -> EnvironmentSnapshot {
    let env: EnvironmentSnapshot = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("{}: environment: {e}", path.display()));
    let round_trip = serde_json::to_value(&env).expect("environment serialises");
    let mut unknown = Vec::new();
    unknown_fields(raw, &round_trip, "environment", &mut unknown);
    assert!(
        unknown.is_empty(),
        "{}: unknown (misspelt?) or default-valued fields: {unknown:?}",
        path.display()
    );
    env
}

fn unknown_fields(raw: &Value, typed: &Value, at: &str, out: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r {
                match t.get(k) {
                    Some(tv) => unknown_fields(v, tv, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                unknown_fields(rv, tv, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("serialisable")
}

/// Runs one case; `Err` describes every mismatch.
fn run_case(snapshot: &Snapshot, case: &Case) -> Result<(), String> {
    let ctx = case.context.to_context();
    let mut problems = String::new();
    let mut check = |what: &str, expected: Value, actual: Value| {
        if expected != actual {
            let _ = write!(
                problems,
                "\n      {what}: expected {expected}, got {actual}"
            );
        }
    };

    let e = snapshot.evaluate(&case.flag, &ctx);
    check(
        "value",
        json(&case.expect.value),
        json(&e.value.cloned()), // absent and JSON null both print as null; see below
    );
    if case.expect.value.is_some() != e.value.is_some() {
        check(
            "value present",
            json(&case.expect.value.is_some()),
            json(&e.value.is_some()),
        );
    }
    check("variant", json(&case.expect.variant), json(&e.variant));
    check("reason", case.expect.reason.clone(), json(&e.reason));

    if let Some(t) = &case.typed {
        let want_reason = t.expect_reason.as_ref().unwrap_or(&case.expect.reason);
        let want_variant = if want_reason.get("kind") == Some(&Value::from("ERROR")) {
            None
        } else {
            case.expect.variant.clone()
        };
        let (value, variant, reason) = match t.call {
            Call::Bool => {
                let default = t.default.as_bool().expect("bool default");
                let d = snapshot.bool_detail(&case.flag, &ctx, default);
                (json(&d.value), d.variant, json(&d.reason))
            }
            Call::String => {
                let default = t.default.as_str().expect("string default");
                let d = snapshot.string_detail(&case.flag, &ctx, default);
                (json(&d.value), d.variant, json(&d.reason))
            }
            Call::Number => {
                let default = t.default.as_f64().expect("number default");
                let d = snapshot.number_detail(&case.flag, &ctx, default);
                (json(&d.value), d.variant, json(&d.reason))
            }
            Call::Json => {
                let d = snapshot.json_detail(&case.flag, &ctx, &t.default);
                (d.value.clone(), d.variant, json(&d.reason))
            }
        };
        let want_value = match t.call {
            // f64 results: compare as f64 so `3` and `3.0` agree.
            Call::Number => json(&t.expect_value.as_f64().expect("number expect_value")),
            _ => t.expect_value.clone(),
        };
        let call = format!("{:?}", t.call).to_lowercase();
        check(&format!("{call}_detail value"), want_value, value);
        check(
            &format!("{call}_detail variant"),
            json(&want_variant),
            json(&variant),
        );
        check(
            &format!("{call}_detail reason"),
            want_reason.clone(),
            reason,
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Runs `cases`, appending failures to `failures`; returns how many ran.
fn run_cases(
    file: &str,
    snapshot: &Snapshot,
    cases: &[Case],
    names: &mut HashSet<String>,
    failures: &mut Vec<String>,
) -> usize {
    for case in cases {
        if !names.insert(format!("{file}\u{0}{}", case.name)) {
            failures.push(format!("{file} › {}: duplicate case name", case.name));
        }
        if let Err(problems) = run_case(snapshot, case) {
            failures.push(format!(
                "{file} › {} (flag `{}`){problems}",
                case.name, case.flag
            ));
        }
    }
    cases.len()
}

/// Items of `want` not in `got` and of `got` not in `want`, counting duplicates.
fn multiset_diff<T: PartialEq + Clone>(want: &[T], got: &[T]) -> (Vec<T>, Vec<T>) {
    let mut extra = got.to_vec();
    let mut missing = Vec::new();
    for w in want {
        match extra.iter().position(|g| g == w) {
            Some(i) => {
                extra.remove(i);
            }
            None => missing.push(w.clone()),
        }
    }
    (missing, extra)
}

fn finish(what: &str, files: usize, cases: usize, failures: &[String]) {
    println!("{what}: {cases} cases in {files} files");
    assert!(cases > 0, "{what}: no cases ran");
    if !failures.is_empty() {
        panic!(
            "{what}: {} of {cases} cases failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

#[test]
fn evaluation_cases() {
    let files = json_files("cases");
    let (mut count, mut failures, mut names) = (0, Vec::new(), HashSet::new());
    for path in &files {
        let name = file_name(path);
        let file: CaseFile = parse(path);
        assert!(!file.cases.is_empty(), "{name}: no cases");
        let env = environment(path, &file.environment);
        let snapshot = if file.lenient {
            let snapshot = Snapshot::compile(&env);
            assert!(
                !snapshot.errors().is_empty(),
                "{name}: `lenient` is set but every flag compiles; drop it"
            );
            snapshot
        } else {
            match Snapshot::compile_strict(&env) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("{name}: environment does not compile: {:?}", e.0));
                    continue;
                }
            }
        };
        count += run_cases(&name, &snapshot, &file.cases, &mut names, &mut failures);
    }
    finish("evaluation cases", files.len(), count, &failures);
}

#[test]
fn compile_error_cases() {
    let files = json_files("compile_errors");
    let (mut count, mut failures, mut names) = (0, Vec::new(), HashSet::new());
    for path in &files {
        let name = file_name(path);
        let file: CompileErrorFile = parse(path);
        assert!(!file.errors.is_empty(), "{name}: no expected errors");
        let env = environment(path, &file.environment);

        // Strict compilation fails with exactly the expected (subject, path) pairs.
        let actual = match Snapshot::compile_strict(&env) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0,
        };
        for e in actual.iter().filter(|e| e.message.trim().is_empty()) {
            failures.push(format!("{name}: empty message for {e:?}"));
        }
        let got: Vec<ExpectedError> = actual
            .iter()
            .map(|e| ExpectedError {
                subject: json(&e.subject),
                path: e.path.clone(),
            })
            .collect();
        let want = &file.errors;
        let (missing, extra) = multiset_diff(want, &got);
        for m in missing {
            failures.push(format!("{name}: expected error not reported: {m:?}"));
        }
        for x in extra {
            let message = actual
                .iter()
                .find(|e| json(&e.subject) == x.subject && e.path == x.path)
                .map(|e| e.message.as_str())
                .unwrap_or_default();
            failures.push(format!("{name}: unexpected error: {x:?} ({message})"));
        }
        count += want.len(); // each expected error is a checked case

        // Validity never depends on `enabled` (a disabled flag's rules are checked all the
        // same): the server's kill switch relies on it to write without validating.
        let mut flipped = env.clone();
        for flag in &mut flipped.flags {
            let flag = std::sync::Arc::make_mut(flag);
            flag.config.enabled = !flag.config.enabled;
        }
        let flipped: Vec<ExpectedError> = match Snapshot::compile_strict(&flipped) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0,
        }
        .iter()
        .map(|e| ExpectedError {
            subject: json(&e.subject),
            path: e.path.clone(),
        })
        .collect();
        let (missing, extra) = multiset_diff(&got, &flipped);
        if !missing.is_empty() || !extra.is_empty() {
            failures.push(format!(
                "{name}: errors change with `enabled`: lost {missing:?}, gained {extra:?}"
            ));
        }

        // Lenient compilation reports the same errors and keeps everything else working:
        // a flag evaluates to INVALID_FLAG exactly when it has an error.
        let lenient = Snapshot::compile(&env);
        if lenient.errors() != actual.as_slice() {
            failures.push(format!("{name}: lenient and strict errors differ"));
        }
        let invalid = json(&serde_json::json!({"kind": "ERROR", "error": "INVALID_FLAG"}));
        let probe = Context::new("lenient-probe");
        for f in &env.flags {
            let key = &f.flag.key;
            if env.flags.iter().filter(|g| &g.flag.key == key).count() > 1 {
                continue; // duplicates: the first definition is the one evaluated
            }
            let subject = json(&flagpole_core::Subject::Flag(key.clone()));
            let has_error = got.iter().any(|g| g.subject == subject);
            let is_invalid = json(&lenient.evaluate(key, &probe).reason) == invalid;
            if has_error != is_invalid {
                failures.push(format!(
                    "{name}: flag `{key}` has_error={has_error} but evaluates INVALID_FLAG={is_invalid}"
                ));
            }
        }
        count += run_cases(&name, &lenient, &file.cases, &mut names, &mut failures);
    }
    finish(
        "compile-error cases (expected errors + lenient evaluations)",
        files.len(),
        count,
        &failures,
    );
}
