//! `GET /api/v1/projects/{project}/flags/{flag}/insights`: what SDKs reported about a flag
//! in one environment (evaluations per variant over time, last evaluated, connected
//! applications, dropped events), for the dashboard's insights page. Reads only; hourly
//! rows are current as of the last commit, daily rows as of the last rollup (≤ 30 s).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project_env;
use super::extract::{ApiPath, ApiQuery};
use crate::auth::{Actor, Role};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::flag;
use crate::store::insights::{self, ConnectedApp, Granularity};
use crate::store::outcomes::{self, OutcomePoint};
use flagpole_core::wire::{OutcomeKind, latency};

/// Most buckets one request may span.
const MAX_BUCKETS: i64 = 2_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(flag_insights))
        .routes(routes!(flag_outcomes))
}

/// Query of the insights request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InsightsQuery {
    /// Environment key.
    environment: String,
    /// `hour` (default) or `day`.
    granularity: Option<Granularity>,
    /// Start (epoch ms, inclusive); default: 24 hours (hour) or 30 days (day) before `to`.
    from: Option<i64>,
    /// End (epoch ms, exclusive); default: now.
    to: Option<i64>,
}

/// Evaluations of one variant over time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct VariantSeries {
    /// Variant key (`""` for evaluations that errored).
    variant: String,
    /// Evaluations in the range.
    total: i64,
    /// One point per bucket with evaluations, oldest first.
    points: Vec<Point>,
}

/// Evaluations in one bucket.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Point {
    /// Bucket start (epoch ms).
    at: i64,
    /// Evaluations.
    count: i64,
}

/// Evaluations with one reason in the range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReasonTotal {
    /// Reason code.
    reason: String,
    /// Evaluations.
    count: i64,
}

/// A flag's insights in one environment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FlagInsights {
    /// Flag key.
    flag: String,
    /// Environment key.
    environment: String,
    /// Bucket size.
    granularity: Granularity,
    /// Range start (epoch ms).
    from: i64,
    /// Range end (epoch ms).
    to: i64,
    /// Per variant.
    variants: Vec<VariantSeries>,
    /// Per reason.
    reasons: Vec<ReasonTotal>,
    /// When an SDK last reported evaluating it (epoch ms), if ever.
    last_evaluated: Option<i64>,
    /// Applications reporting to the environment, latest first.
    apps: Vec<ConnectedApp>,
    /// Exposures and events the environment's SDKs dropped (buffer full), in total.
    dropped: i64,
}

/// What SDKs reported about a flag in one environment (reader).
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/insights",
    tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        InsightsQuery),
    responses((status = 200, body = FlagInsights),
        (status = 400, description = "A query parameter does not parse", body = ErrorBody),
        (status = 404, description = "No such project, flag or environment", body = ErrorBody),
        (status = 422, description = "`from`/`to` out of order or spanning too many buckets", body = ErrorBody)))]
async fn flag_insights(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag_key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<InsightsQuery>,
) -> ApiResult<Json<FlagInsights>> {
    let (project, env) = project_env(
        &state,
        &actor,
        &project_key,
        &query.environment,
        Role::Reader,
    )
    .await?;
    let (granularity, from, to) = range(&query)?;
    let mut conn = state.db.pool.acquire().await?;
    flag::by_key(&mut conn, project.id, &flag_key)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", &flag_key))?;
    // Bucket starts: a range that starts mid-bucket includes that bucket.
    let first = from - from.rem_euclid(granularity.millis());
    let points = insights::series(&mut conn, env.id, &flag_key, granularity, first, to).await?;
    let last_evaluated = insights::last_evaluated(&mut conn, env.id, &flag_key).await?;
    let apps = insights::apps(&mut conn, env.id).await?;
    let dropped = insights::dropped_total(&mut conn, env.id).await?;

    let mut variants: BTreeMap<String, VariantSeries> = BTreeMap::new();
    let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
    for p in points {
        *reasons.entry(p.reason).or_default() += p.count;
        let series = variants
            .entry(p.variant.clone())
            .or_insert_with(|| VariantSeries {
                variant: p.variant,
                total: 0,
                points: Vec::new(),
            });
        series.total += p.count;
        match series.points.last_mut() {
            Some(last) if last.at == p.at => last.count += p.count,
            _ => series.points.push(Point {
                at: p.at,
                count: p.count,
            }),
        }
    }
    Ok(Json(FlagInsights {
        flag: flag_key,
        environment: env.key,
        granularity,
        from,
        to,
        variants: variants.into_values().collect(),
        reasons: reasons
            .into_iter()
            .map(|(reason, count)| ReasonTotal { reason, count })
            .collect(),
        last_evaluated,
        apps,
        dropped,
    }))
}

