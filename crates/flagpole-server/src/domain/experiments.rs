//! Experiment writes (issue 16), each one transaction with its audit entry: create and
//! edit a draft, start (the flag serves the split and is marked so that SDKs send
//! exposures), restart with a new split, stop with a decision (the mark goes). And the
//! one read that is more than a row: results, from the per-unit aggregates the ingest
//! writer maintains, computed by `experiment::results` (flagpole-stats).

use flagpole_core::model::{FlagConfig, Rollout, Serve, WeightedVariant};

use super::configs::{self, ConfigChange};
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, Problems, check_version, state_of};
use crate::auth::Actor;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::experiment::results::{self, Input, Results, Sums};
use crate::experiment::{self as model, Analysis, Arm, Decision, Invalid, Metrics, State};
use crate::state::{AppState, EnvChanged};
use crate::store::Conn;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment::{self, ChangeKind, Environment};
use crate::store::experiment::{self as store, Experiment, Fields};
use crate::store::flag::{self, FlagRow};
use crate::store::project::Project;

/// What a create or an edit gives.
#[derive(Debug, Clone)]
pub(crate) struct ExperimentInput {
    /// Short name.
    pub(crate) name: String,
    /// Hypothesis.
    pub(crate) hypothesis: String,
    /// Arms, control first.
    pub(crate) arms: Vec<Arm>,
    /// Metrics.
    pub(crate) metrics: Metrics,
    /// Analysis settings.
    pub(crate) analysis: Analysis,
}

impl ExperimentInput {
    fn fields(&self) -> Fields<'_> {
        Fields {
            name: &self.name,
            hypothesis: &self.hypothesis,
            arms: &self.arms,
            metrics: &self.metrics,
            analysis: &self.analysis,
        }
    }
}

fn unprocessable(invalid: Invalid) -> ApiError {
    ApiError::invalid(invalid.field, invalid.message)
}

/// Checks what does not depend on the flag.
fn check_input(input: &ExperimentInput) -> ApiResult<()> {
    let mut problems = Problems::default();
    if input.name.trim().is_empty() {
        problems.push("name", "must not be empty");
    }
    problems.text("name", &input.name, MAX_NAME_LEN);
    problems.text("hypothesis", &input.hypothesis, MAX_TEXT_LEN);
    problems.finish()?;
    model::check_metrics(&input.metrics).map_err(unprocessable)?;
    model::check_analysis(&input.analysis).map_err(unprocessable)
}

/// Checks the arms against the flag's variants.
fn check_arms(arms: &[Arm], flag: &FlagRow) -> ApiResult<()> {
    let variants: Vec<&str> = flag
        .definition
        .variants
        .iter()
        .map(|v| v.key.as_str())
        .collect();
    model::check_arms(arms, &variants).map_err(unprocessable)
}

