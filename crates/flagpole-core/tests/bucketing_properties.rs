//! Statistical and property tests of bucketing, through compiled flags and
//! `Snapshot::evaluate` wherever the property is about rollouts.
//!
//! The statistical tests use fixed keys (`user-0` .. `user-99999`), so they are deterministic:
//! the bounds are the ones a fair hash would pass with probability 0.999, and an engine that
//! e.g. ignored the salt or filled slices from the wrong end fails them every time.

use std::fmt::Write as _;

use flagpole_core::bucket::{bucket, bucket_of_hash, hash_salted, murmur3_32};
use flagpole_core::model::{EnvironmentSnapshot, TOTAL_WEIGHT};
use flagpole_core::{Context, Snapshot};
use proptest::prelude::*;
use serde_json::{Value, json};

const KEYS: usize = 100_000;

/// Chi-square critical values at p = 0.001, upper tail, and for 99 degrees of freedom the
/// lower tail too (a fit that is too good means the "hash" is not random).
const CHI2_99_UPPER: f64 = 148.230;
const CHI2_99_LOWER: f64 = 61.137;
const CHI2_2_UPPER: f64 = 13.816;
const CHI2_1_UPPER: f64 = 10.828;

/// A string flag served by a rollout of `weights` (variant, weight in 0.001%).
fn rollout_flag(key: &str, salt: &str, weights: &[(&str, u32)]) -> Value {
    let variants: Vec<Value> = weights
        .iter()
        .map(|(v, _)| json!({"key": v, "value": v}))
        .collect();
    let weights: Vec<Value> = weights
        .iter()
        .map(|(v, w)| json!({"variant": v, "weight": w}))
        .collect();
    json!({
        "flag": {"key": key, "kind": "string", "variants": variants, "salt": salt},
        "config": {"enabled": true, "off_variant": weights[0]["variant"],
                   "default_serve": {"rollout": {"weights": weights}}}
    })
}

fn compile(flags: Vec<Value>) -> Snapshot {
    let env: EnvironmentSnapshot =
        serde_json::from_value(json!({"version": 1, "flags": flags})).unwrap();
    Snapshot::compile_strict(&env).expect("test flags compile")
}

/// Calls `f` with a context for each of `user-0` .. `user-{n-1}`, reusing one allocation.
fn for_each_user(n: usize, mut f: impl FnMut(usize, &Context)) {
    let mut ctx = Context::new("");
    for i in 0..n {
        ctx.key.clear();
        write!(ctx.key, "user-{i}").unwrap();
        f(i, &ctx);
    }
}

/// Which of the first `n` users get `variant` of `flag`.
fn selected(snapshot: &Snapshot, flag: &str, variant: &str, n: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(n);
    for_each_user(n, |_, ctx| {
        let eval = snapshot.evaluate(flag, ctx);
        assert!(eval.reason.in_rollout(), "{flag}: {eval:?}");
        out.push(eval.variant == Some(variant));
    });
    out
}

fn count(set: &[bool]) -> usize {
    set.iter().filter(|&&b| b).count()
}

fn overlap(a: &[bool], b: &[bool]) -> usize {
    a.iter().zip(b).filter(|&(&x, &y)| x && y).count()
}

fn pct(n: usize) -> f64 {
    100.0 * n as f64 / KEYS as f64
}

fn chi_square(observed: &[usize], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum()
}

/// Chi-square of the 2x2 table of two selections, 1 degree of freedom: are they independent?
fn independence_chi_square(a: &[bool], b: &[bool]) -> f64 {
    let n = a.len() as f64;
    let (na, nb, both) = (count(a) as f64, count(b) as f64, overlap(a, b) as f64);
    let observed = [both, na - both, nb - both, n - na - nb + both];
    let expected = [
        na * nb / n,
        na * (n - nb) / n,
        (n - na) * nb / n,
        (n - na) * (n - nb) / n,
    ];
    observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e).powi(2) / e)
        .sum()
}

/// Two 10% selections over the same keys look independent: the overlap is about 1% of
/// keys (10% x 10%), not about 10%.
fn assert_independent(what: &str, a: &[bool], b: &[bool]) {
    let both = overlap(a, b);
    let chi2 = independence_chi_square(a, b);
    eprintln!(
        "{what}: {:.3}% and {:.3}% selected, overlap {:.3}% of keys, chi-square(1) {chi2:.2}",
        pct(count(a)),
        pct(count(b)),
        pct(both)
    );
    // sd of the overlap is ~31 keys (0.031%); 0.15% is ~5 sd, far from 10%.
    assert!(
        (850..=1150).contains(&both),
        "{what}: overlap {both} keys, want ~1000 (1% of {KEYS})"
    );
    assert!(
        chi2 < CHI2_1_UPPER,
        "{what}: chi-square {chi2:.2} says the selections are dependent"
    );
}

