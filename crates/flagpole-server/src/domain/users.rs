//! User writes: create, update (email, name, role, scope, password, disabled), delete.
//! Each is one transaction with its audit entry; password hashes never reach the audit
//! trail. Passwords are hashed before the transaction: on SQLite it holds the write lock.

use super::{AuditedAccount, audit_account, state_of};
use crate::auth::{Actor, ActorKind, Role, is_plausible_email, password};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, current_of};
use crate::state::AppState;
use crate::store::user::{self, NewUser, User, UserChange};
use crate::store::{Conn, project, session};

/// Longest display name.
const MAX_USER_NAME_LEN: usize = 200;

/// Fields of a new user.
#[derive(Debug)]
pub(crate) struct NewUserInput {
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) role: Role,
    /// Key of the project to limit the user to.
    pub(crate) project: Option<String>,
}

/// Creates a user.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    input: NewUserInput,
) -> ApiResult<User> {
    let email = normalise_email(&input.email)?;
    validate_name(&input.name)?;
    password::validate(&input.password, "password")?;
    let hash = password::hash(input.password).await?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let project_id = project_scope(&mut tx, input.project.as_deref(), "project").await?;
    if user::email_taken(&mut tx, &email, None).await? {
        return Err(email_conflict(&email, None));
    }
    let new = NewUser {
        email: &email,
        name: &input.name,
        password_hash: &hash,
        role: input.role,
        project_id,
    };
    let id = user::insert(&mut tx, &new, now).await?;
    let created = user::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("inserted user missing")))?;
    let after = state_of(&created)?;
    audit_account(
        &mut tx,
        &actor.name,
        "user.create",
        &account(id),
        (None, Some(after)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct UserPatch {
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) role: Option<Role>,
    /// `Some(None)`: all projects.
    pub(crate) project: Option<Option<String>>,
    /// A new password; ends the user's sessions.
    pub(crate) password: Option<String>,
    /// Disabling ends the user's sessions.
    pub(crate) disabled: Option<bool>,
}

/// Updates user `id` if it is at version `expected`.
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    id: i64,
    expected: i64,
    patch: UserPatch,
) -> ApiResult<User> {
    let email = patch.email.as_deref().map(normalise_email).transpose()?;
    if let Some(name) = &patch.name {
        validate_name(name)?;
    }
    if patch.disabled == Some(true) && own_account(actor, id) {
        return Err(ApiError::invalid(
            "disabled",
            "you cannot disable your own account",
        ));
    }
    let hash = match patch.password {
        Some(p) => {
            password::validate(&p, "password")?;
            Some(password::hash(p).await?)
        }
        None => None,
    };
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    user::lock_admins(&mut tx).await?;
    let before = user::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    if before.version != expected {
        return Err(ApiError::Conflict {
            message: format!(
                "user {id} is at version {}, not {}",
                before.version, expected
            ),
            current: current_of(&before),
        });
    }
    if let Some(email) = &email
        && user::email_taken(&mut tx, email, Some(id)).await?
    {
        return Err(email_conflict(email, Some(&before)));
    }
    let project_id = match &patch.project {
        Some(key) => Some(project_scope(&mut tx, key.as_deref(), "project").await?),
        None => None,
    };
    let stays_full_admin = patch.role.unwrap_or(before.role) == Role::Admin
        && project_id.map_or(before.project.is_none(), |scope| scope.is_none())
        && !patch.disabled.unwrap_or(before.disabled);
    if !stays_full_admin {
        keep_an_admin(&mut tx, &before, "changing").await?;
    }
    let disabled_at: Option<Option<i64>> = match patch.disabled {
        None => None,
        Some(false) => Some(None),
        // Already disabled: keep the original time.
        Some(true) if before.disabled => None,
        Some(true) => Some(Some(now)),
    };
    let ends_sessions = hash.is_some() || patch.disabled == Some(true);
    let password_changed = hash.is_some();
    let change = UserChange {
        email,
        name: patch.name,
        role: patch.role,
        password_hash: hash,
        project_id,
        disabled_at,
    };
    user::update(&mut tx, id, change).await?;
    if ends_sessions {
        session::delete_for_user(&mut tx, id).await?;
    }
    let after = user::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("updated user missing")))?;
    let mut audited_after = state_of(&after)?;
    if password_changed {
        audited_after["password_changed"] = serde_json::Value::Bool(true);
    }
    let before_state = state_of(&before)?;
    audit_account(
        &mut tx,
        &actor.name,
        "user.update",
        &account(id),
        (Some(before_state), Some(audited_after)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A signed-in user's own password change: `current` must be their password (a session
/// alone is not enough: someone at an unlocked screen could otherwise lock the owner out).
/// Wrong guesses count against the sign-in limit of the user's email, as wrong sign-ins
/// do. The user's other sessions end; `session_hash` (the one making the change) stays.
pub(crate) async fn change_own_password(
    state: &AppState,
    actor: &Actor,
    current: String,
    new: String,
    session_hash: &str,
) -> ApiResult<User> {
    let ActorKind::User { id } = actor.kind else {
        return Err(ApiError::Forbidden(
            "only a signed-in user changes their own password; an admin resets another \
             user's with PATCH /api/v1/users/{id}"
                .into(),
        ));
    };
    password::validate(&new, "new_password")?;
    let (email, stored) = {
        let mut conn = state.db.pool.acquire().await?;
        let found = user::by_id(&mut conn, id).await?;
        let hash = user::password_hash(&mut conn, id).await?;
        found.zip(hash)
    }
    .map(|(user, hash)| (user.email, hash))
    .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    let email = email.as_str();
    let limiter = &state.auth.login_limiter;
    if let Err(retry_after_secs) = limiter.check(email, None).await {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    if !password::verify(current, Some(stored.clone())).await? {
        limiter.record_failure(email, None).await;
        return Err(ApiError::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let hash = password::hash(new).await?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    // The check above ran outside the transaction (hashing must not hold SQLite's write
    // lock); refuse if the password changed in between rather than overwrite that change.
    if user::password_hash(&mut tx, id).await?.as_deref() != Some(stored.as_str()) {
        return Err(ApiError::Conflict {
            message: "your password was changed meanwhile; sign in again".into(),
            current: None,
        });
    }
    let before = user::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    let change = UserChange {
        password_hash: Some(hash),
        ..UserChange::default()
    };
    user::update(&mut tx, id, change).await?;
    session::delete_others(&mut tx, id, session_hash).await?;
    let after = user::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("updated user missing")))?;
    let mut audited_after = state_of(&after)?;
    audited_after["password_changed"] = serde_json::Value::Bool(true);
    audit_account(
        &mut tx,
        &actor.name,
        "user.password_change",
        &account(id),
        (Some(state_of(&before)?), Some(audited_after)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    limiter.reset(email).await;
    Ok(after)
}

/// Deletes user `id` and ends their sessions. The audit trail keeps their name as actor.
pub(crate) async fn delete(state: &AppState, actor: &Actor, id: i64) -> ApiResult<()> {
    if own_account(actor, id) {
        return Err(ApiError::invalid(
            "id",
            "you cannot delete your own account",
        ));
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    user::lock_admins(&mut tx).await?;
    let before = user::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user", id.to_string()))?;
    keep_an_admin(&mut tx, &before, "deleting").await?;
    session::delete_for_user(&mut tx, id).await?;
    user::delete(&mut tx, id).await?;
    let before = state_of(&before)?;
    audit_account(
        &mut tx,
        &actor.name,
        "user.delete",
        &account(id),
        (Some(before), None),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses (409) a change that would leave no enabled admin of all projects: nobody could
/// manage users, tokens or projects any more, and an admin API token could otherwise
/// delete every admin user. `before` is the user being deleted or changed so that it stops
/// being one (demoted, limited to a project, disabled). The caller holds
/// [`user::lock_admins`], so two concurrent changes cannot each count the other's admin.
async fn keep_an_admin(conn: &mut Conn, before: &User, doing: &str) -> ApiResult<()> {
    let is_full_admin = before.role == Role::Admin && before.project.is_none() && !before.disabled;
    if is_full_admin && user::other_full_admins(conn, before.id).await? == 0 {
        return Err(ApiError::Conflict {
            message: format!(
                "{doing} {} this way would leave no admin of all projects; make another user \
                 an admin first",
                before.email
            ),
            current: current_of(before),
        });
    }
    Ok(())
}

/// Resolves an optional project key from a body field to its id (422 if unknown).
pub(crate) async fn project_scope(
    conn: &mut Conn,
    key: Option<&str>,
    field: &str,
) -> ApiResult<Option<i64>> {
    let Some(key) = key else { return Ok(None) };
    let found = project::by_key(conn, key).await?;
    found
        .map(|p| Some(p.id))
        .ok_or_else(|| ApiError::invalid(field, format!("no project with key `{key}`")))
}

fn account(id: i64) -> AuditedAccount {
    AuditedAccount {
        resource_type: "user",
        id,
        project_id: None,
        environment_id: None,
    }
}

fn email_conflict(email: &str, current: Option<&User>) -> ApiError {
    ApiError::Conflict {
        message: format!("a user with email `{email}` already exists"),
        current: current.and_then(current_of),
    }
}

fn normalise_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    if !is_plausible_email(&email) {
        return Err(ApiError::invalid("email", "not an email address"));
    }
    Ok(email)
}

fn validate_name(name: &str) -> ApiResult<()> {
    if name.chars().count() > MAX_USER_NAME_LEN {
        return Err(ApiError::invalid(
            "name",
            format!("must be at most {MAX_USER_NAME_LEN} characters"),
        ));
    }
    Ok(())
}

fn own_account(actor: &Actor, id: i64) -> bool {
    actor.kind == ActorKind::User { id }
}