/// Creates a draft experiment on `flag_key` in environment `env_key`.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    (env_key, flag_key): (&str, &str),
    input: &ExperimentInput,
) -> ApiResult<Experiment> {
    check_input(input)?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let env = environment::by_key(&mut tx, project.id, env_key)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "environment",
                format!("no environment `{env_key}` in this project"),
            )
        })?;
    let flag = flag::by_key(&mut tx, project.id, flag_key)
        .await?
        .filter(|f| f.archived_at.is_none())
        .ok_or_else(|| {
            ApiError::invalid("flag", format!("no live flag `{flag_key}` in this project"))
        })?;
    check_arms(&input.arms, &flag)?;
    let id = store::insert(
        &mut tx,
        project.id,
        (env.id, flag.id, &flag.key),
        &input.fields(),
        &actor.name,
        now,
    )
    .await?;
    let created = reread(&mut tx, project, id).await?;
    audit_experiment(
        &mut tx,
        actor,
        project,
        "experiment.create",
        &created,
        (None, Some(&created)),
        "",
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Replaces an experiment's name, hypothesis, arms, metrics and analysis, if its version
/// still is `expected`. A draft takes anything valid. A running experiment's arms (the
/// split) and metrics change only with `restart`: its units are forgotten, it starts
/// again from now and the flag serves the new split; without it the change is refused,
/// because units already exposed under the old split would bias the new results. A
/// stopped experiment is not edited.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn update(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
    expected: i64,
    input: &ExperimentInput,
    restart: bool,
    comment: &str,
) -> ApiResult<Experiment> {
    check_input(input)?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = found(&mut tx, project, id).await?;
    check_version(Some(expected), before.version, || before.clone())?;
    let flag = flag_of(&mut tx, project, &before).await?;
    check_arms(&input.arms, &flag)?;
    let reshaped = input.arms != before.arms || input.metrics != before.metrics;
    match before.state {
        State::Draft => {}
        State::Stopped => {
            return Err(conflict(
                &before,
                "a stopped experiment is kept as it ran; create a new one",
            ));
        }
        State::Running if reshaped && !restart => {
            let field = if input.arms != before.arms {
                "arms"
            } else {
                "metrics"
            };
            return Err(ApiError::invalid(
                field,
                "changing the split or the metrics of a running experiment biases its results: \
                 units already exposed were assigned under the old split and measured by the \
                 old metrics. Send `restart: true` to start it again from now with the new \
                 settings (the units collected so far are discarded), or stop it",
            ));
        }
        State::Running => {}
    }
    if !store::update(&mut tx, id, expected, &input.fields(), now).await? {
        let current = reread(&mut tx, project, id).await?;
        return Err(super::stale(expected, current.version, &current));
    }
    let mut publication = None;
    let mut action = "experiment.update";
    if before.state == State::Running && restart {
        store::clear_units(&mut tx, id).await?;
        store::set_running(&mut tx, id, now).await?;
        let env = environment_of(&mut tx, project, &before).await?;
        publication = Some(
            serve_split(
                &mut tx,
                state,
                actor,
                project,
                &env,
                &flag,
                &input.arms,
                comment,
            )
            .await?,
        );
        action = "experiment.restart";
    }
    let after = reread(&mut tx, project, id).await?;
    audit_experiment(
        &mut tx,
        actor,
        project,
        action,
        &after,
        (Some(&before), Some(&after)),
        comment,
        now,
    )
    .await?;
    tx.commit().await?;
    if let Some(p) = publication {
        p.publish(state);
    }
    Ok(after)
}

/// Starts a draft: the flag must be on in the environment and have no other running
/// experiment there. The flag's default serve becomes the split (a config write, with
/// its history and audit entry), and its state carries `exposures: true` from this
/// version on, so SDKs send exposures.
pub(crate) async fn start(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
    comment: &str,
) -> ApiResult<Experiment> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = found(&mut tx, project, id).await?;
    if before.state != State::Draft {
        return Err(conflict(
            &before,
            "only a draft can start; to change a running one, restart it",
        ));
    }
    let flag = flag_of(&mut tx, project, &before).await?;
    check_arms(&before.arms, &flag)?;
    let env = environment_of(&mut tx, project, &before).await?;
    let config = config_in(&mut tx, &flag, &env).await?;
    if !config.enabled {
        return Err(ApiError::invalid(
            "flag",
            format!(
                "flag `{}` is off in `{}`: everyone gets its off variant, so there is nothing \
                 to compare; turn it on before starting",
                flag.key, env.key
            ),
        ));
    }
    if let Some(other) = store::running_on(&mut tx, env.id, flag.id).await? {
        return Err(ApiError::invalid(
            "flag",
            format!(
                "experiment {other} is already running on flag `{}` in `{}`; stop it first \
                 (two experiments on one split would share and bias its units)",
                flag.key, env.key
            ),
        ));
    }
    store::set_running(&mut tx, id, now).await?;
    let publication = serve_split(
        &mut tx,
        state,
        actor,
        project,
        &env,
        &flag,
        &before.arms,
        comment,
    )
    .await?;
    let after = reread(&mut tx, project, id).await?;
    audit_experiment(
        &mut tx,
        actor,
        project,
        "experiment.start",
        &after,
        (Some(&before), Some(&after)),
        comment,
        now,
    )
    .await?;
    tx.commit().await?;
    publication.publish(state);
    Ok(after)
}

