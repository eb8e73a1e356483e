//! Checking a sign-in: email and password against the stored hash, under the login rate
//! limits. Starting the session that follows is a write ([`crate::domain::sessions`]).

use std::net::IpAddr;

use super::{AuthError, LoginLimiter, password};
use crate::db::Db;
use crate::error::ApiError;
use crate::store;

const BAD_CREDENTIALS: &str = "wrong email or password";

/// The id of the enabled user whose email (already trimmed and lower-cased) and password
/// these are. Failures count against the email and the client address; success resets
/// the email's count.
pub(crate) async fn check_password(
    db: &Db,
    limiter: &LoginLimiter,
    email: &str,
    password: String,
    client: Option<IpAddr>,
) -> Result<i64, AuthError> {
    if let Err(retry_after_secs) = limiter.check(email, client).await {
        return Err(ApiError::TooManyRequests { retry_after_secs }.into());
    }
    let row = {
        let mut conn = db.pool.acquire().await?;
        store::user::login_row(&mut conn, email).await?
    };
    // Unknown emails are verified against a dummy hash: same work, same answer, so neither
    // the message nor the timing tells whether the email exists.
    let (user_id, hash, disabled) = match row {
        Some((id, hash, disabled)) => (Some(id), Some(hash), disabled),
        None => (None, None, false),
    };
    let matched = password::verify(password, hash)
        .await
        .map_err(ApiError::Internal)?;
    match user_id {
        Some(id) if matched && !disabled => {
            limiter.reset(email).await;
            Ok(id)
        }
        _ => {
            limiter.record_failure(email, client).await;
            Err(AuthError::Unauthenticated(BAD_CREDENTIALS))
        }
    }
}
