//! A/B experiments: `/api/v1/projects/{project}/experiments` (issue 16). Create and edit
//! drafts, start, restart (an edit with `restart: true`), stop with a decision, and the
//! results, computed from the per-unit aggregates the ingest writer keeps.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, MaybeJson, required_version};
use crate::auth::{Actor, Role};
use crate::domain::experiments::{self as domain, ExperimentInput};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::experiment::results::Results;
use crate::experiment::{Analysis, Arm, Decision, Metrics};
use crate::state::AppState;
use crate::store::experiment::{self as store, Experiment};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(ExperimentsDoc::openapi())
        .routes(routes!(list_experiments, create_experiment))
        .routes(routes!(get_experiment, update_experiment))
        .routes(routes!(start_experiment))
        .routes(routes!(stop_experiment))
        .routes(routes!(experiment_results))
}

#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "experiments", description = "A/B experiments on a flag in one \
    environment: arms (variants, control first) and their split, metrics over tracked \
    events, and results (frequentist, sequential or Bayesian, with the sample ratio \
    mismatch check) from the exposures and events SDKs report.")))]
struct ExperimentsDoc;

/// Body of create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateExperiment {
    /// The environment's key.
    environment: String,
    /// The flag's key.
    flag: String,
    /// Short name.
    name: String,
    /// What is expected to happen, and why.
    #[serde(default)]
    hypothesis: String,
    /// Variants compared, control first, with the split in percent (summing to 100).
    arms: Vec<Arm>,
    /// One primary metric, any secondary and guardrail metrics.
    metrics: Metrics,
    /// How results are tested (default: frequentist, alpha 0.05).
    #[serde(default)]
    analysis: Analysis,
}

/// Body of update.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateExperiment {
    /// Short name.
    name: String,
    /// What is expected to happen, and why.
    #[serde(default)]
    hypothesis: String,
    /// Variants compared, control first, with the split.
    arms: Vec<Arm>,
    /// Metrics.
    metrics: Metrics,
    /// How results are tested.
    #[serde(default)]
    analysis: Analysis,
    /// The version being replaced (or send `If-Match`).
    version: Option<i64>,
    /// A running experiment only: start again from now with these arms and metrics,
    /// discarding the units collected so far. Without it, changing a running
    /// experiment's split or metrics is refused (it would bias the results).
    #[serde(default)]
    restart: bool,
    /// Recorded with the audit entry (and required by a critical environment when the
    /// project says so, for a restart that rewrites the flag's split).
    #[serde(default)]
    comment: String,
}

/// Optional body of start.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartExperiment {
    /// Recorded with the audit entry and the flag's config change.
    #[serde(default)]
    comment: String,
}

/// The project's experiments, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/experiments", tag = "experiments",
    params(("project" = String, Path, description = "Project key")),
    responses((status = 200, body = Vec<Experiment>), (status = 404, body = ErrorBody)))]
async fn list_experiments(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Vec<Experiment>>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    Ok(Json(store::list(&mut conn, project.id).await?))
}

/// Creates a draft experiment (writer). 422 naming the field for an unknown environment or
/// flag, arms that are not variants of the flag, a split that does not sum to 100%, or a
/// metric that names no event.
#[utoipa::path(post, path = "/api/v1/projects/{project}/experiments", tag = "experiments",
    params(("project" = String, Path, description = "Project key")),
    request_body = CreateExperiment,
    responses((status = 201, body = Experiment), (status = 404, body = ErrorBody),
        (status = 422, description = "Invalid; `field` is e.g. `arms[1].variant` or `metrics.primary.event`",
            body = ErrorBody)))]
async fn create_experiment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateExperiment>,
) -> ApiResult<(StatusCode, Json<Experiment>)> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    let input = ExperimentInput {
        name: body.name,
        hypothesis: body.hypothesis,
        arms: body.arms,
        metrics: body.metrics,
        analysis: body.analysis,
    };
    let created = domain::create(
        &state,
        &actor,
        &project,
        (&body.environment, &body.flag),
        &input,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One experiment.
#[utoipa::path(get, path = "/api/v1/projects/{project}/experiments/{experiment}", tag = "experiments",
    params(("project" = String, Path, description = "Project key"),
        ("experiment" = i64, Path, description = "Experiment id")),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody)))]
async fn get_experiment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<Experiment>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let experiment = store::by_id(&mut conn, project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("experiment", id.to_string()))?;
    Ok(Json(experiment))
}

/// Edits an experiment (writer); needs the version. A draft takes any valid change; a
/// running one changes its split or metrics only with `restart: true` (422 naming `arms`
/// or `metrics` otherwise); a stopped one is not edited (409).
#[utoipa::path(put, path = "/api/v1/projects/{project}/experiments/{experiment}", tag = "experiments",
    params(("project" = String, Path, description = "Project key"),
        ("experiment" = i64, Path, description = "Experiment id"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateExperiment,
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_experiment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateExperiment>,
) -> ApiResult<Json<Experiment>> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    let expected = required_version(&headers, body.version)?;
    let input = ExperimentInput {
        name: body.name,
        hypothesis: body.hypothesis,
        arms: body.arms,
        metrics: body.metrics,
        analysis: body.analysis,
    };
    let comment = crate::domain::comment(Some(&body.comment))?;
    let updated = domain::update(
        &state,
        &actor,
        &project,
        id,
        expected,
        &input,
        body.restart,
        &comment,
    )
    .await?;
    Ok(Json(updated))
}

/// Starts a draft (writer): the flag's default serve becomes the split and SDKs send
/// exposures for it. 422 naming `flag` when the flag is off in the environment or another
/// experiment runs on it there; 409 when the experiment is not a draft.
#[utoipa::path(post, path = "/api/v1/projects/{project}/experiments/{experiment}/start", tag = "experiments",
    params(("project" = String, Path, description = "Project key"),
        ("experiment" = i64, Path, description = "Experiment id")),
    request_body(content = Option<StartExperiment>),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_experiment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
    MaybeJson(body): MaybeJson<StartExperiment>,
) -> ApiResult<Json<Experiment>> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    let comment = crate::domain::comment(body.map(|b| b.comment).as_deref())?;
    Ok(Json(
        domain::start(&state, &actor, &project, id, &comment).await?,
    ))
}

/// Stops a running experiment with a decision (writer): the variant to ship (an arm) or
/// none. The flag keeps serving what it serves; SDKs stop sending exposures for it.
#[utoipa::path(post, path = "/api/v1/projects/{project}/experiments/{experiment}/stop", tag = "experiments",
    params(("project" = String, Path, description = "Project key"),
        ("experiment" = i64, Path, description = "Experiment id")),
    request_body = Decision,
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn stop_experiment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
    ApiJson(decision): ApiJson<Decision>,
) -> ApiResult<Json<Experiment>> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    Ok(Json(
        domain::stop(&state, &actor, &project, id, &decision).await?,
    ))
}

/// The experiment's results as of now: units per arm, the SRM check, and per metric and
/// arm n, mean, variance and the comparison with control (flagpole-stats, gbstats'
/// formulas). Includes every batch acknowledged before `as_of`.
#[utoipa::path(get, path = "/api/v1/projects/{project}/experiments/{experiment}/results", tag = "experiments",
    params(("project" = String, Path, description = "Project key"),
        ("experiment" = i64, Path, description = "Experiment id")),
    responses((status = 200, body = Results), (status = 404, body = ErrorBody)))]
async fn experiment_results(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((key, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<Results>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    Ok(Json(domain::results(&state, &project, id).await?))
}
