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
    dotted_environment_keys_are_rewritten => dotted_environment_keys_postgres, dotted_environment_keys_sqlite;
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

/// Environment keys with a dot become URL segments by the rule project keys followed in
/// 0008, within each project: dots to `-`, trimmed, `environment` when nothing is left,
/// `-<id>` when the result is taken in the same project. Each rename is audited, and the
/// flag history of the project names the new keys (a deleted environment that held the new
/// key in an old version gives way); other keys, projects and versions are left alone.
async fn dotted_environment_keys_are_rewritten(backend: Backend) {
    let db = match backend {
        Backend::Postgres => Db::connect(&fresh_postgres_url().await.unwrap(), 2).await,
        Backend::Sqlite => Db::open_sqlite_dir(&fresh_sqlite_dir().unwrap(), 2).await,
    }
    .unwrap();
    for file in migrations_before(backend, "0010") {
        apply(&db, &file).await;
    }
    for project in ["shop", "other"] {
        sqlx::query(
            "insert into project (key, name, created_at, updated_at) values ($1, $1, 1, 1)",
        )
        .bind(project)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    // In id order. In the shop `a-b` is taken by an environment that needs no rewrite, and
    // `.` and `..` both trim to nothing; in the other project `a-b` is free.
    let environments = [
        ("shop", "production"),
        ("shop", "a-b"),
        ("shop", "."),
        ("shop", ".."),
        ("shop", "a.b"),
        ("shop", "v1.2."),
        ("other", "a.b"),
        ("other", "staging"),
    ];
    for (project, key) in environments {
        sqlx::query(
            "insert into environment (project_id, key, name, created_at, updated_at) \
             select id, $2, $2, 1, 1 from project where key = $1",
        )
        .bind(project)
        .bind(key)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let config = |variant: &str| serde_json::json!({"enabled": true, "off_variant": variant, "default_serve": {"variant": variant}});
    let state = |environments: serde_json::Value| {
        serde_json::json!({
            "flag": {"key": "f", "kind": "boolean", "variants": [
                {"key": "on", "value": true}, {"key": "off", "value": false}]},
            "archived": false,
            "environments": environments,
        })
        .to_string()
    };
    // Version 1 of the shop's flag also holds `v1-2`, an environment deleted since.
    let shop_v1 = state(serde_json::json!({
        "production": config("on"), "a.b": config("on"), ".": config("off"),
        "v1.2.": config("off"), "v1-2": config("on"),
    }));
    let other_v1 = state(serde_json::json!({"a.b": config("off"), "staging": config("on")}));
    let other_v2 = state(serde_json::json!({"staging": config("off")}));
    for (project, version, state) in [
        ("shop", 1i64, &shop_v1),
        ("other", 1, &other_v1),
        ("other", 2, &other_v2),
    ] {
        if version == 1 {
            sqlx::query(
                "insert into flag (project_id, key, definition, created_at, updated_at) \
                 select id, 'f', '{}', 1, 1 from project where key = $1",
            )
            .bind(project)
            .execute(&db.pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "insert into flag_version (flag_id, version, state, actor, created_at) \
             select f.id, $2, $3, 'test', 1 from flag f join project p on p.id = f.project_id \
             where p.key = $1",
        )
        .bind(project)
        .bind(version)
        .bind(state.as_str())
        .execute(&db.pool)
        .await
        .unwrap();
    }
    apply(&db, &migration(backend, "0010")).await;

    let rows: Vec<(i64, String)> = sqlx::query_as("select id, key from environment order by id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let id = |i: usize| rows[i].0;
    let got: Vec<&str> = rows.iter().map(|(_, k)| k.as_str()).collect();
    let dot_dot = format!("environment-{}", id(3));
    let a_b = format!("a-b-{}", id(4));
    assert_eq!(
        got,
        [
            "production",
            "a-b",
            "environment",
            dot_dot.as_str(),
            a_b.as_str(),
            "v1-2",
            "a-b",
            "staging"
        ]
    );

    let audited: Vec<(String, i64, String, String, String)> = sqlx::query_as(
        "select action, environment_id, resource_key, before, after from audit_event \
         order by environment_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let expected = [
        (2, ".", "environment"),
        (3, "..", dot_dot.as_str()),
        (4, "a.b", a_b.as_str()),
        (5, "v1.2.", "v1-2"),
        (6, "a.b", "a-b"),
    ];
    assert_eq!(audited.len(), expected.len(), "{audited:?}");
    for ((action, env, resource, before, after), (i, old, new)) in audited.iter().zip(expected) {
        assert_eq!((action.as_str(), *env), ("environment.rename", id(i)));
        assert_eq!(resource, new);
        let before: serde_json::Value = serde_json::from_str(before).unwrap();
        let after: serde_json::Value = serde_json::from_str(after).unwrap();
        assert_eq!(
            (before["key"].as_str(), after["key"].as_str()),
            (Some(old), Some(new))
        );
    }

    let states: Vec<(String, i64, String)> = sqlx::query_as(
        "select p.key, v.version, v.state from flag_version v join flag f on f.id = v.flag_id \
         join project p on p.id = f.project_id order by p.key, v.version",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    // Read the way the server reads them: later duplicate keys win.
    let parsed = |text: &str| -> flagpole_server::store::flag_version::FlagVersionState {
        serde_json::from_str(text).unwrap()
    };
    let keys = |text: &str| parsed(text).environments.into_keys().collect::<Vec<_>>();
    assert_eq!(states[0].0, "other");
    assert_eq!(keys(&states[0].2), ["a-b", "staging"]);
    assert_eq!(
        parsed(&states[0].2).environments["a-b"],
        serde_json::from_value(config("off")).unwrap()
    );
    assert_eq!(
        states[1].2, other_v2,
        "a version without an old key is not touched"
    );
    assert_eq!(states[2].0, "shop");
    let shop = parsed(&states[2].2);
    let mut expected_keys = vec![
        "environment".to_owned(),
        a_b.clone(),
        "production".to_owned(),
        "v1-2".to_owned(),
    ];
    expected_keys.sort();
    assert_eq!(
        shop.environments.keys().cloned().collect::<Vec<_>>(),
        expected_keys
    );
    assert_eq!(
        shop.environments["v1-2"],
        serde_json::from_value(config("off")).unwrap(),
        "the renamed environment's config, not the deleted one's"
    );
    assert_eq!(shop.flag.key, "f", "the rest of the state is kept");
}
