//! The audit log's filters as query parameters: environment, action (one, or all of a
//! resource's), dates; bad values are a 422 naming the parameter.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::backends;
use crate::support::{TestApp, assert_error, exec};

backends! {
    filters_by_environment_action_and_date => filters_by_environment_action_and_date_postgres, filters_by_environment_action_and_date_sqlite;
    refuses_bad_filters => refuses_bad_filters_postgres, refuses_bad_filters_sqlite;
}

async fn actions(t: &TestApp, query: &str) -> Vec<(String, String)> {
    let (s, b) = t
        .call(
            Method::GET,
            &format!("/api/v1/audit?project=p&{query}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e: &Value| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["environment"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn filters_by_environment_action_and_date(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    let flags = "/api/v1/projects/p/flags";
    let (s, b) = t.call(Method::POST, flags, Some(json!({"key": "f"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for (env, on) in [
        ("staging", true),
        ("production", true),
        ("production", false),
    ] {
        let (s, b) = t
            .call(
                Method::POST,
                &format!("{flags}/f/environments/{env}/toggle"),
                Some(json!({"enabled": on})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = t
        .call(
            Method::POST,
            "/api/v1/projects/p/segments",
            Some(json!({"key": "beta"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let toggle = |env: &str| ("flag.toggle".to_owned(), env.to_owned());
    assert_eq!(
        actions(&t, "environment=production").await,
        [toggle("production"), toggle("production")]
    );
    assert_eq!(
        actions(&t, "action=flag.toggle").await,
        [
            toggle("production"),
            toggle("production"),
            toggle("staging")
        ]
    );
    // A resource keeps all of its actions and no other resource's.
    let flag_actions: Vec<String> = actions(&t, "action=flag")
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        flag_actions,
        ["flag.toggle", "flag.toggle", "flag.toggle", "flag.create"]
    );
    assert_eq!(
        actions(&t, "action=segment").await,
        [("segment.create".to_owned(), String::new())]
    );
    // `_` is not a wildcard: `flag_config` is not `flagXconfig`, and `flag` is not `flag_config`.
    assert!(actions(&t, "action=flag_config").await.is_empty());

    // Dates: move the first toggle a day back, then ask for before and after a cut.
    let now = flagpole_server::db::now_ms();
    let day = 86_400_000;
    exec(
        t.db(),
        "update audit_event set at = at - 86400000 where action = 'flag.toggle' \
         and id = (select min(id) from audit_event where action = 'flag.toggle') returning id",
        &[],
    )
    .await;
    let cut = now - day / 2;
    assert_eq!(
        actions(&t, &format!("action=flag.toggle&to={cut}")).await,
        [toggle("staging")]
    );
    assert_eq!(
        actions(
            &t,
            &format!("action=flag.toggle&from={cut}&to={}", now + day)
        )
        .await,
        [toggle("production"), toggle("production")]
    );
}

async fn refuses_bad_filters(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.project("p").await;
    for (query, field) in [
        ("action=flag.", "action"),
        ("action=Flag.toggle", "action"),
        ("action=flag.toggle.x", "action"),
        ("action=flag%25", "action"),
        ("from=-1", "from"),
        ("to=-5", "to"),
        ("from=2000&to=1000", "to"),
        ("from=1000&to=1000", "to"),
    ] {
        let (s, b) = t
            .call(
                Method::GET,
                &format!("/api/v1/audit?project=p&{query}"),
                None,
            )
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // Not a number at all: the query string does not parse, a 400 naming the parameter.
    let (s, b) = t
        .call(Method::GET, "/api/v1/audit?project=p&from=yesterday", None)
        .await;
    assert!(s.is_client_error(), "{s} {b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("from"),
        "{b}"
    );
    // An environment the project does not have.
    let (s, b) = t
        .call(
            Method::GET,
            "/api/v1/audit?project=p&environment=nope",
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, None);
}
