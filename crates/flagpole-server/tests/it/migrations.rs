//! Migrations that change existing rows, checked on rows written before them: the files
//! are applied in order by hand, rows are inserted at the right point, then the migration
//! under test runs.

use std::path::PathBuf;

use flagpole_server::db::{Backend, Db};
use flagpole_server::testing::{fresh_postgres_url, fresh_sqlite_dir};

use crate::backends;

backends! {
    critical_backfill_keeps_the_old_confirmations => critical_backfill_postgres, critical_backfill_sqlite;
    dotted_project_keys_are_rewritten => dotted_project_keys_postgres, dotted_project_keys_sqlite;
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

/// The backend's migration file whose name starts with `number`.
fn migration(backend: Backend, number: &str) -> PathBuf {
    let next = format!("{number}~");
    let file = migrations_before(backend, &next).pop().unwrap();
    assert!(
        file.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(number),
        "{file:?}"
    );
    file
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

/// Project keys with a dot (`.` and `..` among them) become URL segments: dots to `-`,
/// trimmed, `project` when nothing is left, `-<id>` when the result is taken; each rename
/// is audited with the old and the new key, and keys without a dot are left alone.
async fn dotted_project_keys_are_rewritten(backend: Backend) {
    let db = match backend {
        Backend::Postgres => Db::connect(&fresh_postgres_url().await.unwrap(), 2).await,
        Backend::Sqlite => Db::open_sqlite_dir(&fresh_sqlite_dir().unwrap(), 2).await,
    }
    .unwrap();
    for file in migrations_before(backend, "0008") {
        apply(&db, &file).await;
    }
    // In id order: `a-b` is taken by a project that needs no rewrite, and `.` and `..`
    // both trim to nothing.
    let keys = ["shop", "a-b", ".", "..", "a.b", "v1.2.", "project-x"];
    for key in keys {
        sqlx::query(
            "insert into project (key, name, created_at, updated_at) values ($1, $1, 1, 1)",
        )
        .bind(key)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    apply(&db, &migration(backend, "0008")).await;

    let rows: Vec<(i64, String)> = sqlx::query_as("select id, key from project order by id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let id = |i: usize| rows[i].0;
    let got: Vec<&str> = rows.iter().map(|(_, k)| k.as_str()).collect();
    let dot_dot = format!("project-{}", id(3));
    let a_b = format!("a-b-{}", id(4));
    assert_eq!(
        got,
        [
            "shop",
            "a-b",
            "project",
            dot_dot.as_str(),
            a_b.as_str(),
            "v1-2",
            "project-x"
        ]
    );
    let audited: Vec<(String, String, String, String)> = sqlx::query_as(
        "select action, resource_key, before, after from audit_event order by resource_key",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut expected: Vec<(String, String)> = vec![
        (".".into(), "project".into()),
        ("..".into(), dot_dot.clone()),
        ("a.b".into(), a_b.clone()),
        ("v1.2.".into(), "v1-2".into()),
    ];
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(audited.len(), expected.len(), "{audited:?}");
    for ((action, resource, before, after), (old, new)) in audited.iter().zip(&expected) {
        assert_eq!(action, "project.rename");
        assert_eq!(resource, new);
        let before: serde_json::Value = serde_json::from_str(before).unwrap();
        let after: serde_json::Value = serde_json::from_str(after).unwrap();
        assert_eq!(before["key"], old.as_str());
        assert_eq!(after["key"], new.as_str());
    }
}
