//! The domain REST API (projects, environments, flags, configs, segments, history, audit)
//! through the router, on Postgres and SQLite, plus a real listener.

mod audit_filters;
mod concurrency;
mod critical;
mod dashboard;
mod flag_lifecycle;
mod flag_lists;
mod flags;
mod history;
mod listener;
mod projects;
mod revert;
mod segments;
mod variant_rename;
mod write_scope;
