//! Migrations that change existing rows, checked on rows written before them: the files
//! are applied in order by hand, rows are inserted at the right point, then the migration
//! under test runs.

use std::path::PathBuf;

use flagpole_server::db::{Backend, Db};
use flagpole_server::testing::{fresh_postgres_url, fresh_sqlite_dir};

use crate::backends;

backends! {
    critical_backfill_keeps_the_old_confirmations => critical_backfill_postgres, critical_backfill_sqlite;
}

/// The backend's migration files whose names sort before `before`, in order.
fn migrations_before(backend: Backend, before: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap() < before)
        .collect();
    files.sort();
    files
}

async fn apply(db: &Db, file: &PathBuf) {
    let sql = std::fs::read_to_string(file).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// Environments the dashboard treated as production (key or name containing "prod")
/// become critical, so an upgrade takes no confirmation away; no project starts requiring
/// comments.
async fn critical_backfill_keeps_the_old_confirmations(backend: Backend) {
    let db = match backend {
        Backend::Postgres => Db::connect(&fresh_postgres_url().await.unwrap(), 2).await,
        Backend::Sqlite => Db::open_sqlite_dir(&fresh_sqlite_dir().unwrap(), 2).await,
    }
    .unwrap();
    for file in migrations_before(backend, "0005") {
        apply(&db, &file).await;
    }
    sqlx::query("insert into project (key, name, created_at, updated_at) values ('p', 'P', 1, 1)")
        .execute(&db.pool)
        .await
        .unwrap();
    for (key, name) in [
        ("production", "Production"),
        ("eu", "Prod EU"),
        ("preprod", "Pre-production"),
        ("live", "Live"),
        ("staging", "Staging"),
    ] {
        sqlx::query(
            "insert into environment (project_id, key, name, created_at, updated_at) \
             select id, $1, $2, 1, 1 from project",
        )
        .bind(key)
        .bind(name)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let file = migrations_before(backend, "0006").pop().unwrap();
    assert!(file.ends_with("0005_critical_environments.sql"), "{file:?}");
    apply(&db, &file).await;

    let critical: Vec<(String, i64)> =
        sqlx::query_as("select key, critical from environment order by id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let critical: Vec<(&str, i64)> = critical.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    assert_eq!(
        critical,
        [
            ("production", 1),
            ("eu", 1),
            ("preprod", 1),
            ("live", 0),
            ("staging", 0)
        ]
    );
    let required: i64 = sqlx::query_scalar("select require_critical_comment from project")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(required, 0);
}
