//! Password hashing with argon2id (PHC strings), off the async runtime.
//!
//! Hashing is deliberately slow (tens of milliseconds and 19 MiB), so it runs in
//! `spawn_blocking`: on the runtime's worker threads it would stall every other request.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{ApiError, ApiResult};

/// Shortest accepted password. Length beats composition rules (NIST SP 800-63B).
pub const MIN_PASSWORD_LEN: usize = 12;

/// Longest accepted password: bounds the hashing work an anonymous caller can ask for.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A hash of a password nobody knows. Logins for unknown emails are verified against it,
/// so they take as long as logins for known ones and timing does not reveal which emails
/// exist.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&crate::auth::generate_secret("dummy-")).unwrap_or_default());

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Computes the dummy hash now, so the first login attempt for an unknown email is not
/// slower than the others (which would tell that the email does not exist).
pub async fn prepare() {
    let _ = tokio::task::spawn_blocking(|| LazyLock::force(&DUMMY_HASH).len()).await;
}

/// Checks a new password's length; `field` names it in the 422.
pub fn validate(password: &str, field: &str) -> ApiResult<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(ApiError::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

/// The argon2id PHC string (`$argon2id$v=19$…`) of `password`, with a fresh random salt.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await?
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// True if `password` matches the PHC string. With `None` (unknown user) it verifies
/// against a dummy hash and returns false, taking the same time as a real check.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    let matched = tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_blocking(&password, &phc),
        None => {
            verify_blocking(&password, &DUMMY_HASH);
            false
        }
    })
    .await?;
    Ok(matched)
}