#[test]
fn buckets_are_uniform() {
    for salt in ["new-checkout", "pricing-page.v2", "s"] {
        let mut bins = [0usize; 100];
        for_each_user(KEYS, |_, ctx| {
            let b = bucket(salt, &ctx.key);
            assert!(b < TOTAL_WEIGHT);
            bins[(b / 1000) as usize] += 1;
        });
        let chi2 = chi_square(&bins, &[KEYS as f64 / 100.0; 100]);
        let (min, max) = (bins.iter().min().unwrap(), bins.iter().max().unwrap());
        eprintln!("uniformity, salt {salt:?}: chi-square(99) {chi2:.2}, bins {min}..={max}");
        assert!(
            (CHI2_99_LOWER..CHI2_99_UPPER).contains(&chi2),
            "salt {salt:?}: chi-square {chi2:.2} outside [{CHI2_99_LOWER}, {CHI2_99_UPPER}) \
             (p = 0.001 either side, 99 d.o.f.); bins {bins:?}"
        );
    }
}

#[test]
fn ten_percent_rollout_selects_ten_percent() {
    let snapshot = compile(vec![rollout_flag(
        "new-checkout",
        "",
        &[("on", 10_000), ("off", 90_000)],
    )]);
    let on = count(&selected(&snapshot, "new-checkout", "on", KEYS));
    eprintln!("10% rollout: {on} of {KEYS} keys on ({:.3}%)", pct(on));
    // sd is ~95 keys; the tolerance is 10% ± 0.3%.
    assert!(
        (9_700..=10_300).contains(&on),
        "{on} keys on, want 10% ± 0.3% of {KEYS}"
    );
}

#[test]
fn three_way_split_is_even() {
    let weights = [("a", 33_333), ("b", 33_333), ("c", 33_334)];
    let snapshot = compile(vec![rollout_flag("pricing-page", "", &weights)]);
    let mut counts = [0usize; 3];
    for_each_user(KEYS, |_, ctx| {
        let variant = snapshot.evaluate("pricing-page", ctx).variant;
        let i = weights
            .iter()
            .position(|(v, _)| Some(*v) == variant)
            .unwrap_or_else(|| panic!("served {variant:?}"));
        counts[i] += 1;
    });
    let expected: Vec<f64> = weights
        .iter()
        .map(|&(_, w)| KEYS as f64 * f64::from(w) / f64::from(TOTAL_WEIGHT))
        .collect();
    let chi2 = chi_square(&counts, &expected);
    eprintln!(
        "3-way split: {:.3}% / {:.3}% / {:.3}%, chi-square(2) {chi2:.2}",
        pct(counts[0]),
        pct(counts[1]),
        pct(counts[2])
    );
    for (c, e) in counts.iter().zip(&expected) {
        // sd is ~149 keys; allow ± 0.5% of keys.
        assert!((*c as f64 - e).abs() <= 500.0, "counts {counts:?}");
    }
    assert!(
        chi2 < CHI2_2_UPPER,
        "chi-square {chi2:.2}, counts {counts:?}"
    );
}

#[test]
fn flags_are_independent() {
    let ten = [("on", 10_000), ("off", 90_000)];
    let pairs = [
        ("new-checkout", "new-checkout-v2"),
        ("exp-1", "exp-2"),
        ("a", "b"),
    ];
    for (x, y) in pairs {
        let snapshot = compile(vec![rollout_flag(x, "", &ten), rollout_flag(y, "", &ten)]);
        let a = selected(&snapshot, x, "on", KEYS);
        let b = selected(&snapshot, y, "on", KEYS);
        assert_independent(&format!("flags {x:?} and {y:?}"), &a, &b);
    }
}

#[test]
fn a_new_salt_rerandomises_and_a_shared_salt_agrees() {
    let ten = [("on", 10_000), ("off", 90_000)];
    let before = compile(vec![rollout_flag("checkout", "", &ten)]);
    let after = compile(vec![rollout_flag("checkout", "checkout-rerun-2", &ten)]);
    let a = selected(&before, "checkout", "on", KEYS);
    let b = selected(&after, "checkout", "on", KEYS);
    assert_independent("flag \"checkout\" before and after a new salt", &a, &b);

    // Two flags with one salt pick the same people, for a 10% rollout and a 3-way split.
    let split = [("x", 33_333), ("y", 33_333), ("z", 33_334)];
    let shared = compile(vec![
        rollout_flag("banner", "launch-2024", &ten),
        rollout_flag("checkout", "launch-2024", &ten),
        rollout_flag("layout", "launch-2024", &split),
        rollout_flag("pricing", "launch-2024", &split),
        // A salt equal to the key is the same as no salt.
        rollout_flag("explicit", "explicit", &ten),
        rollout_flag("implicit-twin", "", &ten),
    ]);
    let implicit = compile(vec![rollout_flag("explicit", "", &ten)]);
    let mut on = 0;
    for_each_user(KEYS, |_, ctx| {
        let banner = shared.evaluate("banner", ctx).variant;
        assert_eq!(banner, shared.evaluate("checkout", ctx).variant, "{ctx:?}");
        assert_eq!(
            shared.evaluate("layout", ctx).variant,
            shared.evaluate("pricing", ctx).variant,
            "{ctx:?}"
        );
        assert_eq!(
            shared.evaluate("explicit", ctx).variant,
            implicit.evaluate("explicit", ctx).variant,
            "{ctx:?}"
        );
        on += usize::from(banner == Some("on"));
    });
    eprintln!("shared salt: all {KEYS} keys agree; {:.3}% on", pct(on));
    assert!((9_700..=10_300).contains(&on), "{on}");
}

