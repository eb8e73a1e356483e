//! API tokens and SDK keys: revocation, scope, last use, the SDK-key cache, hashing.

use axum::http::{Method, StatusCode};
use flagpole_server::auth::SdkClient;
use flagpole_server::db::Backend;
use serde_json::json;

use crate::on_both_backends;
use crate::support::auth::*;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN, Cred, count};

async fn tokens_revocation_scope_and_last_used(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    h.seed_project("beta").await;
    let (id, token) = h.create_token("admin", None).await;
    assert!(token.starts_with("fp_api_"));
    let r = h
        .call(Method::GET, "/api/v1/tokens", Cred::Bearer(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.body.to_string().contains(&token),
        "lists never show tokens"
    );
    let listed = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(listed["prefix"], &token[..11]);
    assert!(
        listed["last_used_at"].is_i64(),
        "first use recorded: {listed}"
    );

    // last_used_at is written at most once a minute.
    sqlx::query("update api_token set last_used_at = 1 where id = $1")
        .bind(id)
        .execute(&h.db().pool)
        .await
        .unwrap();
    h.call(Method::GET, "/api/v1/tokens", Cred::Bearer(&token), None)
        .await;
    let last: Option<i64> = sqlx::query_scalar("select last_used_at from api_token where id = $1")
        .bind(id)
        .fetch_one(&h.db().pool)
        .await
        .unwrap();
    assert_eq!(last, Some(1));

    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(Method::GET, "/api/v1/tokens", Cred::Bearer(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let audit = count(h.db(), "select count(*) from audit_event where resource_type = 'api_token' and action in ('api_token.create', 'api_token.revoke')").await;
    assert!(audit >= 3, "bootstrap + create + revoke audited");

    // Scoped to alpha: beta's resources and global ones are forbidden.
    let (_, alpha_admin) = h.create_token("admin", Some("alpha")).await;
    let r = h
        .call(
            Method::GET,
            "/api/v1/projects/beta/environments/production/sdk-keys",
            Cred::Bearer(&alpha_admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::GET,
            "/api/v1/projects/alpha/environments/production/sdk-keys",
            Cred::Bearer(&alpha_admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(
            Method::GET,
            "/api/v1/users",
            Cred::Bearer(&alpha_admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "x", "role": "owner"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "role");
    let r = h
        .call(
            Method::POST,
            "/api/v1/tokens",
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "x", "role": "reader", "project": "nope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "project");
    let r = h
        .call(
            Method::GET,
            "/api/v1/tokens",
            Cred::Bearer("fp_api_doesnotexist0000000000000000000000000"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn sdk_keys_only_for_sdk_endpoints(backend: Backend) {
    let h = harness(backend).await;
    let (pid, eid) = h.seed_project("alpha").await;
    let url = "/api/v1/projects/alpha/environments/production/sdk-keys";
    let r = h
        .call(
            Method::POST,
            url,
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_i64().unwrap();
    assert!(key.starts_with("fp_sdk_"));
    assert_eq!(r.body["environment"], "production");
    let listed = h
        .call(Method::GET, url, Cred::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(listed.body["items"][0]["id"], id);
    assert!(!listed.body.to_string().contains(&key));

    // Rejected by the management API, with a message saying why.
    for cred in [Cred::Bearer(&key), Cred::ApiKey(&key)] {
        let r = h.call(Method::GET, "/api/v1/users", cred, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SDK keys"),
            "{}",
            r.body
        );
        let r = h.call(Method::GET, url, cred, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Accepted by the SdkClient extractor, either header.
    let expected = SdkClient {
        key_id: id,
        environment_id: eid,
        project_id: pid,
    };
    assert_eq!(h.sdk_client(Cred::Bearer(&key)).await, Ok(expected));
    assert_eq!(h.sdk_client(Cred::ApiKey(&key)).await, Ok(expected));
    assert_eq!(
        h.sdk_client(Cred::Bearer(ADMIN_TOKEN)).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        h.sdk_client(Cred::None).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        h.sdk_client(Cred::Bearer(
            "fp_sdk_unknown00000000000000000000000000000000"
        ))
        .await,
        Err(StatusCode::UNAUTHORIZED)
    );

    // Cached: a change behind the API's back is not seen until the entry expires...
    sqlx::query("update sdk_key set revoked_at = 1 where id = $1")
        .bind(id)
        .execute(&h.db().pool)
        .await
        .unwrap();
    assert_eq!(h.sdk_client(Cred::Bearer(&key)).await, Ok(expected));
    sqlx::query("update sdk_key set revoked_at = null where id = $1")
        .bind(id)
        .execute(&h.db().pool)
        .await
        .unwrap();
    // ...but revoking through the API invalidates this replica's cache at once.
    let r = h
        .call(
            Method::DELETE,
            &format!("{url}/{id}"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.sdk_client(Cred::Bearer(&key)).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("{url}/{id}"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "revoking twice is a no-op"
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("{url}/999999"),
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            "/api/v1/projects/alpha/environments/nope/sdk-keys",
            Cred::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audit = count(
        h.db(),
        "select count(*) from audit_event where resource_type = 'sdk_key'",
    )
    .await;
    assert_eq!(audit, 2);
}

async fn secrets_are_stored_hashed(backend: Backend) {
    let h = harness(backend).await;
    h.seed_project("alpha").await;
    let (_, token) = h.create_token("writer", None).await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/projects/alpha/environments/production/sdk-keys",
            Cred::Bearer(ADMIN_TOKEN),
            Some(json!({"name": "k"})),
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    let (cookie, _) = h.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let dump: Vec<String> = sqlx::query_scalar(
        "select token_hash || prefix from api_token union all select key_hash || prefix from sdk_key \
         union all select token_hash from session union all select password_hash from app_user",
    )
    .fetch_all(&h.db().pool)
    .await
    .unwrap();
    let all = dump.join("\n");
    for secret in [
        token.as_str(),
        key.as_str(),
        cookie.as_str(),
        ADMIN_PASSWORD,
        ADMIN_TOKEN,
    ] {
        assert!(!all.contains(secret), "{secret} stored in plaintext");
    }
    let hash: String = sqlx::query_scalar("select password_hash from app_user")
        .fetch_one(&h.db().pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

on_both_backends!(
    tokens_revocation_scope_and_last_used,
    sdk_keys_only_for_sdk_endpoints,
    secrets_are_stored_hashed,
);
