//! User management: validation, optimistic concurrency, sessions ended, audit.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::auth::*;
use crate::support::{ADMIN_TOKEN, Cred, count};

async fn users_crud(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    let post = |body: Value| {
        h.call(
            Method::POST,
            "/api/v1/users",
            Cred::Bearer(ADMIN_TOKEN),
            Some(body),
        )
    };
    for (body, field) in [
        (
            json!({"email": "no-at-sign", "password": "long-enough-pw", "role": "reader"}),
            "email",
        ),
        (
            json!({"email": "e@example.com", "password": "short", "role": "reader"}),
            "password",
        ),
        (
            json!({"email": "e@example.com", "password": "long-enough-pw", "role": "root"}),
            "role",
        ),
        (
            json!({"email": "e@example.com", "password": "long-enough-pw", "role": "reader", "project": "nope"}),
            "project",
        ),
    ] {
        let r = post(body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["error"]["field"], field);
    }
    let r = post(json!({"email": "Erin@Example.com", "name": "Erin", "password": "long-enough-pw", "role": "writer", "project": "alpha"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "erin@example.com");
    assert_eq!(r.body["project"], "alpha");
    assert_eq!(r.body["version"], 1);
    let id = r.body["id"].as_i64().unwrap();
    let dup =
        post(json!({"email": "erin@example.com", "password": "long-enough-pw", "role": "reader"}))
            .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let url = format!("/api/v1/users/{id}");
    let r = h
        .call(Method::GET, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.body["name"], "Erin");
    let (erin, _) = h.login("erin@example.com", "long-enough-pw").await;
    // Erin (writer, scoped) cannot manage users.
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let stale = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 7, "name": "E"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.body["current"]["version"], 1);
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 1, "role": "admin", "project": null, "password": "another-long-pw"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["project"], Value::Null);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["name"], "Erin", "absent fields are kept");
    // A password reset ends the user's sessions; the new password works.
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (erin, erin_csrf) = h.login("erin@example.com", "another-long-pw").await;
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.body.to_string().contains("argon2"),
        "hashes never leave the server"
    );
    // Nobody deletes or disables their own account.
    let r = h
        .call(
            Method::DELETE,
            &url,
            Cred::Cookie(&erin, Some(&erin_csrf)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Cookie(&erin, Some(&erin_csrf)),
            Some(json!({"version": 2, "disabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 2, "password_hash": "x"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are rejected"
    );

    let r = h
        .call(Method::DELETE, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(Method::GET, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Cookie(&erin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(count(h.db(), "select count(*) from session").await, 0);
    let actions: Vec<String> = sqlx::query_scalar(
        "select action from audit_event where resource_type = 'user' and resource_key = $1 order by id",
    )
    .bind(id.to_string())
    .fetch_all(&h.db().pool)
    .await
    .unwrap();
    assert_eq!(actions, ["user.create", "user.update", "user.delete"]);
}

on_both_backends!(users_crud);