#[test]
fn evaluation_is_deterministic() {
    let weights = [("a", 25_000), ("b", 25_000), ("c", 50_000)];
    let first = compile(vec![rollout_flag("det", "", &weights)]);
    let second = compile(vec![rollout_flag("det", "", &weights)]);
    for_each_user(10_000, |_, ctx| {
        let v = first.evaluate("det", ctx).variant;
        assert_eq!(v, first.evaluate("det", ctx).variant);
        assert_eq!(v, second.evaluate("det", ctx).variant);
        assert_eq!(v, first.evaluate("det", &ctx.clone()).variant);
    });
}

/// A flag key as `validate_key` accepts it.
fn flag_key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,40}"
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Raising a rollout from p to q > p never removes anyone who was in: the first slice
    /// only grows. In a three-way split where the middle slice shrinks to make room, the
    /// last slice keeps everyone too, and the only moves are from the middle to the first.
    #[test]
    fn growing_the_first_slice_only_adds(
        key in flag_key(),
        salt in prop_oneof![Just(String::new()), "\\PC{1,20}"],
        p in 0u32..TOTAL_WEIGHT,
        delta in any::<u32>(),
        last in any::<u32>(),
        users in prop::collection::vec("\\PC{1,24}", 200),
    ) {
        let q = p + 1 + delta % (TOTAL_WEIGHT - p);
        let last = last % (TOTAL_WEIGHT - q + 1);
        let two = |w: u32| rollout_flag(&key, &salt, &[("in", w), ("out", TOTAL_WEIGHT - w)]);
        let three = |w: u32| {
            rollout_flag(&key, &salt, &[("a", w), ("b", TOTAL_WEIGHT - w - last), ("c", last)])
        };
        let (small2, big2) = (compile(vec![two(p)]), compile(vec![two(q)]));
        let (small3, big3) = (compile(vec![three(p)]), compile(vec![three(q)]));
        for user in &users {
            let ctx = Context::new(user.as_str());
            let (before, after) = (small2.evaluate(&key, &ctx), big2.evaluate(&key, &ctx));
            prop_assert!(before.variant.is_some() && after.variant.is_some());
            if before.variant == Some("in") {
                prop_assert_eq!(after.variant, Some("in"), "{} left at {}% -> {}%", user, p, q);
            }
            let (before, after) = (small3.evaluate(&key, &ctx), big3.evaluate(&key, &ctx));
            match (before.variant, after.variant) {
                (Some(x), Some(y)) if x == y => {}
                (Some("b"), Some("a")) => {}
                moved => prop_assert!(false, "{} moved {:?} at {}% -> {}%", user, moved, p, q),
            }
        }
    }

    /// hash_salted hashes exactly `salt ++ ":" ++ value`, on both sides of its stack buffer.
    #[test]
    fn hash_salted_hashes_the_concatenation(
        salt in prop::collection::vec(any::<u8>(), 0..300),
        value in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let joined = [salt.as_slice(), b":", value.as_slice()].concat();
        prop_assert_eq!(hash_salted(&salt, &value), murmur3_32(&joined));
    }

    /// The bucket mapping covers [0, TOTAL_WEIGHT) and is monotonic in the hash.
    #[test]
    fn bucket_of_hash_is_monotonic_and_in_range(a in any::<u32>(), b in any::<u32>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(bucket_of_hash(lo) <= bucket_of_hash(hi));
        prop_assert!(bucket_of_hash(hi) < TOTAL_WEIGHT);
    }

    /// Same inputs, same bucket; and the bucket is the mapped hash.
    #[test]
    fn bucket_is_a_function_of_salt_and_value(salt in "\\PC{0,30}", value in "\\PC{0,60}") {
        let b = bucket(&salt, &value);
        prop_assert_eq!(b, bucket(&salt, &value));
        prop_assert_eq!(b, bucket_of_hash(hash_salted(salt.as_bytes(), value.as_bytes())));
    }
}
