//! Dashboard sign-in: login, logout and "who am I" over the `fp_session` cookie.
//!
//! See [`super::session_cookie`] for the cookie and CSRF contract.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::credentials::ClientAddr;
use super::extract::ApiJson;
use super::session_cookie;
use crate::auth::{
    Actor, AuthError, constant_time_eq, hash_secret, login, password, session, session_actor,
};
use crate::db::now_ms;
use crate::domain::{sessions, users};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::user::{self, User};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(AuthDoc::openapi())
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// The management API's security schemes, merged into the API document. Operations name
/// them with `security(("api_token" = []), ("session" = []))`.
#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&ManagementSecurity),
    tags((name = "auth", description = "Dashboard sign-in. The `fp_session` cookie authenticates \
        management calls like an API token; non-GET calls made with it must send the session's \
        `csrf_token` in the `X-CSRF-Token` header."))
)]
struct AuthDoc;

struct ManagementSecurity;

impl utoipa::Modify for ManagementSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (fp_api_...)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                session_cookie::SESSION_COOKIE,
                "Dashboard session from POST /api/v1/auth/login; writes also need X-CSRF-Token",
            ))),
        );
    }
}

/// Sign-in request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    /// The user's email (case-insensitive).
    email: String,
    /// The user's password.
    password: String,
}

/// A signed-in dashboard session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionInfo {
    /// The signed-in user.
    user: User,
    /// Send this in the `X-CSRF-Token` header on every non-GET request made with the cookie.
    csrf_token: String,
}

/// Signs in. Sets the `fp_session` cookie (HttpOnly, SameSite=Strict) and returns the user
/// with the CSRF token. Failed attempts are limited per email and per client address.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = SessionInfo, description = "Signed in; `Set-Cookie: fp_session=…`",
            headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 401, body = ErrorBody, description = "Wrong email or password"),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many failed attempts; see Retry-After",
            headers(("retry-after" = u64, description = "Seconds to wait")))))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AuthError> {
    if body.password.chars().count() > password::MAX_PASSWORD_LEN {
        // Bounds the hashing work an anonymous caller can ask for.
        return Err(ApiError::invalid("password", "too long").into());
    }
    let email = body.email.trim().to_lowercase();
    let limiter = &state.auth.login_limiter;
    let user_id = login::check_password(&state.db, limiter, &email, body.password, client).await?;
    let hours = state.config.session_hours;
    let new = sessions::start(&state.db, user_id, hours).await?;
    let mut conn = state.db.pool.acquire().await?;
    let user = user::by_id(&mut conn, user_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {user_id} vanished at login")))?;
    let cookie = session_cookie::set_cookie(
        &new.cookie_value,
        hours.saturating_mul(3600),
        state.config.secure_cookies,
    );
    let body = SessionInfo {
        user,
        csrf_token: new.csrf_token,
    };
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Signs out: ends the session of the cookie (which needs the `X-CSRF-Token` header, like
/// every cookie write) and clears the cookie. Without a live session it only clears it.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, body = ErrorBody, description = "Missing or wrong CSRF token")))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(cookie) = session_cookie::cookie_value(&headers)
        && let Some(found) = session::find(&state.db, cookie).await?
    {
        if found.expires_at > now_ms() {
            let sent = session_cookie::csrf_token(&headers);
            if !constant_time_eq(sent, found.csrf_token.as_bytes()) {
                return Err(ApiError::Forbidden(
                    "missing or wrong X-CSRF-Token header".into(),
                ));
            }
        }
        sessions::end(&state.db, cookie).await?;
    }
    let clear = session_cookie::clear_cookie(state.config.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, clear)]).into_response())
}

/// The signed-in user and the session's CSRF token (the dashboard calls this after a page
/// reload). Needs the session cookie; API tokens get 401.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("session" = [])),
    responses(
        (status = 200, body = SessionInfo),
        (status = 401, body = ErrorBody, description = "No live session")))]
async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, AuthError> {
    let cookie = session_cookie::cookie_value(&headers).ok_or(AuthError::Unauthenticated(
        "no dashboard session: sign in with POST /api/v1/auth/login",
    ))?;
    let (_, found) = session_actor(&state.db, cookie).await?;
    let mut conn = state.db.pool.acquire().await?;
    let user = user::by_id(&mut conn, found.user_id)
        .await?
        .ok_or(AuthError::Unauthenticated("the session has ended"))?;
    Ok(Json(SessionInfo {
        user,
        csrf_token: found.csrf_token,
    }))
}

/// A password change by the signed-in user.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    /// The password the user signs in with now.
    current_password: String,
    /// The new password, at least 12 characters.
    new_password: String,
}

/// Changes the signed-in user's own password. Needs the current one (wrong guesses count
/// against the sign-in limit); the user's other sessions end, this one stays. Admins reset
/// another user's password with `PATCH /api/v1/users/{id}`.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("session" = [])),
    request_body = ChangePassword,
    params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token (required; the dashboard's client adds it to every write)")),
    responses(
        (status = 200, body = User, description = "Changed"),
        (status = 401, body = ErrorBody, description = "No live session"),
        (status = 403, body = ErrorBody, description = "Not a session (API token), or missing CSRF token"),
        (status = 409, body = ErrorBody, description = "The password changed meanwhile"),
        (status = 422, body = ErrorBody, description = "`current_password` wrong or `new_password` too short"),
        (status = 429, body = ErrorBody, description = "Too many wrong current passwords")))]
async fn change_password(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<Json<User>> {
    if body.current_password.chars().count() > password::MAX_PASSWORD_LEN {
        return Err(ApiError::invalid("current_password", "too long"));
    }
    // The actor is a user only when it came from this cookie (a bearer token wins).
    let cookie = session_cookie::cookie_value(&headers).unwrap_or_default();
    let user = users::change_own_password(
        &state,
        &actor,
        body.current_password,
        body.new_password,
        &hash_secret(cookie),
    )
    .await?;
    Ok(Json(user))
}