/// Stops a running experiment with `decision` (a variant to ship, one of its arms, or
/// none). The flag keeps serving what it serves; its exposures mark goes.
pub(crate) async fn stop(
    state: &AppState,
    actor: &Actor,
    project: &Project,
    id: i64,
    decision: &Decision,
) -> ApiResult<Experiment> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let before = found(&mut tx, project, id).await?;
    if before.state != State::Running {
        return Err(conflict(&before, "only a running experiment can stop"));
    }
    if let Some(ship) = &decision.ship
        && !before.arms.iter().any(|a| &a.variant == ship)
    {
        return Err(ApiError::invalid(
            "decision.ship",
            format!("`{ship}` is not an arm of this experiment"),
        ));
    }
    let mut problems = Problems::default();
    problems.text("decision.comment", &decision.comment, MAX_TEXT_LEN);
    problems.finish()?;
    store::set_stopped(&mut tx, id, decision, now).await?;
    let bumped = remark(&mut tx, project, &before).await?;
    let after = reread(&mut tx, project, id).await?;
    audit_experiment(
        &mut tx,
        actor,
        project,
        "experiment.stop",
        &after,
        (Some(&before), Some(&after)),
        &decision.comment,
        now,
    )
    .await?;
    tx.commit().await?;
    super::publish(state, &bumped);
    Ok(after)
}

/// The results of experiment `id` as of now.
pub(crate) async fn results(state: &AppState, project: &Project, id: i64) -> ApiResult<Results> {
    let mut tx = state.db.begin_consistent_read().await?;
    let as_of = now_ms();
    let experiment = found(&mut tx, project, id).await?;
    let (units, excluded) = store::unit_counts(&mut tx, id).await?;
    let per_metric = store::metric_sums(&mut tx, id).await?;
    tx.commit().await?;
    let units: Vec<u64> = experiment
        .arms
        .iter()
        .map(|a| units.get(&a.variant).copied().unwrap_or(0))
        .collect();
    let sums = experiment
        .metrics
        .all()
        .map(|(role, metric)| {
            let per_arm: Vec<Sums> = experiment
                .arms
                .iter()
                .zip(&units)
                .map(|(arm, &n)| {
                    let key = (metric.key.clone(), arm.variant.clone());
                    Sums {
                        n,
                        ..per_metric.get(&key).copied().unwrap_or_default()
                    }
                })
                .collect();
            (role, metric, per_arm)
        })
        .collect();
    Ok(results::compute(Input {
        arms: &experiment.arms,
        units: &units,
        excluded,
        metrics: sums,
        analysis: experiment.analysis,
        as_of,
    }))
}

/// The flag's default serve becomes the arms' rollout (keeping the attribute an existing
/// rollout buckets by), through the one config write; if it already is, the flag is only
/// re-announced so that SDKs learn of the exposures mark.
#[allow(clippy::too_many_arguments)]
async fn serve_split(
    tx: &mut Conn,
    state: &AppState,
    actor: &Actor,
    project: &Project,
    env: &Environment,
    flag: &FlagRow,
    arms: &[Arm],
    comment: &str,
) -> ApiResult<Publication> {
    let config = config_in(&mut *tx, flag, env).await?;
    let bucket_by = match &config.default_serve {
        Serve::Rollout(r) => r.bucket_by.clone(),
        Serve::Variant(_) => String::new(),
    };
    let split = Serve::Rollout(Rollout {
        bucket_by,
        weights: arms
            .iter()
            .map(|a| WeightedVariant {
                variant: a.variant.clone(),
                weight: a.rollout_weight(),
            })
            .collect(),
    });
    if config.default_serve == split {
        let bumped = environment::bump_data_versions(&mut *tx, project.id, Some(env.id)).await?;
        environment::record_changes(&mut *tx, &bumped, ChangeKind::Flag, &flag.key).await?;
        return Ok(Publication::Bumped(bumped));
    }
    let config = FlagConfig {
        default_serve: split,
        ..config
    };
    let applied = configs::apply(
        tx,
        &state.push,
        actor,
        project,
        &flag.key,
        env,
        None,
        ConfigChange::Experiment(config),
        comment,
    )
    .await?;
    Ok(Publication::Config(Box::new(applied)))
}

