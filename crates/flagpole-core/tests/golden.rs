//! Checks the engine against the golden vectors in `tests/golden/`, which were generated
//! by an independent murmur3 (Python's `mmh3`, see `tests/golden/generate.py`). Every
//! other SDK must pass the same files.

use std::path::PathBuf;

use flagpole_core::bucket::{bucket, bucket_of_hash, hash_salted, murmur3_32};
use flagpole_core::model::{EnvironmentSnapshot, TOTAL_WEIGHT};
use flagpole_core::{Context, Reason, Snapshot};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    salt: String,
    value: String,
    input_hex: String,
    hash: u32,
    bucket: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutCase {
    name: String,
    flag_key: String,
    #[serde(default)]
    salt: String,
    #[serde(default)]
    bucket_by: String,
    weights: Vec<Value>,
    context: Value,
    expected: Expected,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    variant: Option<String>,
    error: Option<String>,
    bucketing_text: Option<String>,
    input_hex: Option<String>,
    hash: Option<u32>,
    bucket: Option<u32>,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let items: Vec<T> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    assert!(!items.is_empty(), "{} has no vectors", path.display());
    items
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd-length hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn joined(salt: &str, value: &str) -> Vec<u8> {
    [salt.as_bytes(), b":", value.as_bytes()].concat()
}

#[test]
fn bucketing_vectors() {
    let vectors: Vec<Vector> = load("bucketing.json");
    assert!(
        vectors.len() >= 150,
        "only {} vectors; regenerate with generate.py",
        vectors.len()
    );
    let mut failures = Vec::new();
    for v in &vectors {
        let input = unhex(&v.input_hex);
        // The file is self-consistent: input_hex is exactly salt ++ ":" ++ value.
        assert_eq!(input, joined(&v.salt, &v.value), "input_hex of {v:?}");
        let got = (
            murmur3_32(&input),
            hash_salted(v.salt.as_bytes(), v.value.as_bytes()),
            bucket_of_hash(v.hash),
            bucket(&v.salt, &v.value),
        );
        if got != (v.hash, v.hash, v.bucket, v.bucket) {
            failures.push(format!(
                "salt={:?} value={:?}: want hash {} bucket {}, got (murmur3_32, hash_salted, \
                 bucket_of_hash, bucket) = {got:?}",
                v.salt, v.value, v.hash, v.bucket
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors disagree:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

/// Guards the file against being trimmed of the cases that matter.
#[test]
fn bucketing_vectors_cover_the_edge_cases() {
    let vectors: Vec<Vector> = load("bucketing.json");
    let input_len = |v: &Vector| v.salt.len() + 1 + v.value.len();
    let has = |what: &str, f: &dyn Fn(&Vector) -> bool| {
        assert!(vectors.iter().any(f), "no vector with {what}");
    };
    has("an empty value", &|v| v.value.is_empty());
    has("a 2-byte UTF-8 character", &|v| {
        v.value.chars().any(|c| c.len_utf8() == 2)
    });
    has("a 3-byte UTF-8 character", &|v| {
        v.value.chars().any(|c| c.len_utf8() == 3)
    });
    has("an emoji (4-byte UTF-8)", &|v| {
        v.value.chars().any(|c| c.len_utf8() == 4)
    });
    has("a non-ASCII salt", &|v| !v.salt.is_ascii());
    has("an input of exactly 256 bytes", &|v| input_len(v) == 256);
    has("an input of 257 bytes", &|v| input_len(v) == 257);
    has("an input over 1000 bytes", &|v| input_len(v) > 1000);
    has("a number as text", &|v| v.value == "42");
    has("a float as text", &|v| v.value == "1.5");
    has("a boolean as text", &|v| v.value == "true");
    has("bucket 0", &|v| v.bucket == 0);
    has("the last bucket", &|v| v.bucket == TOTAL_WEIGHT - 1);
    for tail in 0..4 {
        has("every murmur3 tail length", &|v| input_len(v) % 4 == tail);
    }
    let salts: std::collections::HashSet<_> = vectors.iter().map(|v| &v.salt).collect();
    assert!(salts.len() >= 20, "only {} distinct salts", salts.len());
}

/// The single-flag environment a rollout case describes: a string flag whose variants are
/// the rollout's, served by the default rule.
fn environment(case: &RolloutCase) -> EnvironmentSnapshot {
    let variants: Vec<Value> = case
        .weights
        .iter()
        .map(|w| json!({"key": w["variant"], "value": w["variant"]}))
        .collect();
    serde_json::from_value(json!({
        "version": 1,
        "flags": [{
            "flag": {"key": case.flag_key, "kind": "string", "variants": variants,
                     "salt": case.salt},
            "config": {
                "enabled": true,
                "off_variant": case.weights[0]["variant"],
                "default_serve": {"rollout": {"bucket_by": case.bucket_by,
                                              "weights": case.weights}}
            }
        }]
    }))
    .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

#[test]
fn rollout_vectors() {
    let cases: Vec<RolloutCase> = load("rollouts.json");
    assert!(cases.len() >= 20, "only {} rollout cases", cases.len());
    let (mut served, mut errors) = (0, 0);
    for case in &cases {
        let name = &case.name;
        let snapshot = Snapshot::compile_strict(&environment(case))
            .unwrap_or_else(|e| panic!("{name}: does not compile: {e:?}"));
        let ctx: Context = serde_json::from_value(case.context.clone())
            .unwrap_or_else(|e| panic!("{name}: bad context: {e}"));
        let eval = snapshot.evaluate(&case.flag_key, &ctx);
        let want = &case.expected;

        // The intermediate values are the reference's, so check them against the bucket
        // functions too: a failure then says which step disagrees.
        if let (Some(text), Some(hex), Some(hash), Some(b)) = (
            &want.bucketing_text,
            &want.input_hex,
            want.hash,
            want.bucket,
        ) {
            let salt = if case.salt.is_empty() {
                &case.flag_key
            } else {
                &case.salt
            };
            assert_eq!(unhex(hex), joined(salt, text), "{name}: input_hex");
            assert_eq!(
                hash_salted(salt.as_bytes(), text.as_bytes()),
                hash,
                "{name}"
            );
            assert_eq!(bucket_of_hash(hash), b, "{name}");
        }

        match (&want.variant, &want.error) {
            (Some(variant), None) => {
                served += 1;
                assert_eq!(eval.variant, Some(variant.as_str()), "{name}: {eval:?}");
                assert_eq!(
                    eval.reason,
                    Reason::Fallthrough { in_rollout: true },
                    "{name}"
                );
            }
            (None, Some(error)) => {
                errors += 1;
                match eval.reason {
                    Reason::Error { error: got } => assert_eq!(got.code(), error, "{name}"),
                    other => panic!("{name}: want error {error}, got {other:?}"),
                }
                assert_eq!(eval.variant, None, "{name}");
            }
            _ => panic!("{name}: expected needs exactly one of variant and error"),
        }
    }
    assert!(served > 0 && errors > 0, "{served} served, {errors} errors");
}
