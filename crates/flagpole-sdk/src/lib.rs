//! The Rust SDK for Flagpole: flags pushed over a WebSocket and evaluated locally.
//!
//! A [`Client`] holds the environment's flags compiled by `flagpole-core`, so every
//! evaluation is a lock-free, network-free call into the same engine the server uses. A
//! background task keeps the flags current over the stream protocol (docs/protocol.md):
//! it applies snapshots and patches in version order, resyncs on gaps, reconnects with
//! jittered backoff, and keeps serving the last known flags through any outage.
//!
//! ```no_run
//! use std::time::Duration;
//! use flagpole_sdk::{Client, Context};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("http://localhost:8080", "fp_sdk_...").build()?;
//! client.wait_until_ready(Duration::from_secs(5)).await?;
//! let ctx = Context::new("user-1").with("country", "no");
//! if client.bool_value("new-checkout", &ctx, false) {
//!     // ...
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! Before the first snapshot arrives every evaluation serves the caller's default with
//! reason `ERROR` / [`ErrorKind::NotReady`].
//!
//! # Telemetry
//!
//! By default the client reports evaluation counts, exposures of the flags the server
//! marks for experiments (deduplicated per flag, variant and context key for an hour),
//! and the events of [`Client::track`], in batches every 10 s, over the stream or
//! `POST /sdk/v1/events`. At most 10,000 exposures and events (4 MiB) are held; beyond,
//! they are dropped and the number dropped is reported. [`Client::close`] flushes within
//! 2 s. [`ClientBuilder::telemetry`]`(false)` switches all of it off. The README's
//! "Telemetry" section has the details.

mod backoff;
mod builder;
mod cache;
mod changes;
mod client;
mod connection;
mod detail;
mod error;
mod session;
mod shared;
mod socket;
mod sync;
mod telemetry;
#[cfg(test)]
mod testing;

#[cfg(feature = "openfeature")]
pub mod openfeature;

pub use builder::ClientBuilder;
pub use changes::{ChangeEvent, Changes, FlagChanges};
pub use client::{Client, Flags};
pub use detail::{EvaluationDetail, EvaluationReason};
pub use error::{BuildError, NotReady, OfflineError};
pub use shared::{ConnectionState, KEY_REJECTED, Source, Status};
pub use telemetry::TrackError;

pub use flagpole_core::{self, Context, ErrorKind};

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// What the SDK calls itself in its `hello` (`flagpole-rust/<version>`).
pub const SDK_NAME: &str = concat!("flagpole-rust/", env!("CARGO_PKG_VERSION"));
