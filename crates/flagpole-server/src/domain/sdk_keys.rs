//! SDK key writes: create (the key is returned once, only its hash is stored) and revoke,
//! each one transaction with its audit entry. Revoking also forgets the key in this
//! replica's cache, after the commit.

use super::{AuditedAccount, audit_account, state_of};
use crate::auth::{Actor, SDK_KEY_PREFIX, display_prefix, generate_secret, hash_secret};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::environment::Environment;
use crate::store::sdk_key::{self, NewSdkKey, SdkKey};

/// Creates an SDK key named `name` for `env`. Returns the key itself (shown once) and its
/// description.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    env: &Environment,
    name: &str,
) -> ApiResult<(String, SdkKey)> {
    let name = name.trim();
    let now = now_ms();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    let key = generate_secret(SDK_KEY_PREFIX);
    let mut tx = state.db.begin_write().await?;
    let new = NewSdkKey {
        environment_id: env.id,
        name,
        key_hash: &hash_secret(&key),
        prefix: &display_prefix(&key),
        created_by: &actor.name,
    };
    let info = sdk_key::insert(&mut tx, &new, &env.key, now).await?;
    let after = state_of(&info)?;
    audit_account(
        &mut tx,
        &actor.name,
        "sdk_key.create",
        &account(env, info.id),
        (None, Some(after)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((key, info))
}

/// Revokes key `id` of `env`. This replica stops accepting it at once, others within the
/// cache's lifetime. Revoking twice is a no-op.
pub(crate) async fn revoke(
    state: &AppState,
    actor: &Actor,
    env: &Environment,
    id: i64,
) -> ApiResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let Some(before) = sdk_key::by_id(&mut tx, env.id, &env.key, id).await? else {
        return Err(ApiError::not_found("sdk_key", id.to_string()));
    };
    if before.revoked_at.is_some() {
        return Ok(());
    }
    sdk_key::revoke(&mut tx, id, now).await?;
    let after = SdkKey {
        revoked_at: Some(now),
        ..before.clone()
    };
    let (before_state, after_state) = (state_of(&before)?, state_of(&after)?);
    audit_account(
        &mut tx,
        &actor.name,
        "sdk_key.revoke",
        &account(env, id),
        (Some(before_state), Some(after_state)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    // After the commit: invalidating earlier could let a concurrent lookup re-cache the key
    // as valid from the not-yet-committed state.
    state.auth.sdk_keys.invalidate(&before.key_hash).await;
    Ok(())
}

fn account(env: &Environment, id: i64) -> AuditedAccount {
    AuditedAccount {
        resource_type: "sdk_key",
        id,
        project_id: Some(env.project_id),
        environment_id: Some(env.id),
    }
}
