//! SQL over one connection (usually a write transaction), one module per aggregate.
//!
//! Functions here take `&mut AnyConnection` so the caller decides the transaction: every
//! write in [`crate::domain`] opens one with [`crate::Db::begin_write`], calls several of
//! these, and commits once. Documents (flag definitions, configs, segments) are stored as
//! JSON text holding flagpole-core's model types; a row that fails to parse is a bug or a
//! corrupted database ([`StoreError::Corrupt`]), so the HTTP edge answers it as an internal
//! error, never as a client error.

pub(crate) mod alert_mapping;
pub(crate) mod api_token;
pub mod audit;
pub(crate) mod change_log;
pub(crate) mod constraint;
pub mod dependency;
pub mod environment;
mod error;
pub(crate) mod experiment;
pub mod flag;
pub mod flag_version;
pub mod ingest;
pub mod insights;
pub mod outcomes;
pub mod project;
pub mod project_data;
pub mod rollup;
pub(crate) mod scheduled_change;
pub(crate) mod sdk_key;
pub mod segment;
pub(crate) mod session;
pub mod snapshot;
pub(crate) mod user;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use constraint::Unique;
pub use error::{StoreError, StoreResult};

/// The connection type every store function takes; a `Transaction<Any>` derefs to it.
pub type Conn = sqlx::AnyConnection;

/// Serialises a stored document.
pub fn to_text<T: Serialize>(value: &T) -> StoreResult<String> {
    Ok(serde_json::to_string(value)?)
}

/// Parses a stored document; `what` names it in the log line if the row is corrupt.
pub fn from_text<T: DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}

/// `%` and `_` are wildcards in LIKE; a search for `50%` means the literal text. Used with
/// `escape '\'`, which both dialects accept.
pub fn like_contains(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `$first, $first+1, ...` placeholders for an `in (...)` list of `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
