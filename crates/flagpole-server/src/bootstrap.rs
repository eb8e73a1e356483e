//! First start: create the admin user and an admin API token when there is no user yet.
//!
//! Secrets come from the configuration (`--admin-password`, `--admin-token`) or are
//! generated; generated ones are printed once to stderr and never again, supplied ones are
//! never printed. Safe to run on every start and on several replicas at once: on Postgres
//! the check-and-create runs under a transaction-scoped advisory lock, on SQLite under
//! `begin immediate` (the write lock), so exactly one admin is created.

use crate::auth::{API_TOKEN_PREFIX, Role, display_prefix, generate_secret, hash_secret, password};
use crate::config::Config;
use crate::db::{Backend, Db, now_ms};
use crate::store::audit::{self, NewAuditEvent};
use serde_json::json;

/// Arbitrary constant naming the bootstrap advisory lock (`pg_advisory_xact_lock`).
const BOOTSTRAP_LOCK_ID: i64 = 0x666c_6167_706f_6c65; // "flagpole"

/// Name of the API token created on first start.
pub const ADMIN_TOKEN_NAME: &str = "bootstrap-admin";

/// What a bootstrap run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrapped {
    /// Users already existed; nothing changed.
    AlreadyDone,
    /// The admin user and token were created. Secrets are `Some` only when generated.
    Created {
        /// The admin's email.
        email: String,
        /// The generated password, if none was configured.
        generated_password: Option<String>,
        /// The generated API token, if none was configured.
        generated_token: Option<String>,
    },
}

/// Creates the first admin if the database has no user. See the module docs.
pub async fn bootstrap(db: &Db, config: &Config) -> anyhow::Result<Bootstrapped> {
    password::prepare().await;
    if has_users(db).await? {
        return Ok(Bootstrapped::AlreadyDone);
    }
    let email = config.admin_email.trim().to_lowercase();
    if !crate::auth::is_plausible_email(&email) {
        anyhow::bail!("FLAGPOLE_ADMIN_EMAIL `{email}` is not an email address");
    }
    let (admin_password, generated_password) = match &config.admin_password {
        Some(p) => (p.expose().to_owned(), None),
        None => {
            let p = generate_secret("");
            (p.clone(), Some(p))
        }
    };
    if password::validate(&admin_password, "admin_password").is_err() {
        anyhow::bail!(
            "FLAGPOLE_ADMIN_PASSWORD must be at least {} characters",
            password::MIN_PASSWORD_LEN
        );
    }
    let (token, generated_token) = match &config.admin_token {
        Some(t) => (t.expose().to_owned(), None),
        None => {
            let t = generate_secret(API_TOKEN_PREFIX);
            (t.clone(), Some(t))
        }
    };
    if !token.starts_with(API_TOKEN_PREFIX) || token.len() < API_TOKEN_PREFIX.len() + 24 {
        anyhow::bail!(
            "FLAGPOLE_ADMIN_TOKEN must start with `{API_TOKEN_PREFIX}` and have at least 24 \
             more characters"
        );
    }
    // Hash before taking the lock: it is the slow part.
    let password_hash = password::hash(admin_password).await?;

    let mut tx = db.begin_write().await?;
    if db.backend == Backend::Postgres {
        // Released at commit or rollback. Replicas starting together queue here; the
        // second one then sees the first one's user and does nothing.
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(BOOTSTRAP_LOCK_ID)
            .execute(&mut *tx)
            .await?;
    }
    let exists: Option<i64> = sqlx::query_scalar("select id from app_user limit 1")
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        tx.rollback().await?;
        return Ok(Bootstrapped::AlreadyDone);
    }
    let now = now_ms();
    let actor = "system:bootstrap";
    let user_id: i64 = sqlx::query_scalar(
        "insert into app_user (email, name, password_hash, role, project_id, created_at) \
         values ($1, $2, $3, $4, null, $5) returning id",
    )
    .bind(&email)
    .bind("Administrator")
    .bind(&password_hash)
    .bind(Role::Admin.as_str())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let token_id: i64 = sqlx::query_scalar(
        "insert into api_token (name, token_hash, prefix, role, project_id, created_by, created_at) \
         values ($1, $2, $3, $4, null, $5, $6) returning id",
    )
    .bind(ADMIN_TOKEN_NAME)
    .bind(hash_secret(&token))
    .bind(display_prefix(&token))
    .bind(Role::Admin.as_str())
    .bind(actor)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let user_after = json!({"id": user_id, "email": email, "role": "admin", "project": null});
    let token_after =
        json!({"id": token_id, "name": ADMIN_TOKEN_NAME, "role": "admin", "project": null});
    for (action, resource_type, id, after) in [
        ("user.create", "user", user_id, user_after),
        ("api_token.create", "api_token", token_id, token_after),
    ] {
        let key = id.to_string();
        let event = NewAuditEvent {
            actor,
            action,
            resource_type,
            resource_key: &key,
            after: Some(after),
            comment: "first start",
            ..NewAuditEvent::default()
        };
        audit::insert(&mut tx, &event, now)
            .await
            .map_err(|e| anyhow::anyhow!("writing the audit entry: {e:?}"))?;
    }
    tx.commit().await?;

    print_secrets(
        &email,
        generated_password.as_deref(),
        generated_token.as_deref(),
    );
    Ok(Bootstrapped::Created {
        email,
        generated_password,
        generated_token,
    })
}

async fn has_users(db: &Db) -> Result<bool, sqlx::Error> {
    let any: Option<i64> = sqlx::query_scalar("select id from app_user limit 1")
        .fetch_optional(&db.pool)
        .await?;
    Ok(any.is_some())
}

/// Prints generated secrets once, in a box that is hard to miss in a log.
fn print_secrets(email: &str, password: Option<&str>, token: Option<&str>) {
    if password.is_none() && token.is_none() {
        eprintln!(
            "flagpole: created admin user {email} and API token `{ADMIN_TOKEN_NAME}` from the configuration"
        );
        return;
    }
    let mut lines = vec![
        "Flagpole first start: created the admin account.".to_owned(),
        "SAVE THESE NOW; they are not shown again.".to_owned(),
        String::new(),
        format!("admin email:    {email}"),
    ];
    match password {
        Some(p) => lines.push(format!("admin password: {p}")),
        None => lines.push("admin password: (as configured)".to_owned()),
    }
    match token {
        Some(t) => lines.push(format!("admin token:    {t}")),
        None => lines.push("admin token:    (as configured)".to_owned()),
    }
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = format!("+{}+\n", "-".repeat(width + 2));
    for line in &lines {
        let pad = width - line.chars().count();
        out.push_str(&format!("| {line}{} |\n", " ".repeat(pad)));
    }
    out.push_str(&format!("+{}+", "-".repeat(width + 2)));
    // One call, so concurrent log lines cannot interleave with the box.
    eprintln!("{out}");
}
