//! Instructions per evaluation, for `cargo xtask bench-eval --instructions`: run under
//! valgrind's callgrind, which counts the same instructions for the same binary and input
//! however busy the machine is (wall time here swings by 2× between runs).
//!
//! `instructions <engine> <case> <n>` sets up the engine exactly as `benches/eval.rs` does,
//! then evaluates the case's flag `n` times in [`run_once`] and `2n` times in
//! [`run_twice`]. The difference of the two functions' inclusive instruction counts,
//! divided by `n`, is the exact cost of one evaluation (plus the loop's few instructions,
//! the same for every engine): setup, and anything else done once, cancels out. Both run
//! in one process because the key index's hash seed is random per process.
//!
//! Engines: `flagpole`, `flagpole_counted` (the same snapshot counting evaluations) and
//! `yggdrasil`. `instructions --list` prints the case names. Run by `cargo bench`, it
//! evaluates every case once with every engine and exits.

use std::hint::black_box;

use flagpole_core::Snapshot;

mod common;
use common::CASES;
use common::yggdrasil::{FLAGS, ygg_context, ygg_engine, ygg_eval_features};

/// The engines, as named on the command line and in the xtask's JSON.
const ENGINES: [&str; 3] = ["flagpole", "flagpole_counted", "yggdrasil"];

#[inline(never)]
fn run_once(n: u64, eval: &mut impl FnMut() -> bool) {
    for _ in 0..n {
        black_box(eval());
    }
}

#[inline(never)]
fn run_twice(n: u64, eval: &mut impl FnMut() -> bool) {
    for _ in 0..2 * n {
        black_box(eval());
    }
}

fn measure(engine: &str, key: &str, n: u64) {
    let ctx = common::context();
    match engine {
        "flagpole" | "flagpole_counted" => {
            let mut snapshot = Snapshot::compile_strict(&common::eval_env(FLAGS)).unwrap();
            if engine == "flagpole_counted" {
                snapshot = snapshot.with_counting();
            }
            let mut eval = || snapshot.bool_value(black_box(key), black_box(&ctx), false);
            // Warm-up: the counting thread claims its stripe and allocates its cells.
            eval();
            run_once(n, &mut eval);
            run_twice(n, &mut eval);
            if engine == "flagpole_counted" {
                let mut counts = Vec::new();
                snapshot.drain_counts(0, 1, &mut counts);
                let counted: u64 = counts.iter().map(|c| c.count).sum();
                assert_eq!(
                    counted,
                    3 * n + 1,
                    "{key}: not every evaluation was counted"
                );
            }
        }
        "yggdrasil" => {
            let engine = ygg_engine(ygg_eval_features());
            let uctx = ygg_context();
            let mut eval = || engine.is_enabled(black_box(key), black_box(&uctx), &None);
            eval();
            run_once(n, &mut eval);
            run_twice(n, &mut eval);
        }
        _ => panic!("unknown engine `{engine}`; one of {ENGINES:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [list] if list == "--list" => {
            for (case, _) in CASES {
                println!("{case}");
            }
        }
        [engine, case, n] => {
            let (_, key) = CASES
                .iter()
                .find(|(c, _)| c == case)
                .unwrap_or_else(|| panic!("unknown case `{case}`"));
            measure(engine, key, n.parse().expect("n: a number of evaluations"));
        }
        // `cargo bench` runs every bench target (with `--bench`): a quick check that each
        // engine and case runs, so this target cannot rot unnoticed.
        _ => {
            for engine in ENGINES {
                for (_, key) in CASES {
                    measure(engine, key, 10);
                }
            }
        }
    }
}
