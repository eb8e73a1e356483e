//! Dashboard session writes: starting one at sign-in and ending one at sign-out. Not
//! audited (sign-ins are not changes to what the server serves), as before.

use crate::auth::{generate_secret, hash_secret};
use crate::db::{Db, now_ms};
use crate::store::session::{self, NewSessionRow};

/// A new session: what to put in the cookie and what to give the dashboard.
#[derive(Debug)]
pub(crate) struct NewSession {
    /// The cookie value (plaintext; only its hash is stored).
    pub(crate) cookie_value: String,
    /// The CSRF token the dashboard sends back in `X-CSRF-Token`.
    pub(crate) csrf_token: String,
}

/// Stores a new session for `user_id` lasting `hours`, and removes the user's expired ones
/// (sessions are otherwise only removed at logout, so this keeps the table small).
pub(crate) async fn start(db: &Db, user_id: i64, hours: u64) -> Result<NewSession, sqlx::Error> {
    let now = now_ms();
    let lifetime = i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
    let new = NewSession {
        cookie_value: generate_secret(""),
        csrf_token: generate_secret(""),
    };
    let mut tx = db.begin_write().await?;
    session::delete_expired(&mut tx, user_id, now).await?;
    let row = NewSessionRow {
        token_hash: &hash_secret(&new.cookie_value),
        user_id,
        csrf_token: &new.csrf_token,
        expires_at: now.saturating_add(lifetime),
    };
    session::insert(&mut tx, &row, now).await?;
    tx.commit().await?;
    Ok(new)
}

/// Ends the session with this cookie value (logout). Ending nothing is fine.
pub(crate) async fn end(db: &Db, cookie_value: &str) -> Result<(), sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    session::delete(&mut conn, &hash_secret(cookie_value)).await
}
