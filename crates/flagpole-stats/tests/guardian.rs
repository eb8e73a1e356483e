//! The guardian's decision as a table: each row a check of a release plan and the decision
//! it must give.

use flagpole_core::release::{PlanArm, ReleasePlan, Step};
use flagpole_stats::Aggregate;
use flagpole_stats::guardian::{
    Arms, Check, Decision, GuardrailData, MIN_EVENTS, Reason, decide, events, plan_guardrail,
    summaries,
};
use flagpole_stats::guardrail::{Guardrail, Worse};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// 5 → 25 → 100%, one hour and 500 units per arm per step.
fn plan() -> ReleasePlan {
    let mut p = ReleasePlan::from_template(flagpole_core::release::Template::Canary, "off", "on");
    p.steps = [5.0, 25.0, 100.0]
        .iter()
        .map(|&percent| Step {
            percent,
            min_duration_ms: HOUR,
            min_units: 500,
        })
        .collect();
    p.validate().unwrap();
    p
}

fn errors(control: (u64, f64), new: (u64, f64)) -> GuardrailData {
    GuardrailData {
        name: "errors".into(),
        settings: plan_guardrail(Worse::Higher),
        by_step: vec![Arms {
            control: Aggregate::Proportion {
                n: control.0,
                sum: control.1,
            },
            new: Aggregate::Proportion {
                n: new.0,
                sum: new.1,
            },
        }],
    }
}

/// n values with the given mean and sample variance, as sums.
fn mean(n: u64, mean: f64, variance: f64) -> Aggregate {
    let nf = n as f64;
    Aggregate::Mean {
        n,
        sum: nf * mean,
        sum_squares: variance * (nf - 1.0) + nf * mean * mean,
    }
}

fn latency(control_mean: f64, new_mean: f64) -> GuardrailData {
    GuardrailData {
        name: "latency_ms".into(),
        settings: plan_guardrail(Worse::Higher),
        by_step: vec![Arms {
            control: mean(50_000, control_mean, 400.0),
            new: mean(5_000, new_mean, 400.0),
        }],
    }
}

fn conversions(control: f64, new: f64) -> GuardrailData {
    GuardrailData {
        name: "conversions".into(),
        settings: plan_guardrail(Worse::Lower),
        by_step: vec![Arms {
            control: Aggregate::Proportion {
                n: 50_000,
                sum: 50_000.0 * control,
            },
            new: Aggregate::Proportion {
                n: 5_000,
                sum: 5_000.0 * new,
            },
        }],
    }
}

fn healthy() -> GuardrailData {
    errors((50_000, 500.0), (5_000, 50.0))
}

fn regressed() -> GuardrailData {
    errors((50_000, 500.0), (5_000, 150.0))
}

