//! The store modules directly, inside transactions, on Postgres and SQLite.

use std::collections::BTreeMap;

use flagpole_core::model::{Flag, FlagConfig, FlagKind, Prerequisite, Serve, Variant};
use flagpole_server::db::{Backend, now_ms};
use flagpole_server::store::audit::{self, AuditFilter, NewAuditEvent};
use flagpole_server::store::environment::{self, ChangeKind, NewEnvironment};
use flagpole_server::store::flag::{self, ListFilter};
use flagpole_server::store::flag_version::{self, FlagVersionState};
use flagpole_server::store::project::{self, ProjectFields};
use flagpole_server::store::project_data::ProjectData;
use serde_json::json;

use crate::backends;

backends! {
    versions_changes_and_rollback => versions_changes_and_rollback_postgres, versions_changes_and_rollback_sqlite;
    flags_search_history_and_project_data => flags_search_history_and_project_data_postgres, flags_search_history_and_project_data_sqlite;
    audit_filters => audit_filters_postgres, audit_filters_sqlite;
}

fn boolean_flag(key: &str, name: &str, description: &str, tags: &[&str]) -> Flag {
    Flag {
        key: key.into(),
        name: name.into(),
        description: description.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        kind: FlagKind::Boolean,
        variants: vec![
            Variant {
                key: "on".into(),
                value: json!(true),
                name: String::new(),
                description: String::new(),
            },
            Variant {
                key: "off".into(),
                value: json!(false),
                name: String::new(),
                description: String::new(),
            },
        ],
        salt: String::new(),
    }
}

fn config(enabled: bool, prerequisites: Vec<Prerequisite>) -> FlagConfig {
    FlagConfig {
        enabled,
        off_variant: "off".into(),
        targets: vec![],
        prerequisites,
        rules: vec![],
        default_serve: Serve::Variant("on".into()),
    }
}

async fn versions_changes_and_rollback(backend: Backend) {
    let db = flagpole_server::testing::fresh_db(backend).await.unwrap();
    let now = now_ms();
    let mut tx = db.begin_write().await.unwrap();
    let p = project::insert(&mut tx, "p", "P", "", now).await.unwrap();
    let mut envs = Vec::new();
    for (i, key) in ["dev", "prod"].into_iter().enumerate() {
        let new = NewEnvironment {
            key,
            name: key,
            description: "",
            sort_order: i as i64,
            critical: key == "prod",
        };
        envs.push(environment::insert(&mut tx, p.id, &new, now).await.unwrap());
    }
    tx.commit().await.unwrap();

    let mut tx = db.begin_write().await.unwrap();
    let all = environment::bump_data_versions(&mut tx, p.id, None)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.data_version).collect::<Vec<_>>(),
        [1, 1]
    );
    let one = environment::bump_data_versions(&mut tx, p.id, Some(envs[1].id))
        .await
        .unwrap();
    assert_eq!(
        (one.len(), one[0].environment_id, one[0].data_version),
        (1, envs[1].id, 2)
    );
    environment::record_changes(&mut tx, &one, ChangeKind::Segment, "beta")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("select data_version, kind, key from env_change order by data_version")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows, [(2, "segment".to_owned(), "beta".to_owned())]);

    // A dropped transaction leaves nothing behind.
    {
        let mut tx = db.begin_write().await.unwrap();
        environment::bump_data_versions(&mut tx, p.id, None)
            .await
            .unwrap();
        let fields = ProjectFields {
            name: "changed",
            description: "",
            require_critical_comment: true,
        };
        project::update(&mut tx, p.id, 1, &fields, now)
            .await
            .unwrap();
    }
    let mut conn = db.pool.acquire().await.unwrap();
    let listed = environment::list(&mut conn, p.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.data_version).collect::<Vec<_>>(),
        [1, 2]
    );
    // `critical` is stored as 0/1 and read back as a bool on both backends.
    assert_eq!(
        listed.iter().map(|e| e.critical).collect::<Vec<_>>(),
        [false, true]
    );
    let stored = project::by_key(&mut conn, "p").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.name.as_str(),
            stored.version,
            stored.require_critical_comment
        ),
        ("P", 1, false)
    );
    // A conditional update at a stale version changes nothing.
    let fields = ProjectFields {
        name: "x",
        description: "",
        require_critical_comment: false,
    };
    assert!(
        project::update(&mut conn, p.id, 7, &fields, now)
            .await
            .unwrap()
            .is_none()
    );
}

