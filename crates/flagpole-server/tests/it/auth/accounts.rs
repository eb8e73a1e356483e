//! Accounts a team can keep: the last admin of all projects cannot be deleted, demoted,
//! limited to a project or disabled (also not by two concurrent changes), users change
//! their own password with the current one, and admins reset another's.

use axum::http::{Method, StatusCode};
use flagpole_server::db::Backend;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::auth::*;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN, Cred, count};

/// The bootstrapped admin's id and version.
async fn bootstrap_admin(h: &Harness) -> (i64, i64) {
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    let admin = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == ADMIN_EMAIL)
        .expect("bootstrapped admin")
        .clone();
    (
        admin["id"].as_i64().unwrap(),
        admin["version"].as_i64().unwrap(),
    )
}

async fn full_admins(h: &Harness) -> i64 {
    count(
        h.db(),
        "select count(*) from app_user where role = 'admin' and project_id is null \
         and disabled_at is null",
    )
    .await
}

async fn last_admin_is_kept(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    let (id, version) = bootstrap_admin(&h).await;
    let url = format!("/api/v1/users/{id}");
    // An admin API token is not a user: without this rule it could remove every admin.
    let refused: [(Method, Option<Value>); 4] = [
        (Method::DELETE, None),
        (
            Method::PATCH,
            Some(json!({"version": version, "role": "writer"})),
        ),
        (
            Method::PATCH,
            Some(json!({"version": version, "project": "alpha"})),
        ),
        (
            Method::PATCH,
            Some(json!({"version": version, "disabled": true})),
        ),
    ];
    for (method, body) in refused.clone() {
        let r = h
            .call(
                method.clone(),
                &url,
                Cred::Bearer(ADMIN_TOKEN),
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "{method} {body:?}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["code"], "conflict");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("no admin of all projects"), "{message}");
        assert_eq!(r.body["current"]["id"], id);
    }
    assert_eq!(full_admins(&h).await, 1);
    let (_, after) = bootstrap_admin(&h).await;
    assert_eq!(after, version, "nothing was written");
    // Changes that keep it an admin of all projects are fine.
    let r = h
        .call(
            Method::PATCH,
            &url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": version, "name": "Root"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A second admin of all projects makes the first removable; an admin limited to a
    // project does not count, nor does a disabled one.
    let scoped = h
        .create_user("scoped@example.com", "admin", Some("alpha"))
        .await;
    let other = h.create_user("other@example.com", "admin", None).await;
    let r = h
        .call(Method::DELETE, &url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{other}"),
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 1, "role": "reader"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Promoting the scoped admin to all projects makes `other` removable in turn.
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{scoped}"),
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 1, "project": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{other}"),
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": 1, "disabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(full_admins(&h).await, 1);
}

/// Every admin of all projects demoted at once, each by its own request: exactly one
/// request is refused and one admin is left. Without the lock each transaction would count
/// the others as admins (read committed) and all would commit.
async fn concurrent_demotions_leave_one_admin(backend: Backend) {
    let h = harness(backend).await;
    let mut ids = vec![bootstrap_admin(&h).await];
    for i in 0..5 {
        let id = h
            .create_user(&format!("admin{i}@example.com"), "admin", None)
            .await;
        ids.push((id, 1));
    }
    let urls: Vec<String> = ids
        .iter()
        .map(|(id, _)| format!("/api/v1/users/{id}"))
        .collect();
    let demotions = ids.iter().zip(&urls).map(|(&(_, version), url)| {
        h.call(
            Method::PATCH,
            url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"version": version, "role": "reader"})),
        )
    });
    let answers = join_all(demotions).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status).collect();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    let done = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((done, refused), (ids.len() - 1, 1), "{statuses:?}");
    assert_eq!(full_admins(&h).await, 1);

    // The same with deletions of the demoted users' replacements: two admins, both deleted
    // at once.
    let a = h.create_user("a@example.com", "admin", None).await;
    let remaining: i64 = sqlx::query_scalar(
        "select id from app_user where role = 'admin' and project_id is null and id <> $1",
    )
    .bind(a)
    .fetch_one(&h.db().pool)
    .await
    .unwrap();
    let urls = [a, remaining].map(|id| format!("/api/v1/users/{id}"));
    let deletions = urls
        .iter()
        .map(|url| h.call(Method::DELETE, url, Cred::Bearer(ADMIN_TOKEN), None));
    let answers = join_all(deletions).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 409]);
    assert_eq!(full_admins(&h).await, 1);
}

