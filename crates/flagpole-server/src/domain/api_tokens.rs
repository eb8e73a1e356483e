//! API token writes: create (the token is returned once, only its hash is stored) and
//! revoke, each one transaction with its audit entry.

use super::users::project_scope;
use super::{AuditedAccount, audit_account, state_of};
use crate::auth::{
    API_TOKEN_PREFIX, Actor, Role, Scope, display_prefix, generate_secret, hash_secret,
};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::api_token::{self, ApiToken, NewApiToken};

/// Creates a token named `name` with `role`, limited to project `project` and to the
/// action `scope` if given. Returns the token itself (shown once) and its description.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    name: &str,
    role: Role,
    project: Option<&str>,
    scope: Option<Scope>,
) -> ApiResult<(String, ApiToken)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    let token = generate_secret(scope.map_or(API_TOKEN_PREFIX, Scope::token_prefix));
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let project_id = project_scope(&mut tx, project, "project").await?;
    let new = NewApiToken {
        name,
        token_hash: &hash_secret(&token),
        prefix: &display_prefix(&token),
        role,
        project_id,
        scope,
        created_by: &actor.name,
    };
    let id = api_token::insert(&mut tx, &new, now).await?;
    let info = api_token::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("inserted token missing")))?;
    let after = state_of(&info)?;
    audit_account(
        &mut tx,
        &actor.name,
        "api_token.create",
        &account(id),
        (None, Some(after)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((token, info))
}

/// Revokes token `id`: from then on it authenticates nothing. Revoking twice is a no-op.
pub(crate) async fn revoke(state: &AppState, actor: &Actor, id: i64) -> ApiResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = api_token::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("api_token", id.to_string()))?;
    if before.revoked_at.is_some() {
        return Ok(());
    }
    api_token::revoke(&mut tx, id, now).await?;
    let after = api_token::by_id(&mut tx, id).await?;
    let before = state_of(&before)?;
    let after = after.as_ref().map(state_of).transpose()?;
    audit_account(
        &mut tx,
        &actor.name,
        "api_token.revoke",
        &account(id),
        (Some(before), after),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn account(id: i64) -> AuditedAccount {
    AuditedAccount {
        resource_type: "api_token",
        id,
        project_id: None,
        environment_id: None,
    }
}
