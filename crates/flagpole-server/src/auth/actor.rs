//! Who is calling the management API: an API token or a session cookie, checked against
//! the database and the token-use cache. The extractor over this, which reads the
//! [`Presented`] credentials from the request's headers, is `http::credentials`.

use super::session::{self, SessionRow};
use super::{
    API_TOKEN_PREFIX, Actor, ActorKind, AuthError, AuthState, Role, SDK_KEY_PREFIX, Scope,
    constant_time_eq, hash_secret,
};
use crate::db::{Db, now_ms};
use crate::error::ApiError;
use crate::store::api_token::{self, TokenCredential};

/// The credentials a management request presents, as read from it at the HTTP edge;
/// [`authenticate`] decides which one counts and what it is worth.
#[derive(Debug, Default)]
pub(crate) struct Presented<'a> {
    /// The `Authorization` header.
    pub(crate) authorization: Authorization<'a>,
    /// The session cookie's value, if the request carries one.
    pub(crate) session_cookie: Option<&'a str>,
    /// The CSRF header's value, empty when absent.
    pub(crate) csrf_token: &'a [u8],
    /// The `X-API-Key` header (where SDKs send their key), if readable.
    pub(crate) api_key: Option<&'a str>,
    /// The method changes nothing (GET, HEAD, OPTIONS), so a cookie needs no CSRF token.
    pub(crate) safe_method: bool,
}

/// What the `Authorization` header holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorization<'a> {
    /// No such header.
    #[default]
    Absent,
    /// `Bearer <token>`, the token trimmed.
    Bearer(&'a str),
    /// Something else: another scheme, or not readable as text.
    Other,
}

const SDK_KEY_REJECTED: &str = "SDK keys are valid only for their environment's evaluation \
     and stream endpoints; the management API needs an API token or a dashboard session";

/// The actor a management request's credentials name: its bearer token, else its session
/// cookie (then the method decides whether the CSRF token is needed).
pub(crate) async fn authenticate(
    db: &Db,
    auth: &AuthState,
    presented: &Presented<'_>,
) -> Result<Actor, AuthError> {
    // An Authorization header wins over a cookie: automation never carries the
    // dashboard's cookie by accident, and a bad token must not silently fall back.
    match presented.authorization {
        Authorization::Bearer(token) => return authenticate_token(db, auth, token).await,
        Authorization::Other => {
            return Err(AuthError::Unauthenticated(
                "expected `Authorization: Bearer fp_api_…`",
            ));
        }
        Authorization::Absent => {}
    }
    if let Some(cookie) = presented.session_cookie {
        return authenticate_session(db, cookie, presented).await;
    }
    if presented
        .api_key
        .is_some_and(|k| k.starts_with(SDK_KEY_PREFIX))
    {
        return Err(AuthError::Unauthenticated(SDK_KEY_REJECTED));
    }
    Err(AuthError::Unauthenticated(
        "authentication required: an API token (Authorization: Bearer fp_api_…) or a \
         dashboard session",
    ))
}

async fn authenticate_token(db: &Db, auth: &AuthState, token: &str) -> Result<Actor, AuthError> {
    if token.starts_with(SDK_KEY_PREFIX) {
        return Err(AuthError::Unauthenticated(SDK_KEY_REJECTED));
    }
    // The prefix says which scope the token was issued with; the stored scope must agree.
    let scope = if token.starts_with(API_TOKEN_PREFIX) {
        None
    } else if token.starts_with(Scope::AlertsTrigger.token_prefix()) {
        Some(Scope::AlertsTrigger)
    } else {
        return Err(AuthError::Unauthenticated("invalid API token"));
    };
    let found = {
        let mut conn = db.pool.acquire().await?;
        api_token::by_hash(&mut conn, &hash_secret(token)).await?
    };
    let Some(TokenCredential {
        id,
        name,
        role,
        project_id,
        scope: stored_scope,
        revoked,
    }) = found
    else {
        return Err(AuthError::Unauthenticated("invalid API token"));
    };
    if stored_scope.as_deref() != scope.map(Scope::as_str) {
        return Err(AuthError::Unauthenticated("invalid API token"));
    }
    if revoked {
        return Err(AuthError::Unauthenticated("this API token was revoked"));
    }
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("api_token {id} has unknown role {role}"))
    })?;
    note_token_use(db, auth, id).await;
    Ok(Actor {
        kind: ActorKind::Token { id },
        name: format!("token:{name}"),
        role,
        project_id,
        scope,
    })
}

/// Records `last_used_at`, at most once a minute per token per replica: a write per request
/// would turn every read into a write. A failure is logged, never fails the request.
async fn note_token_use(db: &Db, auth: &AuthState, id: i64) {
    let entry = auth.token_recently_used.entry(id).or_insert(()).await;
    if !entry.is_fresh() {
        return;
    }
    let result = match db.pool.acquire().await {
        Ok(mut conn) => api_token::touch(&mut conn, id, now_ms()).await,
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        tracing::warn!(error = %err, token_id = id, "recording token use failed");
    }
}

async fn authenticate_session(
    db: &Db,
    cookie: &str,
    presented: &Presented<'_>,
) -> Result<Actor, AuthError> {
    let (actor, session) = session_actor(db, cookie).await?;
    if !presented.safe_method
        && !constant_time_eq(presented.csrf_token, session.csrf_token.as_bytes())
    {
        return Err(ApiError::Forbidden(
            "missing or wrong X-CSRF-Token header (the csrf_token from login or /api/v1/auth/me)"
                .into(),
        )
        .into());
    }
    Ok(actor)
}

/// The actor of a live session cookie, with the session (for its CSRF token). Checks expiry
/// and that the user is enabled, not CSRF (the caller knows the method).
pub(crate) async fn session_actor(db: &Db, cookie: &str) -> Result<(Actor, SessionRow), AuthError> {
    let Some(session) = session::find(db, cookie).await? else {
        return Err(AuthError::Unauthenticated(
            "the session is unknown or has ended; sign in again",
        ));
    };
    if session.expires_at <= now_ms() {
        return Err(AuthError::Unauthenticated(
            "the session has expired; sign in again",
        ));
    }
    if session.disabled_at.is_some() {
        return Err(AuthError::Unauthenticated("this account is disabled"));
    }
    let role = Role::parse(&session.role).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "app_user {} has unknown role {}",
            session.user_id,
            session.role
        ))
    })?;
    let actor = Actor {
        kind: ActorKind::User {
            id: session.user_id,
        },
        name: format!("user:{}", session.email),
        role,
        project_id: session.project_id,
        scope: None,
    };
    Ok((actor, session))
}
