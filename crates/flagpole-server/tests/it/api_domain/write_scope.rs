//! Writes validate the part of the project they can affect (issue 14): a change that
//! breaks a flag or segment depending on the written one is still refused, naming it, and
//! the dependency index those writes read stays exact through every kind of write and for
//! data written before it existed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::http::{Method, StatusCode};
use flagpole_server::db::{Backend, Db};
use flagpole_server::store::dependency;
use flagpole_server::store::project_data::ProjectData;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error, exec};

backends! {
    invalid_dependents_are_refused => invalid_dependents_are_refused_postgres, invalid_dependents_are_refused_sqlite;
    dependency_index_follows_writes => dependency_index_follows_writes_postgres, dependency_index_follows_writes_sqlite;
    dependency_index_is_backfilled => dependency_index_is_backfilled_postgres, dependency_index_is_backfilled_sqlite;
}

const FLAGS: &str = "/api/v1/projects/p/flags";
const SEGMENTS: &str = "/api/v1/projects/p/segments";

/// A config requiring variant `on` of each of `prerequisites` and naming `segments`.
fn config(prerequisites: &[&str], segments: &[&str]) -> Value {
    let required: Vec<(&str, &str)> = prerequisites.iter().map(|p| (*p, "on")).collect();
    requiring(&required, segments)
}

/// A config requiring (flag, variant) `prerequisites` and naming `segments`.
fn requiring(prerequisites: &[(&str, &str)], segments: &[&str]) -> Value {
    let prerequisites: Vec<Value> = prerequisites
        .iter()
        .map(|(flag, variant)| json!({"flag": flag, "variants": [variant]}))
        .collect();
    let rules: Vec<Value> = segments
        .iter()
        .map(|s| json!({"clauses": [{"op": "in_segment", "values": [s]}], "serve": {"variant": "on"}}))
        .collect();
    json!({"enabled": true, "off_variant": "off", "prerequisites": prerequisites, "rules": rules,
        "default_serve": {"variant": "off"}})
}

fn fields(body: &Value) -> Vec<String> {
    body["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {body}"))
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

/// PUTs a flag's config in `env`; returns (status, body).
async fn put_config(t: &TestApp, flag: &str, env: &str, config: Value) -> (StatusCode, Value) {
    let url = format!("{FLAGS}/{flag}");
    let (_, view) = t.call(Method::GET, &url, None).await;
    t.call(
        Method::PUT,
        &format!("{url}/environments/{env}"),
        Some(json!({"config": config, "version": view["version"]})),
    )
    .await
}

