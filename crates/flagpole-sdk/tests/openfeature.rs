//! The OpenFeature provider through the `open-feature` API.
#![cfg(feature = "openfeature")]

mod support;

use std::time::Duration;

use flagpole_sdk::Client;
use flagpole_sdk::openfeature::FlagpoleProvider;
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature, StructValue, Value,
};
use serde_json::json;
use support::*;

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
