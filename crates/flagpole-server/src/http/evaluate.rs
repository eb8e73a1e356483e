//! `POST /api/v1/projects/{project}/environments/{env}/evaluate`: the dashboard's
//! evaluation debugger. Evaluates through `flagpole-core` against the same cached compiled
//! snapshot OFREP uses, so what it shows is what SDKs and OFREP answer, and explains why:
//! the reason, the matching rule and whether a rollout bucket decided.

use axum::Json;
use axum::extract::State;
use flagpole_core::{Attributes, Context, Reason};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project_env;
use super::extract::{ApiJson, ApiPath};
use crate::auth::{Actor, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::flag as flag_store;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(evaluate))
}

/// Body of the debugger call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DebugEvaluate {
    /// The context's targeting key (may be empty).
    #[serde(default)]
    key: String,
    /// Attributes by name (strings, numbers, booleans, lists, objects).
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: Attributes,
    /// Evaluate only this flag; all flags of the environment when absent.
    flag: Option<String>,
}

/// One flag's result with its explanation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DebugResult {
    /// Flag key.
    flag: String,
    /// The served value; absent on error.
    #[schema(value_type = Option<Object>)]
    value: Option<Value>,
    /// The served variant; absent on error.
    variant: Option<String>,
    /// `OFF`, `TARGET_MATCH`, `RULE_MATCH`, `PREREQUISITE_FAILED`, `FALLTHROUGH` or `ERROR`.
    reason: String,
    /// Position (from 0) of the matching rule, for `RULE_MATCH`.
    rule_index: Option<usize>,
    /// Id of the matching rule, for `RULE_MATCH`.
    rule_id: Option<String>,
    /// The matching rule's description, when it has one: what people wrote the rule for,
    /// which says more than its generated id.
    rule_description: Option<String>,
    /// True if a percentage rollout picked the variant.
    in_rollout: bool,
    /// The prerequisite that failed, for `PREREQUISITE_FAILED`.
    prerequisite: Option<String>,
    /// Error code (`FLAG_NOT_FOUND`, `MISSING_BUCKET_KEY`, `INVALID_FLAG`...), for `ERROR`.
    error: Option<String>,
}

/// The debugger's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DebugEvaluation {
    /// Environment key.
    environment: String,
    /// The environment data version evaluated against.
    version: i64,
    /// One result per flag, by key.
    results: Vec<DebugResult>,
}

/// Evaluates one flag (`flag`) or every flag of the environment for a context, explaining
/// each result (reader).
#[utoipa::path(post, path = "/api/v1/projects/{project}/environments/{env}/evaluate",
    tag = "environments",
    params(("project" = String, Path, description = "Project key"),
        ("env" = String, Path, description = "Environment key")),
    request_body = DebugEvaluate,
    responses((status = 200, body = DebugEvaluation), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn evaluate(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, env_key)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<DebugEvaluate>,
) -> ApiResult<Json<DebugEvaluation>> {
    let (project, env) = project_env(&state, &actor, &project_key, &env_key, Role::Reader).await?;
    let compiled = state.snapshots.get(env.id).await.map_err(|error| {
        tracing::error!(%error, environment_id = env.id, "no snapshot for the debugger");
        ApiError::Unavailable("the environment cannot be loaded right now; retry".into())
    })?;
    let context = Context {
        key: body.key,
        attributes: body.attributes,
    };
    let keys: Vec<String> = match body.flag {
        Some(flag) => vec![flag],
        None => {
            let mut keys: Vec<String> = compiled.snapshot.flag_keys().map(str::to_owned).collect();
            keys.sort();
            keys
        }
    };
    let mut results: Vec<DebugResult> = keys
        .into_iter()
        .map(|flag| {
            // Uncounted: debugging a flag is not using it (insights, lifecycle).
            let evaluation = compiled.snapshot.evaluate_uncounted(&flag, &context);
            let reason = evaluation.reason;
            let mut result = DebugResult {
                value: evaluation.value.cloned(),
                variant: evaluation.variant.map(str::to_owned),
                reason: reason.code().to_owned(),
                rule_index: None,
                rule_id: None,
                rule_description: None,
                in_rollout: reason.in_rollout(),
                prerequisite: None,
                error: None,
                flag,
            };
            match reason {
                Reason::RuleMatch {
                    rule_index,
                    rule_id,
                    ..
                } => {
                    result.rule_index = Some(rule_index);
                    result.rule_id = Some(rule_id.to_owned());
                }
                Reason::PrerequisiteFailed { prerequisite } => {
                    result.prerequisite = Some(prerequisite.to_owned());
                }
                Reason::Error { error } => result.error = Some(error.code().to_owned()),
                Reason::Off | Reason::TargetMatch | Reason::Fallthrough { .. } => {}
            }
            result
        })
        .collect();
    describe_rules(&state, project.id, env.id, &mut results).await?;
    Ok(Json(DebugEvaluation {
        environment: env.key,
        version: compiled.data_version,
        results,
    }))
}

/// Fills in the descriptions of the matched rules from the stored configs. The compiled
/// snapshot keeps only what evaluation needs, so they are read here, for matched rules
/// only: one flag read per rule match, and the debugger is a person's click.
async fn describe_rules(
    state: &AppState,
    project_id: i64,
    env_id: i64,
    results: &mut [DebugResult],
) -> ApiResult<()> {
    let mut conn = None;
    for result in results.iter_mut() {
        let Some(rule_id) = &result.rule_id else {
            continue;
        };
        let conn = match &mut conn {
            Some(conn) => conn,
            None => conn.insert(state.db.pool.acquire().await?),
        };
        let Some(row) = flag_store::by_key(conn, project_id, &result.flag).await? else {
            continue;
        };
        result.rule_description = flag_store::configs(conn, row.id)
            .await?
            .into_iter()
            .find(|(id, ..)| *id == env_id)
            .and_then(|(.., config)| config.rules.into_iter().find(|r| &r.id == rule_id))
            .map(|rule| rule.description)
            .filter(|d| !d.trim().is_empty());
    }
    Ok(())
}
