//! Who is calling, and what they may do.
//!
//! Three kinds of credentials:
//! - API tokens (`Authorization: Bearer fp_api_…`) for automation, with a role and an
//!   optional project scope;
//! - dashboard users, signed in with a password, carried by a session cookie (writes made
//!   with a cookie also need the CSRF header);
//! - SDK keys (`fp_sdk_…`), read-only and valid for one environment's stream and
//!   evaluation endpoints only.
//!
//! Handlers take an [`Actor`] (management API) or an [`SdkClient`] (SDK endpoints) as an
//! extractor and call [`Actor::require`] with the role and project the action needs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Prefix of API tokens; lets secret scanners and people recognise them.
pub const API_TOKEN_PREFIX: &str = "fp_api_";
/// Prefix of SDK keys.
pub const SDK_KEY_PREFIX: &str = "fp_sdk_";

/// What an actor may do. Ordered: each role can do everything the previous one can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything in scope.
    Reader,
    /// Also change flags, segments and environments' flag configuration.
    Writer,
    /// Also manage projects, environments, users, tokens and SDK keys.
    Admin,
}

impl Role {
    /// The wire/database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// Parses the database name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

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

    /// True if the actor may see `project_id` at all.
    pub fn can_see(&self, project_id: i64) -> bool {
        self.project_id.is_none_or(|p| p == project_id)
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

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(parts) {
            return authenticate_token(state, token).await;
        }
        Err(ApiError::Unauthenticated)
    }
}

async fn authenticate_token(state: &AppState, token: &str) -> ApiResult<Actor> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Err(ApiError::Unauthenticated);
    }
    let row: Option<(i64, String, String, Option<i64>)> = sqlx::query_as(
        "select id, name, role, project_id from api_token where token_hash = $1 and revoked_at is null",
    )
    .bind(hash_secret(token))
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((id, name, role, project_id)) = row else {
        return Err(ApiError::Unauthenticated);
    };
    let role = Role::parse(&role)
        .ok_or_else(|| anyhow::anyhow!("api_token {id} has unknown role {role}"))?;
    Ok(Actor {
        kind: ActorKind::Token { id },
        name: format!("token:{name}"),
        role,
        project_id,
    })
}

/// An SDK authenticated by its SDK key: may read one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkClient {
    /// The environment the key belongs to.
    pub environment_id: i64,
    /// That environment's project.
    pub project_id: i64,
}

impl FromRequestParts<AppState> for SdkClient {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts)
            .or_else(|| parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .ok_or(ApiError::Unauthenticated)?;
        if !key.starts_with(SDK_KEY_PREFIX) {
            return Err(ApiError::Unauthenticated);
        }
        let row: Option<(i64, i64)> = sqlx::query_as(
            "select e.id, e.project_id from sdk_key k join environment e on e.id = k.environment_id \
             where k.key_hash = $1 and k.revoked_at is null",
        )
        .bind(hash_secret(key))
        .fetch_optional(&state.db.pool)
        .await?;
        let (environment_id, project_id) = row.ok_or(ApiError::Unauthenticated)?;
        Ok(SdkClient {
            environment_id,
            project_id,
        })
    }
}
