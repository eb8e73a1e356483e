//! The first start's write: the admin user and an admin API token, created only while the
//! database has no user, in one transaction with their audit entries. `crate::bootstrap`
//! decides the secrets and hashes the password before calling it.

use serde_json::json;

use super::{AuditedAccount, audit_account};
use crate::auth::{Role, display_prefix, hash_secret};
use crate::db::{Db, now_ms};
use crate::error::ApiResult;
use crate::store::api_token::{self, NewApiToken};
use crate::store::user::{self, NewUser};

/// Who audit entries name as the actor of the first start.
const ACTOR: &str = "system:bootstrap";

/// The first admin's account.
pub(crate) struct FirstAdmin<'a> {
    /// The email, trimmed and lower-cased.
    pub(crate) email: &'a str,
    /// The password's hash. Hashed before the transaction: on SQLite it holds the write
    /// lock, and hashing is the slow part.
    pub(crate) password_hash: &'a str,
    /// The admin API token itself; only its hash is stored.
    pub(crate) token: &'a str,
    /// The token's name.
    pub(crate) token_name: &'a str,
}

/// Creates the first admin if the database has no user; `false` if it has one. Replicas
/// starting together queue on the first-start lock (a transaction-scoped advisory lock on
/// Postgres, the write lock on SQLite), so exactly one of them creates the admin and the
/// others then see its user and do nothing.
pub(crate) async fn create_admin(db: &Db, admin: &FirstAdmin<'_>) -> ApiResult<bool> {
    let mut tx = db.begin_write().await?;
    user::lock_first_start(&mut tx).await?;
    if user::any_exists(&mut tx).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let now = now_ms();
    let new_user = NewUser {
        email: admin.email,
        name: "Administrator",
        password_hash: admin.password_hash,
        role: Role::Admin,
        project_id: None,
    };
    let user_id = user::insert(&mut tx, &new_user, now).await?;
    let new_token = NewApiToken {
        name: admin.token_name,
        token_hash: &hash_secret(admin.token),
        prefix: &display_prefix(admin.token),
        role: Role::Admin,
        project_id: None,
        scope: None,
        created_by: ACTOR,
    };
    let token_id = api_token::insert(&mut tx, &new_token, now).await?;
    let user_after = json!({"id": user_id, "email": admin.email, "role": "admin", "project": null});
    let token_after =
        json!({"id": token_id, "name": admin.token_name, "role": "admin", "project": null});
    for (action, resource_type, id, after) in [
        ("user.create", "user", user_id, user_after),
        ("api_token.create", "api_token", token_id, token_after),
    ] {
        let account = AuditedAccount {
            resource_type,
            id,
            project_id: None,
            environment_id: None,
        };
        let states = (None, Some(after));
        audit_account(&mut tx, ACTOR, action, &account, states, "first start", now).await?;
    }
    tx.commit().await?;
    Ok(true)
}
