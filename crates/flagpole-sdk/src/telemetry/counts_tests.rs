//! Counts collected from the client's snapshots: a replaced snapshot is drained until its
//! last reader is gone and then dropped, nothing is lost or counted twice while
//! evaluations race changes and drains, and with telemetry off nothing counts.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};

use flagpole_core::Context;
use flagpole_core::model::EnvironmentSnapshot;
use serde_json::json;

use super::*;
use crate::shared::{ConnectionState, Shared, Source};

/// One boolean flag `f`, served `on`, whose flag version is the environment's `version`.
fn env(version: u64) -> EnvironmentSnapshot {
    serde_json::from_value(json!({"version": version, "flags": [{
        "flag": {"key": "f", "kind": "boolean", "variants": [
            {"key": "on", "value": true}, {"key": "off", "value": false}]},
        "version": version,
        "config": {"enabled": true, "off_variant": "off", "default_serve": {"variant": "on"}}
    }]}))
    .unwrap()
}

fn shared(telemetry: bool) -> Arc<Shared> {
    let shared = Arc::new(Shared::new(ConnectionState::Connecting));
    if telemetry {
        shared.telemetry.retired.enable();
    }
    shared
}

/// Drains `source` into `totals` per flag version (every count here is of `f`, `on`).
fn drain_into(source: &SnapshotCounts, totals: &mut BTreeMap<u64, u64>) {
    let mut out = Vec::new();
    source.drain(1_000, 2_000, &mut out);
    for c in out {
        assert_eq!(
            (c.flag.as_str(), c.variant.as_deref(), c.reason.as_str()),
            ("f", Some("on"), "FALLTHROUGH")
        );
        assert!(c.count > 0);
        *totals.entry(c.flag_version).or_default() += c.count;
    }
}

fn drained(source: &SnapshotCounts) -> BTreeMap<u64, u64> {
    let mut totals = BTreeMap::new();
    drain_into(source, &mut totals);
    totals
}

fn held(shared: &Shared) -> usize {
    shared.telemetry.retired.states.lock().unwrap().len()
}

#[test]
fn a_replaced_snapshot_is_drained_until_its_last_reader_is_gone() {
    let shared = shared(true);
    let source = SnapshotCounts {
        shared: shared.clone(),
    };
    let ctx = Context::new("u");
    let evaluate = |n: usize| {
        for _ in 0..n {
            assert!(shared.state.load().snapshot.bool_value("f", &ctx, false));
        }
    };
    shared.publish(env(1), Source::Server);
    assert!(shared.state.load().snapshot.is_counting());
    evaluate(3);
    // An evaluation still running on version 1 when version 2 arrives: a borrowed guard,
    // which the swap turns into a counted reference.
    let reader = shared.state.load();
    shared.publish(env(2), Source::Server);
    assert!(
        shared.state.load().snapshot.is_counting(),
        "a recompile counts"
    );
    evaluate(5);
    reader.snapshot.bool_value("f", &ctx, false);
    assert_eq!(drained(&source), BTreeMap::from([(1, 4), (2, 5)]));
    assert_eq!(held(&shared), 1, "still read: kept");

    reader.snapshot.bool_value("f", &ctx, false);
    reader.snapshot.bool_value("f", &ctx, false);
    drop(reader);
    assert_eq!(drained(&source), BTreeMap::from([(1, 2)]));
    assert_eq!(held(&shared), 0, "drained after its last reader: dropped");
    assert_eq!(drained(&source), BTreeMap::new(), "nothing twice");

    // One nobody read after the swap is drained once and dropped at the next flush.
    evaluate(1);
    shared.publish(env(3), Source::Server);
    assert_eq!(drained(&source), BTreeMap::from([(2, 1)]));
    assert_eq!(held(&shared), 0);
}

#[test]
fn evaluations_racing_changes_and_drains_are_counted_exactly_once() {
    const THREADS: usize = 4;
    const CHANGES: u64 = 200;
    let shared = shared(true);
    shared.publish(env(1), Source::Server);
    let source = SnapshotCounts {
        shared: shared.clone(),
    };
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS + 1);
    let (evaluated, drained) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (shared, stop, barrier) = (&shared, &stop, &barrier);
                s.spawn(move || {
                    let ctx = Context::new(format!("user-{t}"));
                    let mut mine: BTreeMap<u64, u64> = BTreeMap::new();
                    let mut i = 0u64;
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        // As `Client::bool_value`: load, evaluate, let go; sometimes hold
                        // on across a few evaluations, as a `Flags` handle does.
                        let state = shared.state.load();
                        let n = if i.is_multiple_of(7) { 20 } else { 1 };
                        i += 1;
                        for _ in 0..n {
                            assert!(state.snapshot.bool_value("f", &ctx, false));
                        }
                        let version = state.env.as_ref().unwrap().version;
                        *mine.entry(version).or_default() += n;
                    }
                    mine
                })
            })
            .collect();
        let drainer = s.spawn(|| {
            let mut totals = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                drain_into(&source, &mut totals);
                std::thread::yield_now();
            }
            totals
        });
        barrier.wait();
        for version in 2..=CHANGES {
            shared.publish(env(version), Source::Server);
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        let mut evaluated: BTreeMap<u64, u64> = BTreeMap::new();
        for w in workers {
            for (version, n) in w.join().unwrap() {
                *evaluated.entry(version).or_default() += n;
            }
        }
        (evaluated, drainer.join().unwrap())
    });
    // The final flush (as `close` makes it): everything left.
    let mut drained = drained;
    drain_into(&source, &mut drained);
    assert_eq!(held(&shared), 0, "every retired snapshot was let go");
    assert!(
        evaluated.len() > 1,
        "the evaluations never crossed a change"
    );
    assert_eq!(drained, evaluated);
}

#[test]
fn with_telemetry_off_nothing_counts_and_nothing_is_kept() {
    let shared = shared(false);
    shared.publish(env(1), Source::Server);
    assert!(!shared.state.load().snapshot.is_counting());
    shared
        .state
        .load()
        .snapshot
        .bool_value("f", &Context::new("u"), false);
    shared.publish(env(2), Source::Server);
    assert!(!shared.state.load().snapshot.is_counting());
    assert_eq!(held(&shared), 0, "no replaced snapshot kept");
}
