//! The `api_token` table: credentials for automation. Only the token's SHA-256 is stored.

use serde::Serialize;

use super::{Conn, StoreError, StoreResult};
use crate::role::{Role, Scope};

/// An API token as listed (never the token itself: only its hash is stored).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiToken {
    /// Id, used in URLs.
    pub(crate) id: i64,
    /// What it is for.
    pub(crate) name: String,
    /// The first characters of the token, to tell tokens apart.
    pub(crate) prefix: String,
    /// What it may do.
    pub(crate) role: Role,
    /// Key of the one project it is limited to; `null` for all projects.
    pub(crate) project: Option<String>,
    /// The one action it is limited to; `null` for the whole API as its role allows.
    pub(crate) scope: Option<Scope>,
    /// Who created it (`user:…`, `token:…`, `system:bootstrap`).
    pub(crate) created_by: String,
    /// Creation time (epoch ms).
    pub(crate) created_at: i64,
    /// Last use (epoch ms; updated at most once a minute).
    pub(crate) last_used_at: Option<i64>,
    /// When it was revoked; a revoked token authenticates nothing.
    pub(crate) revoked_at: Option<i64>,
}

type TokenRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

const SELECT_TOKEN: &str = "select t.id, t.name, t.prefix, t.role, p.key, t.scope, t.created_by, \
     t.created_at, t.last_used_at, t.revoked_at from api_token t \
     left join project p on p.id = t.project_id";

fn to_token(row: TokenRow) -> StoreResult<ApiToken> {
    let (id, name, prefix, role, project, scope, created_by, created_at, last_used_at, revoked_at) =
        row;
    let role = Role::parse(&role).ok_or_else(|| {
        StoreError::corrupt(
            format!("api_token {id} role"),
            format!("unknown role {role}"),
        )
    })?;
    let scope = scope
        .map(|s| {
            Scope::parse(&s).ok_or_else(|| {
                StoreError::corrupt(
                    format!("api_token {id} scope"),
                    format!("unknown scope {s}"),
                )
            })
        })
        .transpose()?;
    Ok(ApiToken {
        id,
        name,
        prefix,
        role,
        project,
        scope,
        created_by,
        created_at,
        last_used_at,
        revoked_at,
    })
}

/// Every token, revoked ones included, newest first.
pub(crate) async fn list(conn: &mut Conn) -> StoreResult<Vec<ApiToken>> {
    let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_TOKEN} order by t.id desc"
    )))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(to_token).collect()
}

/// The token with this id.
pub(crate) async fn by_id(conn: &mut Conn, id: i64) -> StoreResult<Option<ApiToken>> {
    let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_TOKEN} where t.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(to_token).transpose()
}

/// A token to insert.
#[derive(Debug)]
pub(crate) struct NewApiToken<'a> {
    pub(crate) name: &'a str,
    /// `auth::hash_secret` of the token.
    pub(crate) token_hash: &'a str,
    /// `auth::display_prefix` of the token.
    pub(crate) prefix: &'a str,
    pub(crate) role: Role,
    pub(crate) project_id: Option<i64>,
    pub(crate) scope: Option<Scope>,
    /// `Actor::name` of the creator.
    pub(crate) created_by: &'a str,
}

/// Inserts a token and returns its id.
pub(crate) async fn insert(conn: &mut Conn, new: &NewApiToken<'_>, now: i64) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "insert into api_token (name, token_hash, prefix, role, project_id, scope, created_by, \
         created_at) values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(new.name)
    .bind(new.token_hash)
    .bind(new.prefix)
    .bind(new.role.as_str())
    .bind(new.project_id)
    .bind(new.scope.map(Scope::as_str))
    .bind(new.created_by)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Marks token `id` revoked at `now`.
pub(crate) async fn revoke(conn: &mut Conn, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query("update api_token set revoked_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What authenticating a presented token needs, found by the token's hash.
#[derive(Debug)]
pub(crate) struct TokenCredential {
    pub(crate) id: i64,
    pub(crate) name: String,
    /// The role's database name (the caller decides what an unknown one means).
    pub(crate) role: String,
    pub(crate) project_id: Option<i64>,
    /// The scope's database name, if it has one.
    pub(crate) scope: Option<String>,
    pub(crate) revoked: bool,
}

/// The token whose hash is `token_hash`, revoked or not.
pub(crate) async fn by_hash(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<TokenCredential>, sqlx::Error> {
    type Row = (
        i64,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<i64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select id, name, role, project_id, scope, revoked_at from api_token \
         where token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(id, name, role, project_id, scope, revoked_at)| TokenCredential {
            id,
            name,
            role,
            project_id,
            scope,
            revoked: revoked_at.is_some(),
        },
    ))
}

/// Records that token `id` was used at `now`.
pub(crate) async fn touch(conn: &mut Conn, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update api_token set last_used_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
