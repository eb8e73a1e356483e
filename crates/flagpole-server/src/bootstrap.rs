//! First start: create the admin user and an admin API token when there is no user yet.
//!
//! Secrets come from the configuration (`--admin-password`, `--admin-token`) or are
//! generated; generated ones are printed once to stderr and never again, supplied ones are
//! never printed. Safe to run on every start and on several replicas at once: the write,
//! `domain::first_start::create_admin`, checks and creates under a lock (a
//! transaction-scoped advisory lock on Postgres, `begin immediate` on SQLite), so exactly
//! one admin is created.

use anyhow::Context as _;

use crate::auth::{API_TOKEN_PREFIX, generate_secret, password};
use crate::config::Config;
use crate::db::Db;
use crate::domain::first_start::{self, FirstAdmin};
use crate::store::user;

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
    // Hashed before the write: it is the slow part.
    let password_hash = password::hash(admin_password).await?;
    let admin = FirstAdmin {
        email: &email,
        password_hash: &password_hash,
        token: &token,
        token_name: ADMIN_TOKEN_NAME,
    };
    let created = first_start::create_admin(db, &admin)
        .await
        .context("creating the first admin")?;
    if !created {
        return Ok(Bootstrapped::AlreadyDone);
    }

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

async fn has_users(db: &Db) -> anyhow::Result<bool> {
    let mut conn = db.pool.acquire().await?;
    Ok(user::any_exists(&mut conn).await?)
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
