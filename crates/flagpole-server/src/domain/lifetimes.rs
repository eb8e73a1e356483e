//! A project's expected flag lifetimes: read with their defaults, and replaced (audited,
//! with the project's version), checking each value.

use flagpole_core::lifecycle::{FlagType, Lifetimes};
use serde::Serialize;
use serde_json::{Value, json};

use super::lifecycle::effective;
use super::{Problems, check_version, stale};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::project::{self, LifetimeOverrides};

/// Longest lifetime a project may set: a century. Longer is "never" (null).
pub(crate) const MAX_LIFETIME_DAYS: u32 = 36_500;

/// A project's flag lifetimes as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct LifecycleSettings {
    /// Expected lifetime per flag type in days; null: never expires.
    pub lifetimes: LifetimesDoc,
    /// What a type gets when the project does not choose.
    pub defaults: LifetimesDoc,
    /// The project's version (these settings are part of the project).
    pub version: i64,
}

/// Days per flag type; null: never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct LifetimesDoc {
    /// Release flags.
    pub release: Option<u32>,
    /// Experiments.
    pub experiment: Option<u32>,
    /// Operational flags.
    pub operational: Option<u32>,
    /// Kill switches.
    pub kill_switch: Option<u32>,
    /// Permission flags.
    pub permission: Option<u32>,
}

impl From<Lifetimes> for LifetimesDoc {
    fn from(l: Lifetimes) -> LifetimesDoc {
        LifetimesDoc {
            release: l.release,
            experiment: l.experiment,
            operational: l.operational,
            kill_switch: l.kill_switch,
            permission: l.permission,
        }
    }
}

impl LifecycleSettings {
    fn new(overrides: &LifetimeOverrides, version: i64) -> LifecycleSettings {
        LifecycleSettings {
            lifetimes: effective(overrides).into(),
            defaults: Lifetimes::default().into(),
            version,
        }
    }

    /// The settings of a project.
    pub(crate) async fn load(
        conn: &mut Conn,
        project: &project::Project,
    ) -> ApiResult<LifecycleSettings> {
        let overrides = project::lifetimes(conn, project.id).await?;
        Ok(LifecycleSettings::new(&overrides, project.version))
    }
}

/// A project's new lifetimes as a request gives them: for each type it names, a JSON
/// value (days, or null for never); a type it does not name goes back to its default.
pub(crate) type LifetimesInput = Vec<(FlagType, Value)>;

/// Checks each value: a whole number of days from 1 to [`MAX_LIFETIME_DAYS`], or null.
fn parse_lifetimes(input: &LifetimesInput) -> ApiResult<LifetimeOverrides> {
    let mut problems = Problems::default();
    let mut overrides = LifetimeOverrides::new();
    for (t, value) in input {
        let days = match value {
            Value::Null => Some(None),
            Value::Number(n) => n
                .as_u64()
                .filter(|d| (1..=u64::from(MAX_LIFETIME_DAYS)).contains(d))
                .and_then(|d| u32::try_from(d).ok())
                .map(Some),
            _ => None,
        };
        match days {
            Some(days) => {
                overrides.insert(*t, days);
            }
            None => problems.push(
                format!("lifetimes.{}", t.as_str()),
                format!(
                    "must be a whole number of days from 1 to {MAX_LIFETIME_DAYS}, or null for \
                     never"
                ),
            ),
        }
    }
    problems.finish()?;
    Ok(overrides)
}

/// Replaces a project's lifetime overrides (bumping its version) and audits the change as
/// `project.lifetimes_update`.
pub(crate) async fn update_lifetimes(
    state: &AppState,
    actor: &Actor,
    key: &str,
    expected: Option<i64>,
    input: &LifetimesInput,
    comment: &str,
) -> ApiResult<LifecycleSettings> {
    let overrides = parse_lifetimes(input)?;
    let mut tx = state.db.begin_write().await?;
    let project = project::by_key(&mut tx, key)
        .await?
        .ok_or_else(|| ApiError::not_found("project", key))?;
    let before = LifecycleSettings::load(&mut tx, &project).await?;
    check_version(expected, project.version, || before.clone())?;
    let now = now_ms();
    let version = project::set_lifetimes(&mut tx, project.id, project.version, &overrides, now)
        .await?
        .ok_or_else(|| stale(project.version, project.version, &before))?;
    let after = LifecycleSettings::new(&overrides, version);
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: &actor.name,
            action: "project.lifetimes_update",
            project_id: Some(project.id),
            resource_type: "project",
            resource_key: key,
            before: Some(json!({"lifetimes": before.lifetimes})),
            after: Some(json!({"lifetimes": after.lifetimes, "overrides": overrides})),
            comment,
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_days_or_never_and_errors_name_the_type() {
        let ok: LifetimesInput = vec![
            (FlagType::Operational, json!(14)),
            (FlagType::Release, Value::Null),
        ];
        let got = parse_lifetimes(&ok).unwrap();
        let l = effective(&got);
        assert_eq!(
            (l.operational, l.release, l.experiment),
            (Some(14), None, Some(40))
        );
        for bad in [json!(0), json!(-3), json!(1.5), json!("40"), json!(36_501)] {
            let input: LifetimesInput = vec![(FlagType::KillSwitch, bad.clone())];
            match parse_lifetimes(&input) {
                Err(ApiError::Validation(errors)) => {
                    assert_eq!(errors.len(), 1, "{bad}");
                    assert_eq!(errors[0].field, "lifetimes.kill_switch", "{bad}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
