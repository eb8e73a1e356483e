//! Flag lifecycle on the server: the facts flagpole-core's decision reads (a project's
//! lifetimes, each flag's type, dates and configs, when SDKs last evaluated it), gathered
//! with a fixed number of queries for one flag or a whole list. "Potentially stale" is
//! never stored: it moves with the clock and with telemetry, so it is decided when a flag
//! is shown. The project's lifetimes are set in `lifetimes.rs`.

use std::collections::HashMap;

use flagpole_core::lifecycle::{
    self, FlagFacts, FlagType, Lifetimes, StaleCode, UNUSED_AFTER_DAYS,
};
use flagpole_core::model::FlagConfig;
use serde::Serialize;

use super::flag_write::FlagView;
use crate::db::now_ms;
use crate::error::ApiResult;
use crate::store::Conn;
use crate::store::flag::FlagRow;
use crate::store::ingest::DAY_MS;
use crate::store::insights;
use crate::store::project::{self, LifetimeOverrides};

/// A flag's lifecycle state as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct Lifecycle {
    /// "Potentially stale": at least one reason applies. Never for a permanent or an
    /// archived flag.
    pub stale: bool,
    /// Every reason that applies, in a fixed order.
    pub reasons: Vec<StaleReason>,
}

/// Why a flag is potentially stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct StaleReason {
    /// `lifetime_exceeded` (older than its type's expected lifetime), `settled`
    /// (unchanged for 14 days and off, or serving one variant to everyone, in every
    /// environment) or `not_evaluated` (no SDK evaluated it for 7 days in any
    /// environment).
    #[schema(value_type = String)]
    pub code: StaleCode,
    /// The reason in words, with its figures.
    pub message: String,
}

impl From<lifecycle::Staleness> for Lifecycle {
    fn from(s: lifecycle::Staleness) -> Lifecycle {
        Lifecycle {
            stale: s.stale,
            reasons: s
                .reasons
                .into_iter()
                .map(|r| StaleReason {
                    code: r.code,
                    message: r.message,
                })
                .collect(),
        }
    }
}

/// A project's expected lifetimes: the defaults with its overrides applied.
pub(crate) fn effective(overrides: &LifetimeOverrides) -> Lifetimes {
    overrides
        .iter()
        .fold(Lifetimes::default(), |l, (t, days)| l.with(*t, *days))
}

/// What deciding the lifecycle of some flags of one project needs beyond the flags
/// themselves, read once for all of them.
pub(crate) struct Judge {
    lifetimes: Lifetimes,
    /// When each flag (by key) was last evaluated in each environment (by key), where
    /// that was within the window the "not evaluated" rule looks at.
    last: HashMap<String, HashMap<String, i64>>,
    now: i64,
}

/// The stored facts about one flag that the decision reads, from a row or a view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    key: &'a str,
    flag_type: FlagType,
    permanent: bool,
    archived: bool,
    created_at: i64,
    updated_at: i64,
}

impl<'a> From<&'a FlagRow> for Subject<'a> {
    fn from(row: &'a FlagRow) -> Subject<'a> {
        Subject {
            key: &row.key,
            flag_type: row.flag_type,
            permanent: row.permanent,
            archived: row.archived_at.is_some(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl<'a> From<&'a FlagView> for Subject<'a> {
    fn from(view: &'a FlagView) -> Subject<'a> {
        Subject {
            key: &view.key,
            flag_type: view.flag_type,
            permanent: view.permanent,
            archived: view.archived,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

impl Judge {
    /// Reads the project's lifetimes and the last evaluations of `keys` (every flag of
    /// the project when `None`): two queries whatever the number of flags.
    ///
    /// Only evaluations within the last [`UNUSED_AFTER_DAYS`] days are read. For the
    /// rule, a flag last evaluated before that is the same as one never evaluated: both
    /// count from the later of creation and last evaluation, and either way that is more
    /// than the window ago.
    pub(crate) async fn load(
        conn: &mut Conn,
        project_id: i64,
        keys: Option<&[String]>,
        now: i64,
    ) -> ApiResult<Judge> {
        let lifetimes = effective(&project::lifetimes(&mut *conn, project_id).await?);
        let since = now - UNUSED_AFTER_DAYS * DAY_MS;
        let mut last: HashMap<String, HashMap<String, i64>> = HashMap::new();
        for (env, flag, at) in
            insights::last_evaluated_in_project(conn, project_id, since, keys).await?
        {
            last.entry(flag).or_default().insert(env, at);
        }
        Ok(Judge {
            lifetimes,
            last,
            now,
        })
    }

    /// The lifecycle of a flag with its configs by environment key.
    pub(crate) fn judge<'a>(
        &self,
        flag: Subject<'_>,
        configs: impl IntoIterator<Item = (&'a str, &'a FlagConfig)>,
    ) -> Lifecycle {
        let last = self.last.get(flag.key);
        let environments: Vec<(&FlagConfig, Option<i64>)> = configs
            .into_iter()
            .map(|(env, config)| (config, last.and_then(|l| l.get(env)).copied()))
            .collect();
        let facts = FlagFacts {
            flag_type: flag.flag_type,
            permanent: flag.permanent,
            archived: flag.archived,
            created_at: flag.created_at,
            updated_at: flag.updated_at,
            environments: &environments,
        };
        lifecycle::staleness(&facts, &self.lifetimes, self.now).into()
    }
}

/// The lifecycle of one flag of project `project_id` as a write or a read returned it.
pub(crate) async fn of_view(
    conn: &mut Conn,
    project_id: i64,
    view: &FlagView,
) -> ApiResult<Lifecycle> {
    let keys = [view.key.clone()];
    let judge = Judge::load(conn, project_id, Some(&keys), now_ms()).await?;
    Ok(judge.judge(
        view.into(),
        view.environments.iter().map(|(k, c)| (k.as_str(), c)),
    ))
}
