//! `/api/v1/projects/{project}/flags`: flag definitions, search and lifecycle. Flags are
//! archived, never deleted: SDKs and history may still refer to them.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use flagpole_core::lifecycle::FlagType;
use flagpole_core::model::{FlagConfig, FlagKind, Variant};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::{ApiJson, ApiPath, ApiQuery, MaybeJson, expected_version, required_version};
use crate::auth::{Actor, Role};
use crate::db::now_ms;
use crate::domain::comment;
use crate::domain::flag_write::FlagView;
use crate::domain::flags::{self as domain, FlagPatch, NewFlag};
use crate::domain::lifecycle::{self, Judge, Lifecycle};
use crate::domain::variant_rename::{self, VariantRename};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::environment;
use crate::store::flag::{self as store, FlagRow, ListFilter};
use crate::store::project::Project;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flags, create_flag))
        .routes(routes!(get_flag, update_flag))
        .routes(routes!(archive_flag))
        .routes(routes!(unarchive_flag))
        .routes(routes!(rename_variant))
}

/// Query of the flag list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FlagListQuery {
    /// Case-insensitive text in key, name or description.
    q: Option<String>,
    /// Only flags with this tag.
    tag: Option<String>,
    /// List archived flags instead of live ones (default false).
    archived: Option<bool>,
    /// Only potentially stale flags (`true`) or only the others (`false`); see `lifecycle`.
    stale: Option<bool>,
    /// Page size (default 50, at most 200).
    limit: Option<i64>,
    /// Flags skipped (default 0).
    offset: Option<i64>,
}

/// A flag's switch in one environment, for the dashboard's side-by-side view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EnvironmentEnabled {
    /// Environment key.
    environment: String,
    /// Whether the flag is on there.
    enabled: bool,
}

/// One flag in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FlagListItem {
    key: String,
    name: String,
    description: String,
    tags: Vec<String>,
    #[schema(value_type = String)]
    kind: FlagKind,
    archived: bool,
    version: i64,
    updated_at: i64,
    /// `release`, `experiment`, `operational`, `kill_switch` or `permission`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    flag_type: FlagType,
    /// Marked to stay: never potentially stale.
    permanent: bool,
    /// Whether the flag is potentially stale, and why.
    lifecycle: Lifecycle,
    /// Every environment's switch, in environment display order.
    environments: Vec<EnvironmentEnabled>,
}

/// A flag with its lifecycle state: what the flag endpoints answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FlagDetail {
    /// The flag.
    #[serde(flatten)]
    flag: FlagView,
    /// Whether the flag is potentially stale, and why (decided when answering: it moves
    /// with the clock and with what SDKs report).
    lifecycle: Lifecycle,
}

/// A page of flags.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FlagList {
    /// The page, by key.
    items: Vec<FlagListItem>,
    /// How many flags match in all.
    total: i64,
    /// Page size used.
    limit: i64,
    /// Offset used.
    offset: i64,
}

/// Body of `POST .../flags`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateFlag {
    /// Unique key in the project.
    key: String,
    /// Display name; defaults to the key.
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    /// `boolean` (default), `string`, `number` or `json`.
    #[serde(default = "boolean")]
    #[schema(value_type = String)]
    kind: FlagKind,
    /// What the flag is for, which sets its expected lifetime: `release` (default),
    /// `experiment`, `operational`, `kill_switch` or `permission`.
    #[serde(default, rename = "type")]
    #[schema(value_type = String)]
    flag_type: FlagType,
    /// Never potentially stale (default false).
    #[serde(default)]
    permanent: bool,
    /// Values; a boolean flag without variants gets `on` (true) and `off` (false).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    variants: Option<Vec<Variant>>,
    /// Bucketing salt (default: the key).
    #[serde(default)]
    salt: String,
    /// Configs (`FlagConfig`) by environment key; others start disabled, serving the first
    /// variant when on and the last when off.
    #[serde(default)]
    #[schema(value_type = Object)]
    environments: BTreeMap<String, FlagConfig>,
    /// Recorded in the audit log and history.
    #[serde(default)]
    comment: Option<String>,
}

fn boolean() -> FlagKind {
    FlagKind::Boolean
}

/// Body of `PATCH .../flags/{flag}`: absent fields are kept. Kind and key never change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateFlag {
    name: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Object>>)]
    variants: Option<Vec<Variant>>,
    salt: Option<String>,
    /// `release`, `experiment`, `operational`, `kill_switch` or `permission`.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    flag_type: Option<FlagType>,
    /// Never potentially stale.
    permanent: Option<bool>,
    /// The version being edited (or send `If-Match`).
    version: Option<i64>,
    comment: Option<String>,
}

/// Body of archive and unarchive (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveBody {
    /// Expected version (optional).
    version: Option<i64>,
    comment: Option<String>,
}