async fn own_password_change(backend: Backend) {
    let h = harness(backend).await;
    let id = h.create_user("erin@example.com", "writer", None).await;
    let (this, csrf) = h.login("erin@example.com", "long-enough-pw").await;
    let (other, _) = h.login("erin@example.com", "long-enough-pw").await;
    let url = "/api/v1/auth/password";
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    for (body, field) in [
        (
            change("wrong-password", "a-new-long-password"),
            "current_password",
        ),
        (change("long-enough-pw", "short"), "new_password"),
    ] {
        let r = h
            .call(
                Method::POST,
                url,
                Cred::Cookie(&this, Some(&csrf)),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{}", r.body);
    }
    let body = change("long-enough-pw", "a-new-long-password");
    // A cookie write needs the CSRF token; an API token has no password to change.
    let r = h
        .call(
            Method::POST,
            url,
            Cred::Cookie(&this, None),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h
        .call(
            Method::POST,
            url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h
        .call(Method::POST, url, Cred::None, Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

    let r = h
        .call(
            Method::POST,
            url,
            Cred::Cookie(&this, Some(&csrf)),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], id);
    assert!(!r.body.to_string().contains("argon2"));
    // This session stays, the user's other sessions end.
    for (cookie, expected) in [(&this, StatusCode::OK), (&other, StatusCode::UNAUTHORIZED)] {
        let r = h
            .call(
                Method::GET,
                "/api/v1/auth/me",
                Cred::Cookie(cookie, None),
                None,
            )
            .await;
        assert_eq!(r.status, expected, "{}", r.body);
    }
    let old = h
        .login_from("erin@example.com", "long-enough-pw", "192.0.2.9")
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    h.login("erin@example.com", "a-new-long-password").await;
    let audited: Vec<String> = sqlx::query_scalar(
        "select after from audit_event where action = 'user.password_change' and resource_key = $1",
    )
    .bind(id.to_string())
    .fetch_all(&h.db().pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 1);
    assert!(
        audited[0].contains("\"password_changed\":true"),
        "{}",
        audited[0]
    );
    assert!(!audited[0].contains("argon2"), "no hash in the audit trail");

    // Wrong current passwords count against the sign-in limit of the email (5 here).
    for _ in 0..5 {
        let r = h
            .call(
                Method::POST,
                url,
                Cred::Cookie(&this, Some(&csrf)),
                Some(change("guess-guess-guess", "whatever-long-pw")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    }
    let r = h
        .call(
            Method::POST,
            url,
            Cred::Cookie(&this, Some(&csrf)),
            Some(change("a-new-long-password", "whatever-long-pw")),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
}

/// An admin resets another user's password (the user forgot it): the user's sessions end
/// and only the new password signs in.
async fn admin_resets_a_password(backend: Backend) {
    let h = harness(backend).await;
    let id = h.create_user("fred@example.com", "reader", None).await;
    let (fred, _) = h.login("fred@example.com", "long-enough-pw").await;
    let (admin, admin_csrf) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Cred::Cookie(&admin, Some(&admin_csrf)),
            Some(json!({"version": 1, "password": "reset-by-admin-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call(
            Method::GET,
            "/api/v1/auth/me",
            Cred::Cookie(&fred, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let old = h
        .login_from("fred@example.com", "long-enough-pw", "192.0.2.7")
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    h.login("fred@example.com", "reset-by-admin-1").await;
    // The admin's own session is untouched.
    let r = h
        .call(
            Method::GET,
            "/api/v1/auth/me",
            Cred::Cookie(&admin, None),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

on_both_backends!(
    last_admin_is_kept,
    concurrent_demotions_leave_one_admin,
    own_password_change,
    admin_resets_a_password
);
