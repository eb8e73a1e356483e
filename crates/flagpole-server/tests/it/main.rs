//! The server's integration tests, in one binary so the server is linked once: each
//! module is one area, tested through the router, real listeners or the store directly,
//! on Postgres and SQLite.

mod support;

mod alerts;
mod api_domain;
mod auth;
mod authz_matrix;
mod bad_input;
mod experiments;
mod lifecycle;
mod migrations;
mod ofrep;
mod ops;
mod outcomes;
mod scheduled_changes;
mod store;
mod stream;
mod telemetry;