/// Flags of a project: search, tag and lifecycle filters, pagination. Each item says
/// whether the flag is potentially stale and why.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags", tag = "flags",
    params(("project" = String, Path, description = "Project key"), FlagListQuery),
    responses((status = 200, body = FlagList), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_flags(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<FlagListQuery>,
) -> ApiResult<Json<FlagList>> {
    let project = project(&state, &actor, &key, Role::Reader).await?;
    let limit = query.limit.unwrap_or(50);
    let offset = query.offset.unwrap_or(0);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 200"));
    }
    if offset < 0 {
        return Err(ApiError::invalid("offset", "must not be negative"));
    }
    let filter = ListFilter {
        q: query.q.filter(|q| !q.is_empty()),
        tag: query.tag.filter(|t| !t.is_empty()),
        archived: query.archived.unwrap_or(false),
        limit,
        offset,
    };
    let now = now_ms();
    let mut conn = state.db.pool.acquire().await?;
    let envs = environment::list(&mut conn, project.id).await?;
    let env_keys: HashMap<i64, &str> = envs.iter().map(|e| (e.id, e.key.as_str())).collect();
    // Staleness is decided in Rust, not SQL, so filtering by it reads every flag that
    // matches the other filters, then pages; without that filter only the page is read.
    // Either way: one query for the flags, one for their configs, two for the lifecycle.
    let (rows, configs, judge, total) = match query.stale {
        None => {
            let (rows, total) = store::list(&mut conn, project.id, &filter).await?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
            let configs = store::configs_of(&mut conn, &ids).await?;
            let judge = Judge::load(&mut conn, project.id, Some(&keys), now).await?;
            (rows, configs, judge, total)
        }
        Some(_) => {
            let rows = store::list_all(&mut conn, project.id, &filter).await?;
            let configs = store::configs_in_project(&mut conn, project.id, filter.archived).await?;
            let judge = Judge::load(&mut conn, project.id, None, now).await?;
            (rows, configs, judge, 0)
        }
    };
    let mut by_flag: HashMap<i64, Vec<(&str, &FlagConfig)>> = HashMap::new();
    for (flag, env, config) in &configs {
        if let Some(env) = env_keys.get(env) {
            by_flag.entry(*flag).or_default().push((*env, config));
        }
    }
    let judged = rows.into_iter().map(|row| {
        let configs = by_flag.remove(&row.id).unwrap_or_default();
        let lifecycle = judge.judge((&row).into(), configs.iter().copied());
        (row, configs, lifecycle)
    });
    let (items, total) = match query.stale {
        None => (judged.map(list_item).collect(), total),
        Some(want) => {
            let matching: Vec<_> = judged.filter(|(_, _, l)| l.stale == want).collect();
            let total = matching.len() as i64;
            let page = matching
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(0))
                .map(list_item)
                .collect();
            (page, total)
        }
    };
    Ok(Json(FlagList {
        items,
        total,
        limit,
        offset,
    }))
}

/// One row of the list: the flag, its configs by environment key (in display order) and
/// its lifecycle.
fn list_item(
    (row, configs, lifecycle): (FlagRow, Vec<(&str, &FlagConfig)>, Lifecycle),
) -> FlagListItem {
    FlagListItem {
        environments: configs
            .iter()
            .map(|(env, config)| EnvironmentEnabled {
                environment: (*env).to_owned(),
                enabled: config.enabled,
            })
            .collect(),
        key: row.key,
        name: row.definition.name,
        description: row.definition.description,
        tags: row.definition.tags,
        kind: row.definition.kind,
        archived: row.archived_at.is_some(),
        version: row.version,
        updated_at: row.updated_at,
        flag_type: row.flag_type,
        permanent: row.permanent,
        lifecycle,
    }
}

/// A flag view with its lifecycle, as every flag endpoint here answers.
async fn detail(
    state: &AppState,
    project: &Project,
    flag: FlagView,
) -> ApiResult<Json<FlagDetail>> {
    let mut conn = state.db.pool.acquire().await?;
    let lifecycle = lifecycle::of_view(&mut conn, project.id, &flag).await?;
    Ok(Json(FlagDetail { flag, lifecycle }))
}

/// Creates a flag with a config in every environment (writer).
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags", tag = "flags",
    params(("project" = String, Path, description = "Project key")),
    request_body = CreateFlag,
    responses((status = 201, body = FlagDetail), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "Invalid; `field` is the path in the body", body = ErrorBody)))]
async fn create_flag(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CreateFlag>,
) -> ApiResult<(StatusCode, Json<FlagDetail>)> {
    let project = project(&state, &actor, &key, Role::Writer).await?;
    let input = NewFlag {
        key: body.key,
        name: body.name,
        description: body.description,
        tags: body.tags,
        kind: body.kind,
        variants: body.variants,
        salt: body.salt,
        lifecycle: store::Lifecycle {
            flag_type: body.flag_type,
            permanent: body.permanent,
        },
        environments: body.environments,
        comment: comment(body.comment.as_deref())?,
    };
    let view = domain::create(&state, &actor, &project, input).await?;
    Ok((StatusCode::CREATED, detail(&state, &project, view).await?))
}

