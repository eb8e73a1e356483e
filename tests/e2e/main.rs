//! End-to-end and cross-crate tests. One binary; one module per concern.

mod architecture;
mod experiments;
mod replicas;
mod sdk_rejected;
mod sdk_server;
mod support;
mod telemetry;
