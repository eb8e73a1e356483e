//! The OpenFeature provider through the `open-feature` API.
#![cfg(feature = "openfeature")]

mod support;

use std::time::{Duration, Instant};

use flagpole_core::wire::ServerMessage;
use flagpole_sdk::openfeature::{
    FlagpoleProvider, TrackingEventDetails, evaluation_attributes, otel,
};
use flagpole_sdk::{Client, ConnectionState, KEY_REJECTED, TrackError};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature, StructValue, Value,
};
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn flag(
    key: &str,
    kind: &str,
    variants: serde_json::Value,
    config: serde_json::Value,
) -> serde_json::Value {
    let mut cfg = json!({"enabled": true, "off_variant": "a", "default_serve": {"variant": "a"}});
    cfg.as_object_mut()
        .unwrap()
        .extend(config.as_object().unwrap().clone());
    json!({"flag": {"key": key, "kind": kind, "variants": variants}, "config": cfg})
}

fn environment() -> flagpole_core::model::EnvironmentSnapshot {
    let onoff = json!([{"key": "a", "value": false}, {"key": "b", "value": true}]);
    let split = json!({"rollout": {"weights": [{"variant": "a", "weight": 50000}, {"variant": "b", "weight": 50000}]}});
    env(
        1,
        vec![
            flag(
                "nordic",
                "boolean",
                onoff.clone(),
                json!({"rules": [{"id": "nordics", "clauses": [
            {"attribute": "country", "op": "in", "values": ["no", "se"]}], "serve": {"variant": "b"}}]}),
            ),
            flag(
                "killed",
                "boolean",
                onoff.clone(),
                json!({"enabled": false}),
            ),
            flag(
                "split",
                "boolean",
                onoff.clone(),
                json!({"default_serve": split}),
            ),
            flag(
                "gated",
                "boolean",
                onoff,
                json!({"prerequisites": [{"flag": "killed", "variants": ["b"]}]}),
            ),
            flag(
                "title",
                "string",
                json!([{"key": "a", "value": "Hello"}]),
                json!({}),
            ),
            flag(
                "limit",
                "number",
                json!([{"key": "a", "value": 42}]),
                json!({}),
            ),
            flag(
                "ratio",
                "number",
                json!([{"key": "a", "value": 1.5}]),
                json!({}),
            ),
            flag(
                "theme",
                "json",
                json!([{"key": "a", "value": {"color": "red", "size": 3}}]),
                json!({}),
            ),
        ],
    )
}