/// A flag: definition, every environment's config, version, archived state, type and
/// lifecycle.
#[utoipa::path(get, path = "/api/v1/projects/{project}/flags/{flag}", tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key")),
    responses((status = 200, body = FlagDetail), (status = 404, body = ErrorBody)))]
async fn get_flag(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag)): ApiPath<(String, String)>,
) -> ApiResult<Json<FlagDetail>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    let mut conn = state.db.pool.acquire().await?;
    let row = store::by_key(&mut conn, project.id, &flag)
        .await?
        .ok_or_else(|| ApiError::not_found("flag", &flag))?;
    let view = FlagView::load(&mut conn, &row).await?;
    let lifecycle = lifecycle::of_view(&mut conn, project.id, &view).await?;
    Ok(Json(FlagDetail {
        flag: view,
        lifecycle,
    }))
}

/// Changes a flag's definition, type or permanent mark (writer); a definition is
/// validated against every environment.
#[utoipa::path(patch, path = "/api/v1/projects/{project}/flags/{flag}", tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateFlag,
    responses((status = 200, body = FlagDetail), (status = 404, body = ErrorBody),
        (status = 409, description = "Stale version or archived; `current` holds the flag", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_flag(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateFlag>,
) -> ApiResult<Json<FlagDetail>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let expected = required_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let patch = FlagPatch {
        name: body.name,
        description: body.description,
        tags: body.tags,
        variants: body.variants,
        salt: body.salt,
        flag_type: body.flag_type,
        permanent: body.permanent,
    };
    let view = domain::update(&state, &actor, &project, &flag, expected, patch, &comment).await?;
    detail(&state, &project, view).await
}

async fn archive(
    state: AppState,
    actor: Actor,
    project_key: String,
    flag: String,
    headers: HeaderMap,
    body: Option<ArchiveBody>,
    archived: bool,
) -> ApiResult<Json<FlagDetail>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let body = body.unwrap_or_default();
    let expected = expected_version(&headers, body.version)?;
    let comment = comment(body.comment.as_deref())?;
    let view = domain::set_archived(
        &state, &actor, &project, &flag, expected, archived, &comment,
    )
    .await?;
    detail(&state, &project, view).await
}

/// Archives a flag (writer): it stops being served. Refused (409) while a live flag uses it
/// as a prerequisite.
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags/{flag}/archive", tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key")),
    request_body(content = Option<ArchiveBody>),
    responses((status = 200, body = FlagDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn archive_flag(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag)): ApiPath<(String, String)>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<ArchiveBody>,
) -> ApiResult<Json<FlagDetail>> {
    archive(state, actor, project_key, flag, headers, body, true).await
}

/// Unarchives a flag (writer); it is validated in every environment again.
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags/{flag}/unarchive", tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key")),
    request_body(content = Option<ArchiveBody>),
    responses((status = 200, body = FlagDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn unarchive_flag(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag)): ApiPath<(String, String)>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<ArchiveBody>,
) -> ApiResult<Json<FlagDetail>> {
    archive(state, actor, project_key, flag, headers, body, false).await
}

/// Body of `POST .../flags/{flag}/variants/{variant}/rename`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameVariant {
    /// The new key; must not be another variant's.
    to: String,
    /// The version being edited (or send `If-Match`).
    version: Option<i64>,
    comment: Option<String>,
}

/// Renames a variant's key (writer) and every reference to it, in one write: off variant,
/// targets, rule serves, rollout weights and default serve in every environment, and the
/// prerequisites of other flags that require it. One version of the flag, one history and
/// one audit entry; flags whose prerequisites changed get a version of their own.
#[utoipa::path(post, path = "/api/v1/projects/{project}/flags/{flag}/variants/{variant}/rename",
    tag = "flags",
    params(("project" = String, Path, description = "Project key"),
        ("flag" = String, Path, description = "Flag key"),
        ("variant" = String, Path, description = "The variant's current key"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = RenameVariant,
    responses((status = 200, body = FlagDetail), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Stale version or archived; `current` holds the flag", body = ErrorBody),
        (status = 422, description = "`to` is not a valid key or is taken", body = ErrorBody)))]
async fn rename_variant(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((project_key, flag, variant)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RenameVariant>,
) -> ApiResult<Json<FlagDetail>> {
    let project = project(&state, &actor, &project_key, Role::Writer).await?;
    let input = VariantRename {
        from: variant,
        to: body.to,
        expected: required_version(&headers, body.version)?,
        comment: comment(body.comment.as_deref())?,
    };
    let view = variant_rename::rename_variant(&state, &actor, &project, &flag, input).await?;
    detail(&state, &project, view).await
}