/// What to announce after the commit.
enum Publication {
    Bumped(Vec<EnvChanged>),
    Config(Box<configs::Applied>),
}

impl Publication {
    fn publish(self, state: &AppState) {
        match self {
            Publication::Bumped(bumped) => super::publish(state, &bumped),
            Publication::Config(applied) => {
                applied.publish(state);
            }
        }
    }
}

/// A new version of the experiment's environment in which its flag changed (its
/// exposures mark), without a new flag version: nothing SDKs evaluate changed.
async fn remark(tx: &mut Conn, project: &Project, x: &Experiment) -> ApiResult<Vec<EnvChanged>> {
    let bumped =
        environment::bump_data_versions(&mut *tx, project.id, Some(x.environment_id)).await?;
    environment::record_changes(&mut *tx, &bumped, ChangeKind::Flag, &x.flag).await?;
    Ok(bumped)
}

async fn config_in(tx: &mut Conn, flag: &FlagRow, env: &Environment) -> ApiResult<FlagConfig> {
    flag::configs(&mut *tx, flag.id)
        .await?
        .into_iter()
        .find(|(id, ..)| *id == env.id)
        .map(|(.., c)| c)
        .ok_or_else(|| anyhow::anyhow!("flag {} has no config in env {}", flag.key, env.id).into())
}

async fn found(tx: &mut Conn, project: &Project, id: i64) -> ApiResult<Experiment> {
    store::by_id(&mut *tx, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("experiment", id.to_string()))
}

async fn reread(tx: &mut Conn, project: &Project, id: i64) -> ApiResult<Experiment> {
    found(tx, project, id).await
}

async fn flag_of(tx: &mut Conn, project: &Project, x: &Experiment) -> ApiResult<FlagRow> {
    flag::by_key(&mut *tx, project.id, &x.flag)
        .await?
        .filter(|f| f.archived_at.is_none())
        .ok_or_else(|| ApiError::invalid("flag", format!("flag `{}` is archived", x.flag)))
}

async fn environment_of(
    tx: &mut Conn,
    project: &Project,
    x: &Experiment,
) -> ApiResult<Environment> {
    environment::by_key(&mut *tx, project.id, &x.environment)
        .await?
        .ok_or_else(|| ApiError::not_found("environment", &x.environment))
}

fn conflict(current: &Experiment, message: &str) -> ApiError {
    ApiError::Conflict {
        message: message.to_owned(),
        current: crate::error::current_of(current),
    }
}

#[allow(clippy::too_many_arguments)]
async fn audit_experiment(
    tx: &mut Conn,
    actor: &Actor,
    project: &Project,
    action: &str,
    subject: &Experiment,
    (before, after): (Option<&Experiment>, Option<&Experiment>),
    comment: &str,
    now: i64,
) -> ApiResult<()> {
    let key = subject.id.to_string();
    let event = NewAuditEvent {
        actor: &actor.name,
        action,
        project_id: Some(project.id),
        environment_id: Some(subject.environment_id),
        resource_type: "experiment",
        resource_key: &key,
        before: before.map(state_of).transpose()?,
        after: after.map(state_of).transpose()?,
        comment,
    };
    Ok(audit::insert(tx, &event, now).await?)
}
