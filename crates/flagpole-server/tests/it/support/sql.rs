//! Rows counted and seeded with plain SQL, so a test can depend on the schema alone.

use flagpole_server::db::Db;
use serde_json::{Value, json};

/// One count from SQL.
pub(crate) async fn count(db: &Db, sql: &str) -> i64 {
    exec(db, sql, &[]).await
}

/// Runs `sql` with `binds` (integers, strings, anything else as its JSON text) and returns
/// the integer it selects or returns: seeding with plain SQL depends only on the schema.
pub(crate) async fn exec(db: &Db, sql: &str, binds: &[Value]) -> i64 {
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()));
    for b in binds {
        q = match b {
            Value::Number(n) => q.bind(n.as_i64().unwrap()),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q.fetch_one(&db.pool).await.unwrap()
}

/// A boolean flag's definition: variants `on` (true) and `off` (false).
pub(crate) fn bool_flag(key: &str) -> Value {
    json!({"key": key, "kind": "boolean", "variants": [
        {"key": "on", "value": true}, {"key": "off", "value": false}]})
}

/// Inserts a flag with its config in one environment, with plain SQL.
pub(crate) async fn insert_flag(
    db: &Db,
    project_id: i64,
    env_id: i64,
    definition: Value,
    config: Value,
) {
    let key = definition["key"].as_str().unwrap().to_owned();
    let flag_id = exec(
        db,
        "insert into flag (project_id, key, definition, created_at, updated_at) \
         values ($1, $2, $3, 0, 0) returning id",
        &[json!(project_id), json!(key), json!(definition.to_string())],
    )
    .await;
    exec(
        db,
        "insert into flag_config (flag_id, environment_id, config) values ($1, $2, $3) \
         returning flag_id",
        &[json!(flag_id), json!(env_id), json!(config.to_string())],
    )
    .await;
}