async fn invalid_dependents_are_refused(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let variants = json!([{"key": "on", "value": true}, {"key": "extra", "value": true},
        {"key": "off", "value": false}]);
    let (s, b) = t
        .call(
            Method::POST,
            FLAGS,
            Some(json!({"key": "a", "kind": "boolean", "variants": variants})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Unrelated flags around the chain: they are neither loaded nor in the way.
    for key in ["b", "c", "d", "e", "z"] {
        let (s, b) = t.call(Method::POST, FLAGS, Some(json!({"key": key}))).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    // In production: c -> b -> a (c requires b, b requires variant `extra` of a).
    let (s, b) = put_config(&t, "b", "production", requiring(&[("a", "extra")], &[])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = put_config(&t, "c", "production", config(&["b"], &[])).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Removing the variant `b` requires from `a` breaks `b`, a dependent in production.
    let (s, b) = t
        .call(Method::PATCH, &format!("{FLAGS}/a"),
            Some(json!({"variants": [{"key": "on", "value": true}, {"key": "off", "value": false}], "version": 1})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(
        fields(&b),
        ["flags.b.config.prerequisites[0].variants[0]"],
        "{b}"
    );

    // A prerequisite of `a` on `c` closes a cycle through the dependents: every flag on it
    // is named, as a compile of the whole environment names them.
    let (s, b) = put_config(&t, "a", "production", config(&["c"], &[])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let named: BTreeSet<String> = fields(&b).into_iter().collect();
    let expected: BTreeSet<String> = [
        "config.prerequisites",
        "flags.b.config.prerequisites",
        "flags.c.config.prerequisites",
    ]
    .map(String::from)
    .into();
    assert_eq!(named, expected, "{b}");
    // The same prerequisite in staging, where nothing requires `a`, is fine.
    let (s, b) = put_config(&t, "a", "staging", config(&["c"], &[])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A flag that leads into a cycle is refused too: `d` requiring `e` is fine, then `e`
    // requiring `d` names both.
    let (s, b) = put_config(&t, "d", "development", config(&["e"], &[])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = put_config(&t, "e", "development", config(&["d"], &[])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        fields(&b).contains(&"flags.d.config.prerequisites".to_owned()),
        "{b}"
    );

    // Archiving a prerequisite of a live flag is still refused.
    let (s, b) = t
        .call(Method::POST, &format!("{FLAGS}/b/archive"), None)
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("`c`"),
        "{b}"
    );

    // Segments: `outer` names `inner`; `inner` naming `outer` closes a cycle.
    for (key, names) in [("inner", vec![]), ("outer", vec!["inner"])] {
        let rules: Vec<Value> = names
            .iter()
            .map(|n| json!({"clauses": [{"op": "in_segment", "values": [n]}]}))
            .collect();
        let (s, b) = t
            .call(
                Method::POST,
                SEGMENTS,
                Some(json!({"key": key, "rules": rules})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = t
        .call(Method::PUT, &format!("{SEGMENTS}/inner"),
            Some(json!({"rules": [{"clauses": [{"op": "in_segment", "values": ["outer"]}]}], "version": 1})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let named: BTreeSet<String> = fields(&b).into_iter().collect();
    assert_eq!(
        named,
        ["rules".to_owned(), "segments.outer.rules".to_owned()].into(),
        "{b}"
    );
    // A flag naming `outer` keeps it from being deleted, and `outer` keeps `inner`.
    let (s, b) = put_config(&t, "z", "staging", config(&[], &["outer"])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for (segment, user) in [("outer", "flag `z`"), ("inner", "segment `outer`")] {
        let (s, b) = t
            .call(Method::DELETE, &format!("{SEGMENTS}/{segment}"), None)
            .await;
        assert_error(s, &b, StatusCode::CONFLICT, None);
        assert!(
            b["error"]["message"].as_str().unwrap().contains(user),
            "{b}"
        );
    }
}

/// After a series of writes of every kind, the index answers exactly what the documents
/// say (flagpole-core's `dependents` over the whole project).
async fn dependency_index_follows_writes(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for i in 0..4 {
        let rules: Vec<Value> = (0..i)
            .filter(|j| (i + j) % 2 == 1)
            .map(|j| json!({"clauses": [{"op": "in_segment", "values": [format!("s{j}")]}]}))
            .collect();
        let (s, b) = t
            .call(
                Method::POST,
                SEGMENTS,
                Some(json!({"key": format!("s{i}"), "rules": rules})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    // Flags g0…g9, each requiring some lower flags (so no cycle) and naming some segments,
    // differently per environment; created with their configs, then some replaced.
    let envs = ["development", "staging", "production"];
    for i in 0..10usize {
        let mut environments = serde_json::Map::new();
        for (e, env) in envs.iter().enumerate() {
            let prerequisites: Vec<String> = (0..i)
                .filter(|j| (i * 7 + j * 3 + e) % 4 == 0)
                .map(|j| format!("g{j}"))
                .collect();
            let segments: Vec<String> = (0..4)
                .filter(|s| (i + s + e) % 5 == 0)
                .map(|s| format!("s{s}"))
                .collect();
            let p: Vec<&str> = prerequisites.iter().map(String::as_str).collect();
            let s: Vec<&str> = segments.iter().map(String::as_str).collect();
            environments.insert((*env).to_owned(), config(&p, &s));
        }
        let (s, b) = t
            .call(
                Method::POST,
                FLAGS,
                Some(json!({"key": format!("g{i}"), "environments": environments})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    check_index(&t).await;
    // Replaced configs (a prerequisite dropped, one added), a toggle, an archive and a
    // revert, a segment rewritten and one deleted.
    let (s, b) = put_config(&t, "g9", "production", config(&["g1"], &["s3"])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = put_config(&t, "g5", "staging", config(&[], &[])).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/g8/environments/development/toggle"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for key in ["g9", "g8"] {
        let (s, b) = t
            .call(Method::POST, &format!("{FLAGS}/{key}/archive"), None)
            .await;
        if s != StatusCode::OK {
            assert_error(s, &b, StatusCode::CONFLICT, None);
        }
    }
    let (_, view) = t.call(Method::GET, &format!("{FLAGS}/g5"), None).await;
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/g5/revert"),
            Some(json!({"to_version": 1, "version": view["version"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call(Method::PUT, &format!("{SEGMENTS}/s3"), Some(json!({"rules": [{"clauses": [{"op": "in_segment", "values": ["s0"]}]}], "version": 1})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    check_index(&t).await;
    // A flag created under a key no one has: nothing depends on it.
    let (s, b) = t
        .call(Method::POST, FLAGS, Some(json!({"key": "fresh"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    check_index(&t).await;
}

/// Compares the index's answers for every flag and segment with the documents'.
async fn check_index(t: &TestApp) {
    let db: &Db = t.db();
    let mut conn = db.pool.acquire().await.unwrap();
    let project_id = exec(db, "select id from project where key = $1", &[json!("p")]).await;
    let data = ProjectData::load(&mut conn, project_id).await.unwrap();
    let snapshots: Vec<(i64, _)> = data
        .environments
        .iter()
        .map(|e| (e.id, data.snapshot(e.id, 0)))
        .collect();
    for key in data.flag_keys() {
        let mut all = BTreeSet::new();
        for (env, snapshot) in &snapshots {
            let expected = snapshot.dependents(key);
            all.extend(expected.iter().cloned());
            let found = dependency::flag_dependents(&mut conn, project_id, key, Some(*env))
                .await
                .unwrap();
            assert_eq!(
                found, expected,
                "dependents of flag `{key}` in environment {env}"
            );
        }
        let found = dependency::flag_dependents(&mut conn, project_id, key, None)
            .await
            .unwrap();
        assert_eq!(
            found,
            all.into_iter().collect::<Vec<_>>(),
            "dependents of flag `{key}`"
        );
    }
    let any = &snapshots[0].1;
    for segment in &data.segments {
        let key = &segment.key;
        let found = dependency::segment_dependents(&mut conn, project_id, key)
            .await
            .unwrap();
        assert_eq!(
            found,
            any.segment_dependents(key),
            "dependents of segment `{key}`"
        );
        let (flags, segments) = dependency::segment_users(&mut conn, project_id, key)
            .await
            .unwrap();
        let expected_flags: Vec<String> = data
            .flags
            .iter()
            .filter(|f| {
                !f.archived
                    && f.configs
                        .values()
                        .any(|c| c.segment_keys().any(|k| k == key))
            })
            .map(|f| f.definition.key.clone())
            .collect();
        let expected_segments: Vec<String> = data
            .segments
            .iter()
            .filter(|s| s.key != *key && s.segment_keys().any(|k| k == key))
            .map(|s| s.key.clone())
            .collect();
        assert_eq!(
            (flags, segments),
            (expected_flags, expected_segments),
            "users of segment `{key}`"
        );
    }
}

/// Data written before migration 0004 (by the previous release) is in the index once the
/// migration has run.
async fn dependency_index_is_backfilled(backend: Backend) {
    let dialect = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let db = match backend {
        Backend::Postgres => Db::connect(
            &flagpole_server::testing::fresh_postgres_url()
                .await
                .unwrap(),
            2,
        )
        .await
        .unwrap(),
        Backend::Sqlite => {
            Db::open_sqlite_dir(&flagpole_server::testing::fresh_sqlite_dir().unwrap(), 2)
                .await
                .unwrap()
        }
    };
    // The migrations before 0004, as the previous release applied them.
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let before = flagpole_server::testing::fresh_sqlite_dir()
        .unwrap()
        .join("migrations");
    std::fs::create_dir_all(&before).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0004" {
            std::fs::copy(&path, before.join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(&db.pool)
        .await
        .unwrap();

    let project = exec(&db, "insert into project (key, name, created_at, updated_at) values ('p', 'P', 0, 0) returning id", &[]).await;
    let env = exec(&db, "insert into environment (project_id, key, name, created_at, updated_at) values ($1, 'production', 'P', 0, 0) returning id", &[json!(project)]).await;
    for (key, prerequisites, segments) in [
        ("a", vec![], vec![]),
        ("b", vec!["a"], vec!["s"]),
        ("c", vec!["b", "a"], vec![]),
    ] {
        let definition = crate::support::bool_flag(key);
        let flag = exec(&db, "insert into flag (project_id, key, definition, created_at, updated_at) values ($1, $2, $3, 0, 0) returning id",
            &[json!(project), json!(key), json!(definition.to_string())]).await;
        exec(&db, "insert into flag_config (flag_id, environment_id, config) values ($1, $2, $3) returning flag_id",
            &[json!(flag), json!(env), json!(config(&prerequisites, &segments).to_string())]).await;
    }
    for (key, names) in [("s", "t"), ("t", "")] {
        let rules = if names.is_empty() {
            json!([])
        } else {
            json!([{"clauses": [{"op": "in_segment", "values": [names, 7]}]}])
        };
        exec(&db, "insert into segment (project_id, key, definition, created_at, updated_at) values ($1, $2, $3, 0, 0) returning id",
            &[json!(project), json!(key), json!(json!({"key": key, "rules": rules}).to_string())]).await;
    }

    db.migrate().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let dependents = dependency::flag_dependents(&mut conn, project, "a", None)
        .await
        .unwrap();
    assert_eq!(dependents, ["b", "c"]);
    let dependents = dependency::flag_dependents(&mut conn, project, "b", Some(env))
        .await
        .unwrap();
    assert_eq!(dependents, ["c"]);
    let dependents = dependency::segment_dependents(&mut conn, project, "t")
        .await
        .unwrap();
    assert_eq!(dependents, ["s"]);
    let users = dependency::segment_users(&mut conn, project, "s")
        .await
        .unwrap();
    assert_eq!(users, (vec!["b".to_owned()], vec![]));
}
