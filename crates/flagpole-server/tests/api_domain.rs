//! The domain REST API (projects, environments, flags, configs, segments, history, audit)
//! through the router, on Postgres and SQLite, plus a real listener.

#[path = "domain_support/mod.rs"]
mod domain_support;

#[path = "api_domain/concurrency.rs"]
mod concurrency;
#[path = "api_domain/dashboard.rs"]
mod dashboard;
#[path = "api_domain/flag_lists.rs"]
mod flag_lists;
#[path = "api_domain/flags.rs"]
mod flags;
#[path = "api_domain/history.rs"]
mod history;
#[path = "api_domain/listener.rs"]
mod listener;
#[path = "api_domain/projects.rs"]
mod projects;
#[path = "api_domain/segments.rs"]
mod segments;
