//! Who is calling, and what they may do.
//!
//! Three kinds of credentials:
//! - API tokens (`Authorization: Bearer fp_api_…`) for automation, with a role and an
//!   optional project; a token with a [`Scope`] (`fp_alert_…`) may call only the one
//!   endpoint its scope names;
//! - dashboard users, signed in with a password, carried by the `fp_session` cookie (writes
//!   made with a cookie also need the `X-CSRF-Token` header, see `http::session_cookie`);
//! - SDK keys (`fp_sdk_…`), read-only and valid for one environment's stream and
//!   evaluation endpoints only ([`SdkClient`]).
//!
//! This module checks credentials against the database and its caches; it knows nothing of
//! HTTP. The extractors in `http::credentials` read what a request presents (headers,
//! cookie) and hand it here; handlers take an [`Actor`] (management API) or an
//! [`SdkClient`] (SDK endpoints) and call [`Actor::require`] with the role and project the
//! action needs.

mod actor;
pub mod last_seen;
pub(crate) use actor::{Authorization, Presented, authenticate, session_actor};
pub(crate) mod login;
pub mod password;
pub mod rate_limit;
mod sdk_keys;
pub(crate) mod session;

use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::store::StoreError;

pub use crate::role::{Role, Scope};
pub use last_seen::SdkSeen;
pub use rate_limit::LoginLimiter;
pub(crate) use sdk_keys::authenticate_sdk;
pub use sdk_keys::{SdkClient, SdkKeyCache};

/// Prefix of API tokens; lets secret scanners and people recognise them.
pub const API_TOKEN_PREFIX: &str = "fp_api_";
/// Prefix of SDK keys.
pub const SDK_KEY_PREFIX: &str = "fp_sdk_";

/// How an actor authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    /// A dashboard user (session cookie).
    User {
        /// `app_user.id`.
        id: i64,
    },
    /// An API token.
    Token {
        /// `api_token.id`.
        id: i64,
    },
    /// The server itself, acting on what a person asked for earlier (the scheduler
    /// applying a scheduled change); never the result of authenticating a request.
    System,
}

/// An authenticated caller of the management API.
#[derive(Debug, Clone)]
pub struct Actor {
    /// How they authenticated.
    pub kind: ActorKind,
    /// Recorded in audit entries: `user:alice@example.com` or `token:ci-deployer`.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// `Some(project)` if restricted to one project; `None` for all projects.
    pub project_id: Option<i64>,
    /// `Some` for a token limited to one action: the HTTP edge refuses it everywhere else
    /// (`http::credentials`), so [`Actor::require`] never sees one outside its endpoint.
    pub scope: Option<Scope>,
}

impl Actor {
    /// Succeeds if the actor has at least `role` for `project_id`. `None` means a global
    /// resource (users, tokens, project creation): only unscoped actors may touch those.
    pub fn require(&self, role: Role, project_id: Option<i64>) -> ApiResult<()> {
        let in_scope = match (self.project_id, project_id) {
            (None, _) => true,
            (Some(mine), Some(target)) => mine == target,
            (Some(_), None) => false,
        };
        if !in_scope {
            return Err(ApiError::Forbidden(
                "these credentials are limited to another project".into(),
            ));
        }
        if self.role < role {
            return Err(ApiError::Forbidden(format!(
                "this action needs the {} role; these credentials have {}",
                role.as_str(),
                self.role.as_str()
            )));
        }
        Ok(())
    }
}

/// Authentication state shared by every request: caches and counters that must not hit the
/// database on every call. Lives in [`crate::AppState::auth`].
#[derive(Clone)]
pub struct AuthState {
    /// SDK key hash → client (or "invalid"), so SDK endpoints never query per request.
    pub sdk_keys: SdkKeyCache,
    /// Failed-login counters.
    pub login_limiter: LoginLimiter,
    /// When each SDK key was last used, noted in memory and written periodically.
    pub sdk_seen: SdkSeen,
    /// API tokens whose `last_used_at` was written within the last minute: the write is
    /// skipped for them, so a busy token costs one UPDATE a minute, not one per request.
    token_recently_used: Cache<i64, ()>,
}

impl AuthState {
    /// Production settings: SDK keys cached 30 s, 5 failed logins per email (20 per client
    /// address) in 5 minutes.
    pub fn new() -> AuthState {
        AuthState::with_login_limiter(LoginLimiter::new(5, 20, Duration::from_secs(300)))
    }

    /// Like [`AuthState::new`] with another login limiter (tests use a small one).
    pub fn with_login_limiter(login_limiter: LoginLimiter) -> AuthState {
        AuthState {
            sdk_keys: SdkKeyCache::new(Duration::from_secs(30)),
            login_limiter,
            sdk_seen: SdkSeen::default(),
            token_recently_used: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState::new()
    }
}

/// Why a request was not authenticated: a 401 (with a message saying what to do) or any
/// other [`ApiError`] (403 for a missing CSRF token, 500/503 when the database fails).
/// The HTTP edge answers it in the same JSON shape as every error (`http::credentials`).
#[derive(Debug)]
pub enum AuthError {
    /// 401 with a specific explanation.
    Unauthenticated(&'static str),
    /// Anything else.
    Api(ApiError),
}

impl From<ApiError> for AuthError {
    fn from(err: ApiError) -> Self {
        AuthError::Api(err)
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        AuthError::Api(err.into())
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        AuthError::Api(err.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unauthenticated(_) => ApiError::Unauthenticated,
            AuthError::Api(e) => e,
        }
    }
}

/// SHA-256 hex of a token, key or session id: what the database stores.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random credential: `prefix` + 43 characters of base64url-like alphabet
/// (256 bits of entropy).
pub fn generate_secret(prefix: &str) -> String {
    use rand::RngExt as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..43)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

/// The part of a secret shown in lists so people can tell credentials apart: the
/// `fp_xxx_` prefix and four characters (24 bits, far too few to help guess the rest).
pub(crate) fn display_prefix(secret: &str) -> String {
    // The random part has no `_`, so the prefix ends at the second one.
    let prefix = secret.match_indices('_').nth(1).map_or(0, |(i, _)| i + 1);
    secret.chars().take(prefix + 4).collect()
}

/// True if `email` looks like an address: one `@` with something on both sides, a dot in
/// the domain, no spaces, at most 254 characters. Deliverability is not our business.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Compares two secrets in time independent of where they first differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
