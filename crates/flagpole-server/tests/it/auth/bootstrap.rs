//! First start: exactly one admin, generated secrets usable, supplied ones used as given.

use axum::http::{Method, StatusCode};
use flagpole_server::App;
use flagpole_server::bootstrap::{Bootstrapped, bootstrap};
use flagpole_server::db::Backend;
use flagpole_server::testing::fresh_db;

use crate::on_both_backends;
use crate::support::auth::*;
use crate::support::{ADMIN_EMAIL, ADMIN_TOKEN, Cred, config, count};

async fn bootstrap_creates_one_admin(backend: Backend) {
    let db = fresh_db(backend).await.unwrap();
    let mut config = config();
    config.admin_password = None;
    config.admin_token = None;
    // Two "replicas" at once, then a restart.
    let (a, b) = tokio::join!(bootstrap(&db, &config), bootstrap(&db, &config));
    let results = [a.unwrap(), b.unwrap()];
    let created: Vec<_> = results
        .iter()
        .filter(|r| matches!(r, Bootstrapped::Created { .. }))
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert_eq!(
        bootstrap(&db, &config).await.unwrap(),
        Bootstrapped::AlreadyDone
    );
    let app = App::with_db(db.clone(), config.clone()).await.unwrap();
    assert_eq!(count(&db, "select count(*) from app_user").await, 1);
    assert_eq!(count(&db, "select count(*) from api_token").await, 1);

    let Bootstrapped::Created {
        email,
        generated_password: Some(password),
        generated_token: Some(token),
    } = created[0].clone()
    else {
        panic!("secrets were generated: {created:?}");
    };
    assert_eq!(email, ADMIN_EMAIL);
    assert!(token.starts_with("fp_api_"));
    let h = Harness {
        router: app.router(),
        app,
    };
    h.login(&email, &password).await;
    let r = h
        .call(Method::GET, "/api/v1/users", Cred::Bearer(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["role"], "admin");

    // Supplied secrets are used as given.
    let h = harness(backend).await;
    let r = h
        .call(
            Method::GET,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["name"], "bootstrap-admin");
    assert_eq!(r.body["items"][0]["created_by"], "system:bootstrap");
}

on_both_backends!(bootstrap_creates_one_admin);
