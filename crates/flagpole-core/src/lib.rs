//! Flagpole's evaluation engine, shared by the server and every Rust SDK so they can never
//! disagree.
//!
//! The flow is *compile once, evaluate many*: wire types from [`model`] (what is stored and
//! sent) are compiled by [`Snapshot::compile`] into an immutable [`Snapshot`], which does all
//! validation up front; [`Snapshot::evaluate`] then answers in tens of nanoseconds, without
//! allocating, and cannot fail.
//!
//! This crate does no IO and knows no async runtime (an architecture invariant checked by
//! a test in the workspace's `tests/` crate).
//!
//! ```
//! use flagpole_core::{model::EnvironmentSnapshot, Context, Snapshot};
//!
//! let env: EnvironmentSnapshot = serde_json::from_value(serde_json::json!({
//!     "version": 1,
//!     "flags": [{
//!         "flag": {"key": "new-checkout", "kind": "boolean", "variants": [
//!             {"key": "on", "value": true}, {"key": "off", "value": false}]},
//!         "config": {"enabled": true, "off_variant": "off",
//!             "rules": [{"id": "nordics", "clauses": [
//!                 {"attribute": "country", "op": "in", "values": ["no", "se"]}],
//!                 "serve": {"variant": "on"}}],
//!             "default_serve": {"variant": "off"}}
//!     }]
//! })).unwrap();
//! let snapshot = Snapshot::compile_strict(&env).unwrap();
//! let ctx = Context::new("user-1").with("country", "no");
//! assert!(snapshot.bool_value("new-checkout", &ctx, false));
//! ```

pub mod bucket;
pub mod lifecycle;
pub mod model;
pub mod release;
pub mod wire;

mod attribute;
mod clause;
mod context;
mod counting;
mod error;
mod eval;
mod index;
mod reuse;
mod scope;
mod snapshot;

pub use context::{Attributes, Context};
pub use counting::{MAX_UNKNOWN_FLAGS, UNKNOWN_FLAGS_OVERFLOW};
pub use error::{CompileError, CompileErrors, Subject};
pub use eval::{Detail, ErrorKind, Evaluation, Reason};
pub use snapshot::{MAX_KEY_LEN, Snapshot, validate_key};
