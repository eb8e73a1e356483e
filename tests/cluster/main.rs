//! Process-level tests of a Flagpole deployment: real `flagpole serve` replicas (the
//! binary, started and signalled like an orchestrator would), real nginx in front with
//! `deploy/nginx/flagpole.conf`, real Postgres, real SDK clients, and real Prometheus and
//! Alertmanager pulling a kill switch (`alerts.rs`).
//!
//! Each scenario prints its measured figures (`--no-capture` shows them); the numbers
//! quoted in docs/operations.md come from `cargo build --workspace --all-targets` (which
//! builds the `flagpole` binary with the tests, sharing their dependencies) and then
//! `cargo nextest run --workspace -E 'binary(cluster)' --no-capture`.
//! The scenarios run one at a time (test group `cluster` in .config/nextest.toml): each
//! starts several processes and measures timings on a 2-core machine.

mod alerts;
mod checkout;
mod crash;
mod harness;
mod http;
mod load;
mod monitoring;
mod outage;
mod rolling;
mod scheduler;

use std::time::Duration;

/// How long SDKs may take to reach a version once it is committed, in every scenario.
pub(crate) const CONVERGE_WITHIN: Duration = Duration::from_secs(15);

/// One line of measured figures, easy to grep out of the test output.
pub(crate) fn report(scenario: &str, figures: &[(&str, String)]) {
    let line: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("CLUSTER-RESULT {scenario}: {}", line.join(" "));
}

/// Milliseconds, for reports.
pub(crate) fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}
