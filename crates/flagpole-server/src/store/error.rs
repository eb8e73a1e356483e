//! The store's one error type: what a caller may need to tell apart about a failed
//! statement, in the database's terms. The HTTP edge (`crate::error`) words it for the
//! user; the store never decides a status code.

use sqlx::error::DatabaseError;

use super::constraint::{self, Unique};

/// Why a store function failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is not there (pool timeout, IO, a closed pool, or SQLSTATE 08xxx,
    /// 57P01-57P03, 53300): retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique constraint was violated: a concurrent write got there first, since domain
    /// writes check these before writing.
    #[error("unique constraint violated: {constraint:?}")]
    UniqueViolation {
        /// Which constraint, named the same on both backends.
        constraint: Unique,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored document or value does not parse: a bug or a corrupted database.
    #[error("stored {what} does not parse: {reason}")]
    Corrupt {
        /// What was read (`flag definition`, `app_user 4 role`).
        what: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A document could not be serialised for storage (a bug).
    #[error("serialising a document: {0}")]
    Encode(#[from] serde_json::Error),
    /// Any other database error.
    #[error(transparent)]
    Database(sqlx::Error),
}

/// Result alias for store functions.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// A stored value that does not parse.
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// SQLSTATEs that mean "the database is (temporarily) not there", not "the query is wrong":
/// Postgres shutting down or restarting (57P01-57P03), a broken connection (class 08) or
/// too many connections (53300).
fn is_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300")
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        let unique = match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                return StoreError::Unavailable(err);
            }
            sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_unavailable) => {
                return StoreError::Unavailable(err);
            }
            sqlx::Error::Database(db) => unique_of(db.as_ref()),
            _ => None,
        };
        match unique {
            Some(constraint) => StoreError::UniqueViolation {
                constraint,
                source: err,
            },
            None => StoreError::Database(err),
        }
    }
}

fn unique_of(db: &dyn DatabaseError) -> Option<Unique> {
    constraint::unique_violated(db).map(Unique::named)
}