#[tokio::test]
async fn resolves_through_the_openfeature_api() {
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(
        "flagpole-test",
        FlagpoleProvider::new(Client::offline(environment())),
    )
    .await;
    let of = api.create_named_client("flagpole-test");
    drop(api);
    let user = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("country", "no");
    let anonymous = EvaluationContext::default();

    let d = of
        .get_bool_details("nordic", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason),
        (true, Some("b"), Some(EvaluationReason::TargetingMatch))
    );
    let d = of
        .get_bool_details(
            "nordic",
            Some(&user.clone().with_custom_field("country", "fr")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (false, Some(EvaluationReason::Default))
    );
    let d = of
        .get_bool_details("killed", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(d.reason, Some(EvaluationReason::Disabled));
    let d = of
        .get_bool_details("split", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(d.reason, Some(EvaluationReason::Split));
    let d = of
        .get_bool_details("gated", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(d.reason, Some(EvaluationReason::Default));

    assert_eq!(
        of.get_string_value("title", Some(&user), None)
            .await
            .unwrap(),
        "Hello"
    );
    assert_eq!(
        of.get_int_value("limit", Some(&user), None).await.unwrap(),
        42
    );
    assert_eq!(
        of.get_float_value("ratio", Some(&user), None)
            .await
            .unwrap(),
        1.5
    );
    let theme: StructValue = of
        .get_struct_value("theme", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(
        theme.fields.get("color"),
        Some(&Value::String("red".into()))
    );
    assert_eq!(theme.fields.get("size"), Some(&Value::Int(3)));

    let code = |r: Result<_, open_feature::EvaluationError>| r.map(|_: bool| ()).unwrap_err().code;
    assert_eq!(
        code(of.get_bool_value("missing", Some(&user), None).await),
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        code(of.get_bool_value("title", Some(&user), None).await),
        EvaluationErrorCode::TypeMismatch
    );
    assert_eq!(
        code(of.get_bool_value("split", Some(&anonymous), None).await),
        EvaluationErrorCode::TargetingKeyMissing
    );
    let err = of
        .get_int_value("ratio", Some(&user), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::TypeMismatch);
}

#[tokio::test]
async fn a_client_without_flags_is_not_ready() {
    let client = Client::builder(dead_url().await, KEY).build().unwrap();
    let provider = FlagpoleProvider::new(client).with_init_timeout(Duration::from_millis(50));
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider("flagpole-not-ready", provider).await;
    let of = api.create_named_client("flagpole-not-ready");
    drop(api);
    let err = of.get_bool_value("nordic", None, None).await.unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::ProviderNotReady);
}

/// A key the server refuses (unknown or revoked) is the provider's `ERROR`, not
/// `NOT_READY`: waiting cannot fix it. `initialize` returns at once, and evaluations fail
/// with `PROVIDER_NOT_READY` and the reason, since the status carries no message.
#[tokio::test]
async fn a_rejected_key_is_a_provider_error_with_the_reason() {
    let server = TestServer::start().await;
    let client = Client::builder(server.url(), "fp_sdk_revoked")
        .build()
        .unwrap();
    let provider = FlagpoleProvider::new(client.clone());
    status_until(&client, |s| s.connection == ConnectionState::Rejected).await;
    assert_eq!(provider.status(), ProviderStatus::Error);
    let err = provider
        .resolve_bool_value("nordic", &EvaluationContext::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::ProviderNotReady);
    assert_eq!(err.message.as_deref(), Some(KEY_REJECTED));

    let mut api = OpenFeature::singleton_mut().await;
    let started = Instant::now();
    api.set_named_provider(
        "flagpole-rejected",
        FlagpoleProvider::new(client.clone()).with_init_timeout(WAIT),
    )
    .await;
    assert!(started.elapsed() < WAIT, "initialize did not wait it out");
    let of = api.create_named_client("flagpole-rejected");
    drop(api);
    let err = of.get_string_value("title", None, None).await.unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::ProviderNotReady);
    assert_eq!(
        err.message.as_deref(),
        Some("SDK key rejected: invalid or revoked")
    );
    client.close().await;
}

/// A key revoked while connected (close 1008) is an `ERROR` too, and the flags received
/// before are still served rather than the caller's defaults.
#[tokio::test]
async fn a_key_revoked_while_connected_is_an_error_that_keeps_serving_flags() {
    let mut server = TestServer::start().await;
    let client = Client::builder(server.url(), KEY)
        .rejected_key_retry(Duration::from_secs(600))
        .build()
        .unwrap();
    let provider = FlagpoleProvider::new(client.clone());
    let mut conn = server.accept().await;
    conn.hello().await;
    conn.send(&ServerMessage::Snapshot {
        environment: environment(),
    })
    .await;
    status_until(&client, |s| s.is_ready()).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);

    conn.send_raw(Message::Close(Some(CloseFrame {
        code: CloseCode::Policy,
        reason: "sdk key revoked".into(),
    })))
    .await;
    status_until(&client, |s| s.connection == ConnectionState::Rejected).await;
    assert_eq!(provider.status(), ProviderStatus::Error);
    let user = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("country", "no");
    let d = provider.resolve_bool_value("nordic", &user).await.unwrap();
    assert_eq!(
        (d.value, d.reason),
        (true, Some(EvaluationReason::TargetingMatch))
    );
    client.close().await;
}

#[tokio::test]
async fn the_provider_tracks_events_with_the_details_as_properties() {
    let mut server = TestServer::start().await;
    let client = Client::builder(server.url(), KEY)
        .telemetry_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let provider = FlagpoleProvider::new(client.clone());
    let user = EvaluationContext::default()
        .with_targeting_key("user-7")
        .with_custom_field("country", "no");
    provider
        .track(
            "checkout_completed",
            &user,
            TrackingEventDetails::with_value(99.5)
                .with_field("currency", "NOK")
                .with_field("items", 3),
        )
        .unwrap();
    let error = provider
        .track("x", &user, TrackingEventDetails::with_value(f64::NAN))
        .unwrap_err();
    assert!(matches!(error, TrackError::NonFiniteValue(_)), "{error}");
    client.close().await;

    let posted = server.events.next().await;
    let [event] = &posted.batch.events[..] else {
        panic!("one event: {:?}", posted.batch.events)
    };
    assert_eq!(
        (event.name.as_str(), event.context_key.as_str(), event.value),
        ("checkout_completed", "user-7", Some(99.5))
    );
    assert_eq!(
        serde_json::Value::Object(event.properties.clone()),
        json!({"currency": "NOK", "items": 3})
    );
}

#[tokio::test]
async fn evaluation_details_become_opentelemetry_attributes() {
    let client = Client::offline(environment());
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider("otel", FlagpoleProvider::new(client.clone()))
        .await;
    let of = api.create_named_client("otel");
    drop(api);

    let user = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("country", "no");
    let details = of
        .get_bool_details("nordic", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(
        evaluation_attributes(&details, &user),
        [
            (otel::KEY, "nordic".to_owned()),
            (otel::PROVIDER_NAME, "flagpole".to_owned()),
            (otel::RESULT_VARIANT, "b".to_owned()),
            (otel::RESULT_REASON, "targeting_match".to_owned()),
            (otel::CONTEXT_ID, "user-1".to_owned()),
        ]
    );
    let anonymous = EvaluationContext::default();
    let details = of
        .get_bool_details("killed", Some(&anonymous), None)
        .await
        .unwrap();
    let names: Vec<_> = evaluation_attributes(&details, &anonymous)
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    assert_eq!(
        names,
        [
            "feature_flag.key=killed",
            "feature_flag.provider.name=flagpole",
            "feature_flag.result.variant=a",
            "feature_flag.result.reason=disabled"
        ],
        "no context id without a targeting key"
    );
    client.close().await;
}
