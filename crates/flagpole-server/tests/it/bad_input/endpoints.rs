//! The domain write endpoints with a valid body each, the JSON pointers of their strictly
//! typed fields (which the random mutations retype) and bodies that parse but must fail.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

/// A write endpoint with a valid body and the JSON pointers of its strictly typed fields.
pub(crate) struct Endpoint {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) valid: Value,
    pub(crate) typed: &'static [&'static str],
    /// An empty body is valid here (optional body).
    pub(crate) optional_body: bool,
    /// Bodies that parse but must fail validation: (body, expected status).
    pub(crate) semantic: Vec<(Value, StatusCode)>,
}

fn rule(serve: Value, clause: Value) -> Value {
    json!({"enabled": true, "off_variant": "off", "default_serve": {"variant": "on"},
           "rules": [{"clauses": [clause], "serve": serve}]})
}

pub(crate) fn endpoints() -> Vec<Endpoint> {
    let in_no = json!({"attribute": "country", "op": "in", "values": ["no"]});
    let bad_regex = json!({"attribute": "email", "op": "matches", "values": ["(a"]});
    let e = |method, path, valid, typed, optional_body, semantic| Endpoint {
        method,
        path,
        valid,
        typed,
        optional_body,
        semantic,
    };
    vec![
        e(
            Method::POST,
            "/api/v1/projects",
            json!({"key": "np", "name": "N"}),
            &["/key", "/name", "/description"],
            false,
            vec![(json!({"key": "bad key!"}), StatusCode::UNPROCESSABLE_ENTITY)],
        ),
        e(
            Method::PATCH,
            "/api/v1/projects/p",
            json!({"name": "x", "version": 1}),
            &["/name", "/description", "/version"],
            false,
            vec![
                (json!({"name": "x"}), StatusCode::UNPROCESSABLE_ENTITY),
                (
                    json!({"name": "", "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
            ],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/environments",
            json!({"key": "qa"}),
            &["/key", "/name", "/sort_order"],
            false,
            vec![(json!({"key": "production"}), StatusCode::CONFLICT)],
        ),
        e(
            Method::PATCH,
            "/api/v1/projects/p/environments/staging",
            json!({"name": "S", "version": 1}),
            &["/name", "/sort_order", "/version"],
            false,
            vec![],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/flags",
            json!({"key": "nf", "kind": "string", "variants": [{"key": "a", "value": "x"}], "tags": ["t"]}),
            &[
                "/key",
                "/kind",
                "/variants",
                "/variants/0/key",
                "/tags",
                "/tags/0",
                "/salt",
                "/environments",
                "/comment",
            ],
            false,
            vec![
                (
                    json!({"key": "nf", "kind": "number", "variants": [{"key": "a", "value": "x"}]}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"key": "nf", "environments": {"production": rule(json!({"variant": "maybe"}), in_no.clone())}}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"key": "nf", "environments": {"production": rule(json!({"variant": "on"}), bad_regex.clone())}}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"key": "nf", "kind": "string"}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (json!({"key": "f"}), StatusCode::CONFLICT),
            ],
        ),
        e(
            Method::PATCH,
            "/api/v1/projects/p/flags/f",
            json!({"name": "F", "version": 1}),
            &["/name", "/tags", "/variants", "/version", "/salt"],
            false,
            vec![
                (
                    json!({"variants": [{"key": "on", "value": 1}], "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"variants": [], "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (json!({"name": "F", "version": 7}), StatusCode::CONFLICT),
            ],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/flags/f/archive",
            json!({"version": 1}),
            &["/version", "/comment"],
            true,
            vec![],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/flags/f/unarchive",
            json!({"version": 1}),
            &["/version", "/comment"],
            true,
            vec![],
        ),
        e(
            Method::PUT,
            "/api/v1/projects/p/flags/f/environments/production",
            json!({"config": rule(json!({"variant": "on"}), in_no.clone()), "version": 1}),
            &[
                "/config",
                "/config/enabled",
                "/config/off_variant",
                "/config/rules",
                "/config/rules/0/clauses",
                "/config/rules/0/clauses/0/attribute",
                "/config/default_serve",
                "/version",
            ],
            false,
            vec![
                (
                    json!({"config": rule(json!({"variant": "maybe"}), in_no.clone()), "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"config": rule(json!({"variant": "on"}), bad_regex.clone()), "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"config": rule(json!({"rollout": {"weights": [{"variant": "on", "weight": 1}]}}), in_no.clone()), "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"config": rule(json!({"variant": "on"}), json!({"attribute": "v", "op": "semver_gt", "values": ["x.y"]})), "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"config": rule(json!({"variant": "on"}), json!({"attribute": "v", "op": "frobnicate", "values": [1]})), "version": 1}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"config": rule(json!({"variant": "on"}), in_no.clone())}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
            ],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/flags/f/environments/production/toggle",
            json!({"enabled": true}),
            &["/enabled", "/version", "/comment"],
            false,
            vec![(json!({"version": 1}), StatusCode::UNPROCESSABLE_ENTITY)],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/segments",
            json!({"key": "ns", "included": ["a"]}),
            &["/key", "/included", "/included/0", "/rules"],
            false,
            vec![
                (
                    json!({"key": "ns", "rules": [{"clauses": [bad_regex.clone()]}]}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                (
                    json!({"key": "ns", "rules": [{"clauses": [{"op": "in_segment", "values": ["ghost"]}]}]}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
            ],
        ),
        e(
            Method::PUT,
            "/api/v1/projects/p/segments/s",
            json!({"included": ["a"], "version": 1}),
            &["/included", "/version", "/name", "/rules"],
            false,
            vec![(
                json!({"rules": [{"clauses": [{"op": "in_segment", "values": ["s"]}]}], "version": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )],
        ),
        e(
            Method::DELETE,
            "/api/v1/projects/p/segments/s",
            json!({"version": 1}),
            &["/version", "/comment"],
            true,
            vec![(json!({"version": 5}), StatusCode::CONFLICT)],
        ),
        e(
            Method::POST,
            "/api/v1/projects/p/flags/f/revert",
            json!({"to_version": 1, "version": 1}),
            &["/to_version", "/version", "/comment"],
            false,
            vec![
                (json!({"to_version": 1}), StatusCode::UNPROCESSABLE_ENTITY),
                (
                    json!({"to_version": 99, "version": 1}),
                    StatusCode::NOT_FOUND,
                ),
            ],
        ),
    ]
}