/// One variant's and kind's outcomes, in one bucket or over the whole range.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct OutcomeStats {
    /// Bucket start (epoch ms); absent on a series' total.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
    /// Runs of the path.
    calls: i64,
    /// Runs that failed (for `shadow_new`, timeouts included).
    errors: i64,
    /// `shadow_new`: runs whose result differed from the current path's.
    mismatches: i64,
    /// `shadow_new`: runs stopped at the time limit.
    timeouts: i64,
    /// `shadow_new`: candidates not run because the concurrency bound was full.
    skipped: i64,
    /// `errors / calls`; absent without calls.
    error_rate: Option<f64>,
    /// `mismatches / calls`, for `shadow_new`; absent otherwise or without calls.
    mismatch_rate: Option<f64>,
    /// Mean duration (ms, exact: from the sum).
    mean_ms: Option<f64>,
    /// Median duration (ms, read from the histogram: within one bucket, ≤ 25%).
    p50_ms: Option<f64>,
    /// 99th percentile duration (ms, from the histogram).
    p99_ms: Option<f64>,
}

impl OutcomeStats {
    fn of(at: Option<i64>, kind: &str, p: &OutcomePoint) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let ratio = |a: i64| (p.calls > 0).then(|| a as f64 / p.calls as f64);
        let ms = |us: f64| us / 1000.0;
        OutcomeStats {
            at,
            calls: p.calls,
            errors: p.errors,
            mismatches: p.mismatches,
            timeouts: p.timeouts,
            skipped: p.skipped,
            error_rate: ratio(p.errors),
            mismatch_rate: if kind == OutcomeKind::ShadowNew.as_str() {
                ratio(p.mismatches)
            } else {
                None
            },
            mean_ms: ratio(p.duration_us).map(ms),
            p50_ms: latency::quantile(&p.latency, 0.5).map(ms),
            p99_ms: latency::quantile(&p.latency, 0.99).map(ms),
        }
    }
}

/// Outcomes of one variant and kind over time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OutcomeSeries {
    /// Variant evaluated (`""` when the evaluation failed).
    variant: String,
    /// `guard`, `shadow_current` or `shadow_new`.
    kind: String,
    /// Over the whole range.
    total: OutcomeStats,
    /// One per bucket with runs, oldest first.
    points: Vec<OutcomeStats>,
}

/// What `guard` and `shadow` reported about a flag in one environment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FlagOutcomes {
    /// Flag key.
    flag: String,
    /// Environment key.
    environment: String,
    /// Bucket size.
    granularity: Granularity,
    /// Range start (epoch ms).
    from: i64,
    /// Range end (epoch ms).
    to: i64,
    /// Per variant and kind.
    series: Vec<OutcomeSeries>,
}

/// Error rates, mismatch rates and latencies of a flag's guarded and shadowed code paths
/// per variant over time, as the SDKs' `guard` and `shadow` reported them (reader).
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}/outcomes",
    tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        InsightsQuery),
    responses((status = 200, body = FlagOutcomes),
        (status = 400, description = "A query parameter does not parse", body = ErrorBody),
        (status = 404, description = "No such project, flag or environment", body = ErrorBody),
        (status = 422, description = "`from`/`to` out of order or spanning too many buckets", body = ErrorBody)))]
async fn flag_outcomes(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag_key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<InsightsQuery>,
) -> ApiResult<Json<FlagOutcomes>> {
    let (project, env) = project_env(
        &state,
        &actor,
        &project_key,
        &query.environment,
        Role::Reader,
    )
    .await?;
    let (granularity, from, to) = range(&query)?;
    let mut conn = state.db.pool.acquire().await?;
    flag::by_key(&mut conn, project.id, &flag_key)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", &flag_key))?;
    let first = from - from.rem_euclid(granularity.millis());
    let points = outcomes::series(&mut conn, env.id, &flag_key, granularity, first, to).await?;
    let mut by_series: BTreeMap<(String, String), (OutcomePoint, Vec<OutcomeStats>)> =
        BTreeMap::new();
    for p in points {
        let (total, list) = by_series
            .entry((p.variant.clone(), p.kind.clone()))
            .or_default();
        list.push(OutcomeStats::of(Some(p.at), &p.kind, &p));
        total.calls += p.calls;
        total.errors += p.errors;
        total.mismatches += p.mismatches;
        total.timeouts += p.timeouts;
        total.skipped += p.skipped;
        total.duration_us += p.duration_us;
        total.latency.extend(p.latency);
    }
    let series = by_series
        .into_iter()
        .map(|((variant, kind), (mut total, points))| {
            let mut merged: BTreeMap<u32, u64> = BTreeMap::new();
            for (b, n) in total.latency.drain(..) {
                *merged.entry(b).or_default() += n;
            }
            total.latency = merged.into_iter().collect();
            OutcomeSeries {
                total: OutcomeStats::of(None, &kind, &total),
                variant,
                kind,
                points,
            }
        })
        .collect();
    Ok(Json(FlagOutcomes {
        flag: flag_key,
        environment: env.key,
        granularity,
        from,
        to,
        series,
    }))
}

/// The query's granularity and range, defaulted and checked.
fn range(query: &InsightsQuery) -> ApiResult<(Granularity, i64, i64)> {
    let granularity = query.granularity.unwrap_or(Granularity::Hour);
    let to = query.to.unwrap_or_else(now_ms);
    let default_span = match granularity {
        Granularity::Hour => 24,
        Granularity::Day => 30,
    } * granularity.millis();
    let from = query.from.unwrap_or(to - default_span);
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    if (to - from) / granularity.millis() > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "from",
            format!("the range spans more than {MAX_BUCKETS} buckets; narrow it or use `day`"),
        ));
    }
    Ok((granularity, from, to))
}