/// What a row expects: a decision, or a roll back on a named guardrail.
enum Expect {
    Is(Decision),
    RollBack(&'static str),
}

struct Row {
    name: &'static str,
    step: usize,
    elapsed_ms: u64,
    extended: bool,
    units: (u64, u64),
    guardrails: Vec<GuardrailData>,
    expect: Expect,
}

fn row(name: &'static str, elapsed_ms: u64, guardrails: Vec<GuardrailData>, expect: Expect) -> Row {
    Row {
        name,
        step: 0,
        elapsed_ms,
        extended: false,
        units: (10_000, 1_000),
        guardrails,
        expect,
    }
}

fn wait(reason: Reason) -> Expect {
    Expect::Is(Decision::Wait { reason })
}

fn too_few_units(arm: PlanArm, units: u64) -> Reason {
    Reason::TooFewUnits {
        arm,
        units,
        needed: 500,
    }
}

fn no_control_errors() -> Reason {
    Reason::TooFewEvents {
        guardrail: "errors".into(),
        arm: PlanArm::Control,
        events: 0,
        needed: MIN_EVENTS,
    }
}

fn constant_latency() -> Reason {
    Reason::Untestable {
        guardrail: "latency_ms".into(),
        code: "ZERO_NEGATIVE_VARIANCE".into(),
        message: "the control arm's variance is not positive (fewer than 2 units, or every \
                  unit has the same value): its uncertainty cannot be estimated yet"
            .into(),
    }
}

fn table() -> Vec<Row> {
    let no_errors_in_control = || errors((50_000, 0.0), (5_000, 25.0));
    // Every latency the same value in each arm, the new one higher: no variance to test.
    let flat_latency = || GuardrailData {
        by_step: vec![Arms {
            control: mean(50_000, 100.0, 0.0),
            new: mean(5_000, 150.0, 0.0),
        }],
        ..latency(0.0, 0.0)
    };
    vec![
        row(
            "a healthy step waits out its hour",
            20 * MINUTE,
            vec![healthy()],
            wait(Reason::StepRunning {
                remaining_ms: 40 * MINUTE,
            }),
        ),
        row(
            "a healthy step advances at its end",
            HOUR,
            vec![healthy(), latency(100.0, 100.5)],
            Expect::Is(Decision::Advance),
        ),
        row(
            "without guardrails, time and units decide",
            HOUR,
            vec![],
            Expect::Is(Decision::Advance),
        ),
        row(
            "errors tripled: roll back at once, mid-step",
            5 * MINUTE,
            vec![latency(100.0, 100.0), regressed()],
            Expect::RollBack("errors"),
        ),
        row(
            "latency up 20 ms: roll back",
            5 * MINUTE,
            vec![healthy(), latency(100.0, 120.0)],
            Expect::RollBack("latency_ms"),
        ),
        row(
            "latency down: not a regression",
            HOUR,
            vec![latency(100.0, 80.0)],
            Expect::Is(Decision::Advance),
        ),
        row(
            "conversions down (lower is worse): roll back",
            5 * MINUTE,
            vec![conversions(0.10, 0.07)],
            Expect::RollBack("conversions"),
        ),
        row(
            "conversions up: advance",
            HOUR,
            vec![conversions(0.10, 0.13)],
            Expect::Is(Decision::Advance),
        ),
        row(
            "two regressions: the stronger one is named",
            5 * MINUTE,
            vec![
                latency(100.0, 103.0),
                errors((50_000, 500.0), (5_000, 400.0)),
            ],
            Expect::RollBack("errors"),
        ),
        row(
            "fewer than 20 events in the new arm: wait, untested",
            5 * MINUTE,
            vec![errors((50_000, 500.0), (MIN_EVENTS - 1, 19.0))],
            wait(Reason::TooFewEvents {
                guardrail: "errors".into(),
                arm: PlanArm::New,
                events: MIN_EVENTS - 1,
                needed: MIN_EVENTS,
            }),
        ),
        row(
            "no errors at all in either arm: nothing worse, advance",
            HOUR,
            vec![errors((50_000, 0.0), (5_000, 0.0))],
            Expect::Is(Decision::Advance),
        ),
        row(
            "errors only in the new arm: cannot test, say so",
            10 * MINUTE,
            vec![no_errors_in_control()],
            wait(no_control_errors()),
        ),
        row(
            "errors only in the new arm at the step's end: extend",
            HOUR,
            vec![no_errors_in_control()],
            Expect::Is(Decision::Extend {
                until_ms: 2 * HOUR,
                reason: no_control_errors(),
            }),
        ),
        Row {
            extended: true,
            ..row(
                "errors only in the new arm after the extension: hold",
                2 * HOUR,
                vec![no_errors_in_control()],
                Expect::Is(Decision::Hold {
                    reason: no_control_errors(),
                }),
            )
        },
        row(
            "a few errors in the new arm, too few to test: the next step tests them",
            HOUR,
            vec![errors((50_000, 500.0), (300, 10.0))],
            Expect::Is(Decision::Advance),
        ),
        row(
            "no variance while the new variant is slower: wait, saying so",
            10 * MINUTE,
            vec![flat_latency()],
            wait(constant_latency()),
        ),
        row(
            "no variance while the new variant is slower, at the end: extend",
            HOUR,
            vec![flat_latency()],
            Expect::Is(Decision::Extend {
                until_ms: 2 * HOUR,
                reason: constant_latency(),
            }),
        ),
        row(
            "no variance but the new variant is faster: advance",
            HOUR,
            vec![GuardrailData {
                by_step: vec![Arms {
                    control: mean(50_000, 100.0, 0.0),
                    new: mean(5_000, 90.0, 0.0),
                }],
                ..latency(0.0, 0.0)
            }],
            Expect::Is(Decision::Advance),
        ),
        Row {
            units: (10_000, 499),
            ..row(
                "too few units in the new arm at the end: extend once",
                HOUR + MINUTE,
                vec![healthy()],
                Expect::Is(Decision::Extend {
                    until_ms: 2 * HOUR,
                    reason: too_few_units(PlanArm::New, 499),
                }),
            )
        },
        Row {
            units: (10_000, 499),
            extended: true,
            ..row(
                "extended: the step runs its second hour",
                HOUR + MINUTE,
                vec![healthy()],
                wait(Reason::StepRunning {
                    remaining_ms: HOUR - MINUTE,
                }),
            )
        },
        Row {
            units: (10_000, 499),
            extended: true,
            ..row(
                "still too few units after the extension: hold",
                2 * HOUR,
                vec![healthy()],
                Expect::Is(Decision::Hold {
                    reason: too_few_units(PlanArm::New, 499),
                }),
            )
        },
        Row {
            units: (10_000, 700),
            extended: true,
            ..row(
                "enough units after the extension: advance",
                2 * HOUR,
                vec![healthy()],
                Expect::Is(Decision::Advance),
            )
        },
        Row {
            units: (10, 1_000),
            ..row(
                "control short of units: extend",
                HOUR,
                vec![healthy()],
                Expect::Is(Decision::Extend {
                    until_ms: 2 * HOUR,
                    reason: too_few_units(PlanArm::Control, 10),
                }),
            )
        },
        Row {
            units: (10, 10),
            ..row(
                "a regression is rolled back whatever the units",
                HOUR,
                vec![regressed()],
                Expect::RollBack("errors"),
            )
        },
        row(
            "control short of events while the new arm has them and is worse: extend",
            HOUR,
            vec![healthy(), errors((50_000, 10.0), (5_000, 30.0))],
            Expect::Is(Decision::Extend {
                until_ms: 2 * HOUR,
                reason: Reason::TooFewEvents {
                    guardrail: "errors".into(),
                    arm: PlanArm::Control,
                    events: 10,
                    needed: MIN_EVENTS,
                },
            }),
        ),
        row(
            "a setting out of its domain: hold now",
            MINUTE,
            vec![GuardrailData {
                settings: Guardrail {
                    alpha: 1.5,
                    ..plan_guardrail(Worse::Higher)
                },
                ..healthy()
            }],
            Expect::Is(Decision::Hold {
                reason: Reason::Untestable {
                    guardrail: "errors".into(),
                    code: "INVALID_INPUT".into(),
                    message: "alpha: must be between 0 and 1 (exclusive), got 1.5".into(),
                },
            }),
        ),
        Row {
            step: 1,
            ..row(
                "the 25% step advances like the first",
                HOUR,
                vec![healthy()],
                Expect::Is(Decision::Advance),
            )
        },
        Row {
            step: 2,
            units: (0, 0),
            ..row(
                "at 100% there is no comparison group: done",
                0,
                vec![errors((0, 0.0), (0, 0.0))],
                Expect::Is(Decision::Advance),
            )
        },
    ]
}

#[test]
fn decisions() {
    let plan = plan();
    for r in table() {
        let check = Check {
            plan: &plan,
            step: r.step,
            elapsed_ms: r.elapsed_ms,
            extended: r.extended,
            units: Arms {
                control: r.units.0,
                new: r.units.1,
            },
            guardrails: &r.guardrails,
        };
        let got = decide(&check);
        match (&r.expect, &got) {
            (Expect::Is(want), _) => assert_eq!(&got, want, "{}", r.name),
            (
                Expect::RollBack(name),
                Decision::RollBack {
                    guardrail,
                    by_step,
                    test,
                },
            ) => {
                assert_eq!(guardrail, name, "{}", r.name);
                let g = r.guardrails.iter().find(|g| g.name == *name).unwrap();
                assert_eq!(by_step, &g.by_step, "{}", r.name);
                assert!(test.rejects && test.p_value <= 0.05, "{}: {test:?}", r.name);
                assert!(test.statistic > 0.0, "{}: {test:?}", r.name);
            }
            (Expect::RollBack(_), _) => panic!("{}: expected a roll back, got {got:?}", r.name),
        }
    }
}

/// The decision is what the audit entry records: it serialises with the figures.
#[test]
fn roll_back_serialises_with_its_evidence() {
    let plan = plan();
    let guardrails = [regressed()];
    let d = decide(&Check {
        plan: &plan,
        step: 0,
        elapsed_ms: MINUTE,
        extended: false,
        units: Arms {
            control: 50_000,
            new: 5_000,
        },
        guardrails: &guardrails,
    });
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "roll_back");
    assert_eq!(v["guardrail"], "errors");
    assert_eq!(v["by_step"][0]["new"]["sum"], 150.0);
    assert!(v["test"]["statistic"].as_f64().unwrap() > 0.0);
    assert!(v["test"]["p_value"].as_f64().unwrap() <= 0.05);
    let back: Decision = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
}