async fn flags_search_history_and_project_data(backend: Backend) {
    let db = flagpole_server::testing::fresh_db(backend).await.unwrap();
    let now = now_ms();
    let mut tx = db.begin_write().await.unwrap();
    let p = project::insert(&mut tx, "p", "P", "", now).await.unwrap();
    let new = NewEnvironment {
        key: "prod",
        name: "Prod",
        description: "",
        sort_order: 0,
        critical: true,
    };
    let env = environment::insert(&mut tx, p.id, &new, now).await.unwrap();
    let a = flag::insert(
        &mut tx,
        p.id,
        &boolean_flag("a", "Alpha", "100% of_users", &["x", "x", "y"]),
        Default::default(),
        now,
    )
    .await
    .unwrap();
    let b = flag::insert(
        &mut tx,
        p.id,
        &boolean_flag("b", "Beta", "plain", &["y"]),
        Default::default(),
        now,
    )
    .await
    .unwrap();
    flag::put_config(&mut tx, a.id, env.id, &config(true, vec![]))
        .await
        .unwrap();
    let needs_a = vec![Prerequisite {
        flag: "a".into(),
        variants: vec!["on".into()],
    }];
    flag::put_config(&mut tx, b.id, env.id, &config(false, needs_a))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut conn = db.pool.acquire().await.unwrap();
    let search = |q: Option<&str>, tag: Option<&str>| ListFilter {
        q: q.map(str::to_owned),
        tag: tag.map(str::to_owned),
        archived: false,
        limit: 10,
        offset: 0,
    };
    let keys = |rows: Vec<flag::FlagRow>| rows.into_iter().map(|r| r.key).collect::<Vec<_>>();
    let (rows, total) = flag::list(&mut conn, p.id, &search(Some("ALPHA"), None))
        .await
        .unwrap();
    assert_eq!((keys(rows), total), (vec!["a".to_owned()], 1));
    // LIKE wildcards in the query are literal.
    let (_, total) = flag::list(&mut conn, p.id, &search(Some("0%"), None))
        .await
        .unwrap();
    assert_eq!(total, 1);
    let (_, total) = flag::list(&mut conn, p.id, &search(Some("f_u"), None))
        .await
        .unwrap();
    assert_eq!(total, 1, "`_` must match only an underscore");
    let (_, total) = flag::list(&mut conn, p.id, &search(Some("of-u"), None))
        .await
        .unwrap();
    assert_eq!(total, 0);
    let (rows, total) = flag::list(&mut conn, p.id, &search(None, Some("y")))
        .await
        .unwrap();
    assert_eq!(
        (keys(rows), total),
        (vec!["a".to_owned(), "b".to_owned()], 2)
    );
    let configs = flag::configs_of(&mut conn, &[a.id, b.id]).await.unwrap();
    let states: Vec<(i64, i64, bool)> = configs
        .iter()
        .map(|(f, e, c)| (*f, *e, c.enabled))
        .collect();
    assert!(states.contains(&(a.id, env.id, true)) && states.contains(&(b.id, env.id, false)));
    assert_eq!(
        flag::configs_in_project(&mut conn, p.id, false)
            .await
            .unwrap(),
        configs
    );

    let data = ProjectData::load(&mut conn, p.id).await.unwrap();
    assert_eq!(data.live_dependents("a"), ["b"]);
    let snapshot = data.snapshot(env.id, 9);
    assert_eq!((snapshot.version, snapshot.flags.len()), (9, 2));
    flagpole_core::Snapshot::compile_strict(&snapshot).expect("stored data is valid");

    let state = FlagVersionState {
        flag: boolean_flag("a", "Alpha", "", &[]),
        archived: false,
        environments: BTreeMap::from([("prod".to_owned(), config(true, vec![]))]),
    };
    flag_version::insert(&mut conn, a.id, 1, &state, "token:t", "first", now)
        .await
        .unwrap();
    flag_version::insert(&mut conn, a.id, 2, &state, "token:t", "", now)
        .await
        .unwrap();
    let list = flag_version::list(&mut conn, a.id, 10, 0).await.unwrap();
    assert_eq!(
        list.iter().map(|(v, _)| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(list[1].1, state);
    let (summary, got) = flag_version::get(&mut conn, a.id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.comment.as_str(), got), ("first", state));
    assert!(
        flag_version::get(&mut conn, a.id, 3)
            .await
            .unwrap()
            .is_none()
    );
}

async fn audit_filters(backend: Backend) {
    let db = flagpole_server::testing::fresh_db(backend).await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let p = project::insert(&mut conn, "p", "P", "", 1).await.unwrap();
    for (at, actor, kind, key) in [
        (10, "token:a", "flag", "f"),
        (20, "token:b", "flag", "g"),
        (30, "token:a", "segment", "f"),
    ] {
        let event = NewAuditEvent {
            actor,
            action: "x.update",
            project_id: Some(p.id),
            resource_type: kind,
            resource_key: key,
            after: Some(json!({"at": at})),
            ..Default::default()
        };
        audit::insert(&mut conn, &event, at).await.unwrap();
    }
    let query = |filter: AuditFilter| AuditFilter {
        limit: 10,
        ..filter
    };
    let all = audit::query(&mut conn, &query(AuditFilter::default()))
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), [30, 20, 10]);
    assert_eq!(all[0].project.as_deref(), Some("p"));
    assert_eq!(all[0].after, Some(json!({"at": 30})));
    let by_actor = audit::query(
        &mut conn,
        &query(AuditFilter {
            actor: Some("token:a".into()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(by_actor.len(), 2);
    let flag_f = AuditFilter {
        resource: Some(("flag".into(), "f".into())),
        ..Default::default()
    };
    assert_eq!(
        audit::query(&mut conn, &query(flag_f)).await.unwrap().len(),
        1
    );
    let window = AuditFilter {
        from: Some(20),
        to: Some(30),
        ..Default::default()
    };
    let hits = audit::query(&mut conn, &query(window)).await.unwrap();
    assert_eq!(hits.iter().map(|e| e.at).collect::<Vec<_>>(), [20]);
    let page = AuditFilter {
        limit: 1,
        offset: 1,
        ..Default::default()
    };
    assert_eq!(audit::query(&mut conn, &page).await.unwrap()[0].at, 20);
    let other = AuditFilter {
        project_id: Some(p.id + 1),
        ..Default::default()
    };
    assert!(
        audit::query(&mut conn, &query(other))
            .await
            .unwrap()
            .is_empty()
    );
}
