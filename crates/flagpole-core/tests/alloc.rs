// A `GlobalAlloc` implementation must be an `unsafe impl`, and counting allocations is
// the only way to prove the evaluation path never touches the heap. The workspace denies
// unsafe code; this test binary is the one exception, and it only forwards to `System`.
#![allow(unsafe_code)]

//! Evaluation allocates nothing when the caller reuses its context: checked by counting
//! every heap allocation in this process while evaluating the benchmarked flags.
//!
//! This file is its own test binary with a single `#[test]`, so no other test thread can
//! allocate while the counter is being read.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use flagpole_core::Snapshot;

#[path = "../benches/common/mod.rs"]
mod common;

/// Forwards to the system allocator, counting allocations (including reallocations, which
/// may move memory and are as costly as a fresh allocation).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is upheld by `System`; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as this method.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as this method.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as this method.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as this method.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const EVALUATIONS: u64 = 10_000;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn evaluation_allocates_nothing() {
    let plain = Snapshot::compile_strict(&common::eval_env(1000)).unwrap();
    // Counting evaluations (telemetry on) allocates nothing either, once this thread has
    // its counters in the snapshot (its first counted evaluation, below).
    let counted = Snapshot::compile_strict(&common::eval_env(1000))
        .unwrap()
        .with_counting();
    let ctx = common::context();

    // The counter must see allocations at all, or a zero below would prove nothing.
    assert!(allocations_during(|| drop(black_box(Box::new(1u64)))) > 0);

    let mut report = Vec::new();
    for (snapshot, (case, key)) in [&plain, &counted]
        .into_iter()
        .flat_map(|s| common::CASES.map(|case| (s, case)))
    {
        let case = if snapshot.is_counting() {
            format!("{case}_counted")
        } else {
            case.to_string()
        };
        // The case must exercise the intended path, not fall back to an error.
        let e = snapshot.evaluate(key, &ctx);
        assert!(e.value.is_some(), "{case}: {e:?}");

        let allocations = allocations_during(|| {
            for _ in 0..EVALUATIONS {
                black_box(snapshot.evaluate(black_box(key), black_box(&ctx)));
                black_box(snapshot.bool_value(black_box(key), black_box(&ctx), false));
                black_box(snapshot.bool_detail(black_box(key), black_box(&ctx), false));
            }
        });
        report.push((case, allocations));
    }
    println!("allocations per {EVALUATIONS} x 3 evaluations: {report:?}");
    assert!(
        report.iter().all(|&(_, n)| n == 0),
        "evaluation allocated: {report:?}"
    );
}
