//! Cross-flag validation, archiving, and the flag list's search, tags and pagination.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::json;

use crate::backends;
use crate::support::{TestApp, assert_error};

backends! {
    cross_flag_validation_and_archive => cross_flag_validation_and_archive_postgres, cross_flag_validation_and_archive_sqlite;
    search_tags_pagination => search_tags_pagination_postgres, search_tags_pagination_sqlite;
}

const FLAGS: &str = "/api/v1/projects/p/flags";

async fn cross_flag_validation_and_archive(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for key in ["base", "child"] {
        let (s, b) = t.call(Method::POST, FLAGS, Some(json!({"key": key}))).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let with_prereq = json!({"enabled": true, "off_variant": "off",
        "prerequisites": [{"flag": "base", "variants": ["on"]}], "default_serve": {"variant": "on"}});
    let (s, b) = t
        .call(
            Method::PUT,
            &format!("{FLAGS}/child/environments/production"),
            Some(json!({"config": with_prereq, "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Removing the variant `child` needs breaks `child`: the write is refused, naming it.
    let (s, b) = t
        .call(Method::PATCH, &format!("{FLAGS}/base"),
            Some(json!({"variants": [{"key": "yes", "value": true}, {"key": "off", "value": false}], "version": 1})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let fields: Vec<&str> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"flags.child.config.prerequisites[0].variants[0]"),
        "{b}"
    );

    // Archiving a prerequisite of a live flag is refused.
    let (s, b) = t
        .call(Method::POST, &format!("{FLAGS}/base/archive"), None)
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("child"),
        "{b}"
    );
    // Archive the dependent first, then the prerequisite.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/child/archive"),
            Some(json!({"comment": "done"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["archived"], true);
    let (s, b) = t
        .call(Method::POST, &format!("{FLAGS}/base/archive"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, list) = t.call(Method::GET, FLAGS, None).await;
    assert_eq!(list["total"], 0);
    let (_, list) = t
        .call(Method::GET, &format!("{FLAGS}?archived=true"), None)
        .await;
    assert_eq!(list["total"], 2);
    // Archived flags cannot be changed until unarchived; unarchiving `child` alone fails
    // validation because its prerequisite is archived.
    let (s, b) = t
        .call(
            Method::POST,
            &format!("{FLAGS}/child/environments/production/toggle"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, None);
    let (s, b) = t
        .call(Method::POST, &format!("{FLAGS}/child/unarchive"), None)
        .await;
    assert_error(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("environments.production.prerequisites[0].flag"),
    );
    for key in ["base", "child"] {
        let (s, b) = t
            .call(Method::POST, &format!("{FLAGS}/{key}/unarchive"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["archived"], false);
    }
}

async fn search_tags_pagination(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for i in 0..7 {
        let tags = if i % 2 == 0 {
            json!(["even", "all"])
        } else {
            json!(["all"])
        };
        let description = if i == 3 {
            "Uses the NEW Checkout 50% path"
        } else {
            "plain"
        };
        let (s, b) = t
            .call(
                Method::POST,
                FLAGS,
                Some(
                    json!({"key": format!("flag-{i}"), "name": format!("Flag {i}"),
                "description": description, "tags": tags}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    t.call(
        Method::POST,
        &format!("{FLAGS}/flag-2/environments/staging/toggle"),
        Some(json!({"enabled": true})),
    )
    .await;

    let (_, page) = t
        .call(Method::GET, &format!("{FLAGS}?limit=3&offset=2"), None)
        .await;
    assert_eq!(page["total"], 7);
    let keys: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["flag-2", "flag-3", "flag-4"]);
    assert_eq!(
        page["items"][0]["environments"],
        json!([{"environment": "development", "enabled": false}, {"environment": "staging", "enabled": true},
               {"environment": "production", "enabled": false}])
    );
    let (_, found) = t
        .call(Method::GET, &format!("{FLAGS}?q=new%20checkout"), None)
        .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["key"], "flag-3");
    // `%` is literal text, not a wildcard.
    let (_, found) = t.call(Method::GET, &format!("{FLAGS}?q=50%25"), None).await;
    assert_eq!(found["total"], 1);
    let (_, found) = t
        .call(Method::GET, &format!("{FLAGS}?q=FLAG-6"), None)
        .await;
    assert_eq!(found["total"], 1);
    let (_, found) = t
        .call(Method::GET, &format!("{FLAGS}?tag=even"), None)
        .await;
    assert_eq!(found["total"], 4);
    let (_, found) = t
        .call(Method::GET, &format!("{FLAGS}?tag=even&q=flag-1"), None)
        .await;
    assert_eq!(found["total"], 0);
    let (s, b) = t
        .call(Method::GET, &format!("{FLAGS}?limit=500"), None)
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some("limit"));
    let (s, b) = t
        .call(Method::GET, &format!("{FLAGS}?limit=abc"), None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, None);
}
