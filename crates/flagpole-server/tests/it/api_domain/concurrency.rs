//! Concurrent writers and the OpenAPI description of the domain routes.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::json;

use crate::backends;
use crate::support::TestApp;

backends! {
    concurrent_writers_at_one_version => concurrent_writers_at_one_version_postgres, concurrent_writers_at_one_version_sqlite;
}

backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_creates_all_land => concurrent_creates_all_land_postgres, concurrent_creates_all_land_sqlite;
}

/// Many flags created at once in one project (a script seeding a project): every one
/// lands. Each create bumps every environment of the project; when those rows were locked
/// in whatever order the scan met them, Postgres aborted some creates as deadlocked (500).
async fn concurrent_creates_all_land(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let t = std::sync::Arc::new(t);
    for round in 0..10 {
        let creates: Vec<_> = (0..30)
            .map(|i| {
                let t = t.clone();
                tokio::spawn(async move {
                    t.call(
                        Method::POST,
                        "/api/v1/projects/p/flags",
                        Some(json!({"key": format!("f-{round}-{i}")})),
                    )
                    .await
                })
            })
            .collect();
        for create in creates {
            let (s, b) = create.await.expect("create task");
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
    }
    assert_eq!(t.data_version("p", "production").await, 300);
}

/// Eight editors send a config based on the same version at once: exactly one wins and
/// the others get 409. Then kill-switch presses (no version: they must work from a stale
/// page) race a second round of editors: every toggle lands, at most one editor wins (a
/// toggle that commits first moves the version under all of them), and the history has one
/// entry per successful write with no gaps.
async fn concurrent_writers_at_one_version(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    t.call(
        Method::POST,
        "/api/v1/projects/p/flags",
        Some(json!({"key": "f"})),
    )
    .await;
    let url = "/api/v1/projects/p/flags/f/environments/production";
    let t = &t;
    let edits = |round: usize, version: i64| {
        (0..8).map(move |i| {
            let config = json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "on"},
                "targets": [{"variant": "on", "keys": [format!("user-{round}-{i}")]}]});
            t.call(Method::PUT, url, Some(json!({"config": config, "version": version})))
        })
    };
    let outcome = |results: &[(StatusCode, serde_json::Value)]| {
        let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        let conflicts = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CONFLICT)
            .count();
        (ok, conflicts)
    };

    let first_round = futures_util::future::join_all(edits(1, 1)).await;
    assert_eq!(outcome(&first_round), (1, 7), "{first_round:?}");

    let toggles = (0..8).map(|i| {
        t.call(
            Method::POST,
            "/api/v1/projects/p/flags/f/environments/staging/toggle",
            Some(json!({"enabled": i % 2 == 0})),
        )
    });
    let (second_round, toggles) = tokio::join!(
        futures_util::future::join_all(edits(2, 2)),
        futures_util::future::join_all(toggles)
    );
    let (ok, conflicts) = outcome(&second_round);
    assert!(ok <= 1 && ok + conflicts == 8, "{second_round:?}");
    assert!(
        toggles.iter().all(|(s, _)| *s == StatusCode::OK),
        "{toggles:?}"
    );

    let (_, flag) = t
        .call(Method::GET, "/api/v1/projects/p/flags/f", None)
        .await;
    let (_, versions) = t
        .call(
            Method::GET,
            "/api/v1/projects/p/flags/f/versions?limit=200",
            None,
        )
        .await;
    let mut numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    numbers.reverse();
    let latest = flag["version"].as_i64().unwrap();
    assert_eq!(numbers, (1..=latest).collect::<Vec<_>>());
    // Toggles that found the switch already in the requested state wrote nothing.
    let toggled = usize::try_from(latest).unwrap() - 2 - ok;
    assert!((1..=8).contains(&toggled), "{latest} {ok}");
}

#[test]
fn openapi_describes_every_domain_route() {
    let doc = serde_json::to_value(flagpole_server::http::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/projects", &["get", "post"][..]),
        ("/api/v1/projects/{project}", &["get", "patch", "delete"]),
        ("/api/v1/projects/{project}/environments", &["get", "post"]),
        (
            "/api/v1/projects/{project}/environments/{env}",
            &["get", "patch", "delete"],
        ),
        ("/api/v1/projects/{project}/flags", &["get", "post"]),
        ("/api/v1/projects/{project}/flags/{flag}", &["get", "patch"]),
        ("/api/v1/projects/{project}/flags/{flag}/archive", &["post"]),
        (
            "/api/v1/projects/{project}/flags/{flag}/unarchive",
            &["post"],
        ),
        (
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
            &["put"],
        ),
        (
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}/toggle",
            &["post"],
        ),
        ("/api/v1/projects/{project}/flags/{flag}/versions", &["get"]),
        (
            "/api/v1/projects/{project}/flags/{flag}/versions/{version}",
            &["get"],
        ),
        ("/api/v1/projects/{project}/flags/{flag}/diff", &["get"]),
        ("/api/v1/projects/{project}/flags/{flag}/revert", &["post"]),
        ("/api/v1/projects/{project}/segments", &["get", "post"]),
        (
            "/api/v1/projects/{project}/segments/{segment}",
            &["get", "put", "delete"],
        ),
        ("/api/v1/audit", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        for m in methods {
            let op = &item[*m];
            assert!(op.is_object(), "{m} {path} missing");
            assert!(
                op["responses"].as_object().unwrap().len() >= 2,
                "{m} {path}"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "FlagView",
        "PutConfig",
        "SegmentView",
        "AuditPage",
        "VersionDiff",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}
