//! Dashboard sessions, checked: the session a cookie value names. The cookie and the CSRF
//! contract with the dashboard are the HTTP edge's (`http::session_cookie`); sessions are
//! written by [`crate::domain::sessions`].
//!
//! The cookie value is 256 random bits; the database stores only its SHA-256, so a leaked
//! `session` table does not let anyone sign in.

use super::hash_secret;
use crate::db::Db;
use crate::store;
pub(crate) use crate::store::session::SessionRow;

/// The session with this cookie value, expired or not (the caller decides).
pub(crate) async fn find(db: &Db, cookie_value: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    store::session::by_hash(&mut conn, &hash_secret(cookie_value)).await
}
