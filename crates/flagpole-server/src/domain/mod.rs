//! The domain writes: each function is one transaction that checks the expected version,
//! applies the change in memory, validates every affected environment with
//! `Snapshot::compile_strict`, writes the change, bumps `data_version` (with `env_change`
//! rows), records flag history and the audit entry, commits, and only then announces the
//! new environment versions on the change feed. Any error before the commit drops the
//! transaction, which rolls everything back.
//!
//! HTTP handlers (in `crate::http`) authenticate, authorise and parse; everything that
//! must hold regardless of the caller lives here.

pub(crate) mod alert_mappings;
pub(crate) mod alert_receive;
pub(crate) mod api_tokens;
pub(crate) mod configs;
pub(crate) mod critical;
pub(crate) mod diff;
pub(crate) mod environments;
pub(crate) mod experiments;
pub(crate) mod first_start;
pub(crate) mod flag_write;
pub(crate) mod flags;
pub(crate) mod history;
pub(crate) mod lifecycle;
pub(crate) mod lifetimes;
pub(crate) mod projects;
pub(crate) mod scheduled_changes;
pub(crate) mod sdk_keys;
pub(crate) mod segments;
pub(crate) mod sessions;
pub(crate) mod users;
pub(crate) mod validate;
pub(crate) mod variant_rename;

use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::{AppState, EnvChanged};
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};

/// Longest accepted name.
pub(crate) const MAX_NAME_LEN: usize = 200;
/// Longest accepted description or comment.
pub(crate) const MAX_TEXT_LEN: usize = 10_000;
/// Most tags on one flag.
pub(crate) const MAX_TAGS: usize = 50;
/// Longest tag.
pub(crate) const MAX_TAG_LEN: usize = 100;

/// Announces committed environment versions. Call only after the commit succeeded.
pub(crate) fn publish(state: &AppState, bumped: &[EnvChanged]) {
    for change in bumped {
        state.changes.publish(*change);
    }
}

/// 409 for a stale version, carrying the resource as stored.
pub(crate) fn stale<T: Serialize>(expected: i64, actual: i64, current: &T) -> ApiError {
    ApiError::Conflict {
        message: format!(
            "version conflict: the request was based on version {expected}, the stored version \
             is {actual}; reload and reapply your change"
        ),
        current: crate::error::current_of(current),
    }
}

/// Fails with a stale-version 409 unless `expected` (when given) is `actual`.
pub(crate) fn check_version<T: Serialize>(
    expected: Option<i64>,
    actual: i64,
    current: impl FnOnce() -> T,
) -> ApiResult<()> {
    match expected {
        Some(e) if e != actual => Err(stale(e, actual, &current())),
        _ => Ok(()),
    }
}

/// Collects field problems before a write is attempted.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    /// Records a problem.
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// A key as flagpole-core accepts it (flags, segments, variants).
    pub(crate) fn key(&mut self, field: &str, key: &str) {
        if let Err(message) = flagpole_core::validate_key(key) {
            self.push(field, message);
        }
    }

    /// A project or environment key, the one rule for both: a path segment of URLs, in
    /// the API (`/api/v1/projects/{project}/environments/{env}`) and the dashboard
    /// (`/p/{project}/flags`). Browsers, proxies and routers collapse the segments `.` and
    /// `..`, so such a key names a page that cannot be reached (signing in looped on "No
    /// page here"), and any other dot invites the same confusion for no benefit: letters,
    /// digits, `-` and `_` only. Flag, segment and variant keys keep flagpole-core's rule
    /// (dots allowed); SDKs and stored configs name them. Stored keys from before this rule
    /// were rewritten by migrations 0008 (projects) and 0010 (environments).
    pub(crate) fn url_key(&mut self, field: &str, key: &str) {
        if let Err(message) = flagpole_core::validate_key(key) {
            self.push(field, message);
        } else if key.contains('.') {
            self.push(
                field,
                "may contain only ASCII letters, digits, `-` and `_` (the key is a URL segment)",
            );
        }
    }

    /// A bounded piece of text (counted in characters).
    pub(crate) fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.push(field, format!("must be at most {max} characters"));
        }
    }

    /// Tags: few, short, non-empty.
    pub(crate) fn tags(&mut self, field: &str, tags: &[String]) {
        if tags.len() > MAX_TAGS {
            self.push(field, format!("at most {MAX_TAGS} tags"));
        }
        for (i, tag) in tags.iter().enumerate() {
            if tag.trim().is_empty() {
                self.push(format!("{field}[{i}]"), "must not be empty");
            } else {
                self.text(&format!("{field}[{i}]"), tag, MAX_TAG_LEN);
            }
        }
    }

    /// `Err(422)` if anything was recorded.
    pub(crate) fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// The comment to record: trimmed, bounded.
pub(crate) fn comment(comment: Option<&str>) -> ApiResult<String> {
    let comment = comment.unwrap_or("").trim().to_owned();
    let mut problems = Problems::default();
    problems.text("comment", &comment, MAX_TEXT_LEN);
    problems.finish()?;
    Ok(comment)
}

/// An account resource (user, API token, SDK key) as its audit entries name it: by type
/// and id, and for SDK keys with their project and environment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditedAccount {
    /// `user`, `api_token` or `sdk_key`.
    pub(crate) resource_type: &'static str,
    /// Its id (the resource key of the entry).
    pub(crate) id: i64,
    /// The project it belongs to, if any.
    pub(crate) project_id: Option<i64>,
    /// The environment it belongs to, if any.
    pub(crate) environment_id: Option<i64>,
}

/// Audits a change to an account resource, in the write's transaction: the one place
/// account writes (and first start) build their entries. `states` is (before, after):
/// before is absent for creations, after for deletions. `actor` is `Actor::name` (or
/// `system:…`); `comment` is usually empty.
pub(crate) async fn audit_account(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    account: &AuditedAccount,
    (before, after): (Option<Value>, Option<Value>),
    comment: &str,
    now: i64,
) -> ApiResult<()> {
    let key = account.id.to_string();
    let event = NewAuditEvent {
        actor,
        action,
        project_id: account.project_id,
        environment_id: account.environment_id,
        resource_type: account.resource_type,
        resource_key: &key,
        before,
        after,
        comment,
    };
    Ok(audit::insert(conn, &event, now).await?)
}

/// A resource's state as an audit entry records it.
pub(crate) fn state_of<T: Serialize>(value: &T) -> ApiResult<Value> {
    Ok(serde_json::to_value(value)?)
}
