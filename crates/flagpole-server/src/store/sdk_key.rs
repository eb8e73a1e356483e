//! The `sdk_key` table: read-only credentials of one environment. Only the key's SHA-256
//! is stored.

use serde::Serialize;

use super::{Conn, StoreResult};

/// An SDK key as listed (never the key itself: only its hash is stored).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct SdkKey {
    /// Id, used in URLs.
    pub(crate) id: i64,
    /// What it is for (e.g. the service using it).
    pub(crate) name: String,
    /// The first characters of the key, to tell keys apart.
    pub(crate) prefix: String,
    /// Key of the environment it reads.
    pub(crate) environment: String,
    /// Who created it.
    pub(crate) created_by: String,
    /// Creation time (epoch ms).
    pub(crate) created_at: i64,
    /// When it was revoked; a revoked key authenticates nothing (other replicas notice
    /// within 30 s).
    pub(crate) revoked_at: Option<i64>,
    /// The last stream connection or OFREP call made with the key (epoch ms); `null` until
    /// an application first connects. Written every few seconds, not per request.
    pub(crate) last_seen_at: Option<i64>,
    /// The stored hash, for invalidating caches; never shown.
    #[serde(skip)]
    pub(crate) key_hash: String,
}

type KeyRow = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<i64>,
);

const SELECT_KEY: &str = "select id, name, prefix, created_by, created_at, revoked_at, key_hash, \
     last_seen_at from sdk_key";

fn to_key(row: KeyRow, environment: &str) -> SdkKey {
    let (id, name, prefix, created_by, created_at, revoked_at, key_hash, last_seen_at) = row;
    SdkKey {
        id,
        name,
        prefix,
        environment: environment.to_owned(),
        created_by,
        created_at,
        revoked_at,
        last_seen_at,
        key_hash,
    }
}

/// The keys of environment `environment_id` (whose key is `environment`), revoked ones
/// included, newest first.
pub(crate) async fn list(
    conn: &mut Conn,
    environment_id: i64,
    environment: &str,
) -> StoreResult<Vec<SdkKey>> {
    let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_KEY} where environment_id = $1 order by id desc"
    )))
    .bind(environment_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| to_key(r, environment)).collect())
}

/// Key `id` of environment `environment_id`.
pub(crate) async fn by_id(
    conn: &mut Conn,
    environment_id: i64,
    environment: &str,
    id: i64,
) -> StoreResult<Option<SdkKey>> {
    let row: Option<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_KEY} where id = $1 and environment_id = $2"
    )))
    .bind(id)
    .bind(environment_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| to_key(r, environment)))
}

/// A key to insert.
#[derive(Debug)]
pub(crate) struct NewSdkKey<'a> {
    pub(crate) environment_id: i64,
    pub(crate) name: &'a str,
    /// `auth::hash_secret` of the key.
    pub(crate) key_hash: &'a str,
    /// `auth::display_prefix` of the key.
    pub(crate) prefix: &'a str,
    /// `Actor::name` of the creator.
    pub(crate) created_by: &'a str,
}

/// Inserts a key of the environment whose key is `environment`.
pub(crate) async fn insert(
    conn: &mut Conn,
    new: &NewSdkKey<'_>,
    environment: &str,
    now: i64,
) -> StoreResult<SdkKey> {
    let row: KeyRow = sqlx::query_as(
        "insert into sdk_key (environment_id, name, key_hash, prefix, created_by, created_at) \
         values ($1, $2, $3, $4, $5, $6) \
         returning id, name, prefix, created_by, created_at, revoked_at, key_hash, last_seen_at",
    )
    .bind(new.environment_id)
    .bind(new.name)
    .bind(new.key_hash)
    .bind(new.prefix)
    .bind(new.created_by)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(to_key(row, environment))
}

/// Records when keys were last used: `(key id, epoch ms)`. A time never moves backwards
/// (another replica may have written a later one). One statement per key, all in one
/// transaction-less batch: each is independent and idempotent.
pub(crate) async fn record_seen(conn: &mut Conn, seen: &[(i64, i64)]) -> StoreResult<()> {
    for &(id, at) in seen {
        sqlx::query(
            "update sdk_key set last_seen_at = $1 \
             where id = $2 and (last_seen_at is null or last_seen_at < $1)",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Marks key `id` revoked at `now`.
pub(crate) async fn revoke(conn: &mut Conn, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query("update sdk_key set revoked_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The id of a live (not revoked) key with this hash, and the environment and project it
/// reads.
pub(crate) async fn client_by_hash(
    conn: &mut Conn,
    key_hash: &str,
) -> Result<Option<(i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select k.id, e.id, e.project_id from sdk_key k join environment e on e.id = k.environment_id \
         where k.key_hash = $1 and k.revoked_at is null",
    )
    .bind(key_hash)
    .fetch_optional(conn)
    .await
}