/// Error rates are compared with the pooled rate's variance and counted in errors; a mean
/// keeps each arm's variance and counts units.
#[test]
fn pooled_variance_and_events_for_proportions_only() {
    let e = errors((9_000, 90.0), (1_000, 30.0));
    let s = summaries(&e.by_step[0]);
    let p = 120.0 / 10_000.0;
    assert_eq!((s.control.mean, s.new.mean), (0.01, 0.03));
    assert!((s.control.variance - p * (1.0 - p)).abs() < 1e-15);
    assert_eq!(s.control.variance, s.new.variance);
    assert_eq!(events(&e.by_step[0].new), 30);

    let l = latency(100.0, 120.0);
    let s = summaries(&l.by_step[0]);
    assert!((s.control.variance - 400.0).abs() < 1e-6 && (s.new.variance - 400.0).abs() < 1e-6);
    assert_eq!(events(&l.by_step[0].new), 5_000);
}

/// The steps are compared one by one: an error rate that doubles between two steps, in
/// both arms alike, is no regression, although the new arm, bigger at the later step,
/// has the higher rate over the plan.
#[test]
fn steps_are_compared_one_by_one() {
    let step = |control: (u64, f64), new: (u64, f64)| Arms {
        control: Aggregate::Proportion {
            n: control.0,
            sum: control.1,
        },
        new: Aggregate::Proportion {
            n: new.0,
            sum: new.1,
        },
    };
    let drifting = GuardrailData {
        name: "errors".into(),
        settings: plan_guardrail(Worse::Higher),
        by_step: vec![
            step((90_000, 900.0), (10_000, 100.0)),
            step((50_000, 1_000.0), (50_000, 1_000.0)),
        ],
    };
    let plan = plan();
    let check = |g: &GuardrailData| {
        decide(&Check {
            plan: &plan,
            step: 1,
            elapsed_ms: HOUR,
            extended: false,
            units: Arms {
                control: 50_000,
                new: 50_000,
            },
            guardrails: std::slice::from_ref(g),
        })
    };
    assert_eq!(check(&drifting), Decision::Advance);
    // Summed over the plan the same numbers are 1.83% against 1.36%: a "regression".
    let summed = GuardrailData {
        by_step: vec![step((140_000, 1_900.0), (60_000, 1_100.0))],
        ..drifting.clone()
    };
    assert!(matches!(check(&summed), Decision::RollBack { .. }));
    // A real regression in the last step is still found.
    let mut regressed = drifting;
    regressed.by_step[1].new = Aggregate::Proportion {
        n: 50_000,
        sum: 1_300.0,
    };
    assert!(matches!(check(&regressed), Decision::RollBack { .. }));
}
