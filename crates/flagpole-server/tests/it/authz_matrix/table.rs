//! The table: every operation of the OpenAPI document with who may call it.

use flagpole_server::auth::Role;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    /// Anyone, with or without credentials.
    Public,
    /// Only a dashboard session (cookie); no kind of token.
    Session,
    /// A signed-in user acting on their own account: a session is allowed, a token is
    /// known but refused (403), no credentials are 401.
    OwnAccount,
    /// Unscoped management credentials with at least this role.
    Global(Role),
    /// Any management credentials with at least this role; results are limited to the
    /// caller's project when it is scoped.
    Filtered(Role),
    /// At least this role in the project named by the URL.
    Project(Role),
    /// The SDK key of an environment (OFREP).
    Sdk,
    /// Only an `alerts:trigger` token for the project in the URL (the Alertmanager
    /// webhook).
    AlertsTrigger,
}

pub(crate) use Access::*;
use Role::{Admin, Reader, Writer};

/// One operation: method, path template as in the OpenAPI document, who may call it,
/// query string and body.
pub(crate) struct Op {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    pub(crate) query: &'static str,
    pub(crate) body: Option<Value>,
    /// False for WebSocket upgrades: through the router there is no connection to upgrade,
    /// so an allowed call ends in 400; only who is refused can be checked.
    pub(crate) completes: bool,
}

fn op(method: &'static str, path: &'static str, access: Access) -> Op {
    Op {
        method,
        path,
        access,
        query: "",
        body: None,
        completes: true,
    }
}

impl Op {
    fn body(mut self, body: Value) -> Op {
        self.body = Some(body);
        self
    }
    fn query(mut self, query: &'static str) -> Op {
        self.query = query;
        self
    }
    fn websocket(mut self) -> Op {
        self.completes = false;
        self
    }
}

/// Every operation. Order matters only at the end: deleting the environment and the
/// project, then logging out, would break the rows after them.
pub(crate) fn table() -> Vec<Op> {
    vec![
        op("get", "/healthz", Public),
        op("get", "/readyz", Public),
        op("get", "/metrics", Public),
        op("post", "/api/v1/auth/login", Public)
            .body(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        op("get", "/api/v1/auth/me", Session),
        // A wrong current password: the session gets its 422, nothing changes.
        op("post", "/api/v1/auth/password", OwnAccount).body(
            json!({"current_password": "not-the-password", "new_password": "another long password"}),
        ),
        // Users and tokens: global, unscoped admins only.
        op("get", "/api/v1/users", Global(Admin)),
        op("post", "/api/v1/users", Global(Admin)).body(
            json!({"email": "new@example.com", "password": "long-enough-pw", "role": "reader"}),
        ),
        op("get", "/api/v1/users/{id}", Global(Admin)),
        op("patch", "/api/v1/users/{id}", Global(Admin)).body(json!({"name": "Victim"})),
        op("get", "/api/v1/tokens", Global(Admin)),
        op("post", "/api/v1/tokens", Global(Admin)).body(json!({"name": "m", "role": "reader"})),
        // Projects.
        op("get", "/api/v1/projects", Filtered(Reader)),
        op("post", "/api/v1/projects", Global(Admin)).body(json!({"key": "created"})),
        op("get", "/api/v1/projects/{project}", Project(Reader)),
        op("patch", "/api/v1/projects/{project}", Project(Admin)).body(json!({"name": "Main"})),
        // Expected flag lifetimes: a project setting.
        op(
            "get",
            "/api/v1/projects/{project}/lifecycle",
            Project(Reader),
        ),
        op(
            "put",
            "/api/v1/projects/{project}/lifecycle",
            Project(Admin),
        )
        .body(json!({"lifetimes": {"operational": 14}})),
        // Environments.
        op(
            "get",
            "/api/v1/projects/{project}/environments",
            Project(Reader),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/environments",
            Project(Admin),
        )
        .body(json!({"key": "qa"})),
        op(
            "get",
            "/api/v1/projects/{project}/environments/{env}",
            Project(Reader),
        ),
        op(
            "patch",
            "/api/v1/projects/{project}/environments/{env}",
            Project(Admin),
        )
        .body(json!({"name": "Prod"})),
        // SDK keys.
        op(
            "get",
            "/api/v1/projects/{project}/environments/{env}/sdk-keys",
            Project(Admin),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/environments/{env}/sdk-keys",
            Project(Admin),
        )
        .body(json!({"name": "m"})),
        // Flags.
        op("get", "/api/v1/projects/{project}/flags", Project(Reader)),
        op("post", "/api/v1/projects/{project}/flags", Project(Writer))
            .body(json!({"key": "created"})),
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}",
            Project(Reader),
        ),
        op(
            "patch",
            "/api/v1/projects/{project}/flags/{flag}",
            Project(Writer),
        )
        .body(json!({"name": "F1"})),
        op(
            "post",
            "/api/v1/projects/{project}/flags/{flag}/archive",
            Project(Writer),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/flags/{flag}/unarchive",
            Project(Writer),
        ),
        // f1 is a boolean flag: `on` and `off`. Without a version a writer's call is refused
        // for its content (422), which is past authorisation.
        op(
            "post",
            "/api/v1/projects/{project}/flags/{flag}/variants/{variant}/rename",
            Project(Writer),
        )
        .body(json!({"to": "enabled"})),
        op(
            "put",
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
            Project(Writer),
        )
        .body(json!({"config": {"enabled": true, "off_variant": "off",
                "default_serve": {"variant": "on"}}})),
        op(
            "post",
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}/toggle",
            Project(Writer),
        )
        .body(json!({"enabled": false})),
        // The dashboard's evaluation debugger and live events.
        op(
            "post",
            "/api/v1/projects/{project}/environments/{env}/evaluate",
            Project(Reader),
        )
        .body(json!({"key": "u1", "attributes": {"plan": "pro"}})),
        op("get", "/api/v1/projects/{project}/events", Project(Reader)),
        // History.
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/versions",
            Project(Reader),
        ),
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/versions/{version}",
            Project(Reader),
        ),
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/diff",
            Project(Reader),
        )
        .query("?from=1&to=2"),
        op(
            "post",
            "/api/v1/projects/{project}/flags/{flag}/revert",
            Project(Writer),
        )
        .body(json!({"to_version": 1})),
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/revert/preview",
            Project(Reader),
        )
        .query("?to_version=1"),
        // What SDKs reported about a flag.
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/insights",
            Project(Reader),
        )
        .query("?environment=production"),
        // What guard and shadow reported about a flag.
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/outcomes",
            Project(Reader),
        )
        .query("?environment=production"),
        // Segments.
        op(
            "get",
            "/api/v1/projects/{project}/segments",
            Project(Reader),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/segments",
            Project(Writer),
        )
        .body(json!({"key": "created"})),
        op(
            "get",
            "/api/v1/projects/{project}/segments/{segment}",
            Project(Reader),
        ),
        op(
            "put",
            "/api/v1/projects/{project}/segments/{segment}",
            Project(Writer),
        )
        .body(json!({"name": "S1"})),
        op(
            "delete",
            "/api/v1/projects/{project}/segments/{segment}",
            Project(Writer),
        ),
        // Alert mappings, and the Alertmanager webhook (a notification no mapping matches).
        op(
            "get",
            "/api/v1/projects/{project}/alert-mappings",
            Project(Reader),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/alert-mappings",
            Project(Writer),
        )
        .body(json!({"alert": "B", "action": {"kind": "flag_off", "flag": "f1",
            "environment": "production"}})),
        op(
            "get",
            "/api/v1/projects/{project}/alert-mappings/{mapping}",
            Project(Reader),
        ),
        op(
            "put",
            "/api/v1/projects/{project}/alert-mappings/{mapping}",
            Project(Writer),
        )
        .body(json!({"alert": "C", "version": 1, "action": {"kind": "flag_off",
            "flag": "f1", "environment": "production"}})),
        // Experiments: reads for readers, writes for writers (f1 is off, so a start is a
        // 422 and a stop of the draft a 409: authorised, refused for its content).
        op("get", "/api/v1/projects/{project}/experiments", Project(Reader)),
        op("post", "/api/v1/projects/{project}/experiments", Project(Writer))
            .body(experiment_body()),
        op(
            "get",
            "/api/v1/projects/{project}/experiments/{experiment}",
            Project(Reader),
        ),
        op(
            "put",
            "/api/v1/projects/{project}/experiments/{experiment}",
            Project(Writer),
        )
        .body({
            let mut b = experiment_body();
            b.as_object_mut().unwrap().remove("environment");
            b.as_object_mut().unwrap().remove("flag");
            b["version"] = json!(1);
            b
        }),
        op(
            "post",
            "/api/v1/projects/{project}/experiments/{experiment}/start",
            Project(Writer),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/experiments/{experiment}/stop",
            Project(Writer),
        )
        .body(json!({"ship": null})),
        op(
            "get",
            "/api/v1/projects/{project}/experiments/{experiment}/results",
            Project(Reader),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/alerts/alertmanager",
            AlertsTrigger,
        )
        .body(json!({"version": "4", "status": "firing", "receiver": "matrix", "alerts": [
            {"status": "firing", "labels": {"alertname": "Unmapped"},
             "startsAt": "2026-12-07T21:14:03Z", "fingerprint": "0123456789abcdef"}]})),
        // Scheduled changes: writers schedule, cancel and rebase, as for flag edits.
        op(
            "post",
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}/scheduled-changes",
            Project(Writer),
        )
        .body(json!({"at": "2099-01-01T00:00:00Z", "enabled": true})),
        op(
            "get",
            "/api/v1/projects/{project}/flags/{flag}/scheduled-changes",
            Project(Reader),
        ),
        op(
            "get",
            "/api/v1/projects/{project}/scheduled-changes",
            Project(Reader),
        )
        .query("?state=scheduled"),
        op(
            "get",
            "/api/v1/projects/{project}/scheduled-changes/{change}",
            Project(Reader),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/scheduled-changes/{change}/rebase",
            Project(Writer),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/scheduled-changes/{change}/cancel",
            Project(Writer),
        ),
        // Audit: without filters, scoped callers see their project's entries.
        op("get", "/api/v1/audit", Filtered(Reader)),
        // OFREP: SDK keys only.
        op("post", "/ofrep/v1/evaluate/flags/{key}", Sdk)
            .body(json!({"context": {"targetingKey": "u1"}})),
        op("post", "/ofrep/v1/evaluate/flags", Sdk)
            .body(json!({"context": {"targetingKey": "u1"}})),
        // The SDK stream (WebSocket): SDK keys only.
        op("get", "/sdk/v1/stream", Sdk).websocket(),
        // Telemetry from SDKs: SDK keys only (a redelivered id is accepted again).
        op("post", "/sdk/v1/events", Sdk)
            .body(json!({"id": "01890a5d-ac96-774b-bcce-b302099a8057", "sdk": "matrix/1"})),
        // Deletions and revocations of seeded victims (not of the credentials under test).
        op(
            "delete",
            "/api/v1/projects/{project}/alert-mappings/{mapping}",
            Project(Writer),
        ),
        op("delete", "/api/v1/users/{id}", Global(Admin)),
        op("delete", "/api/v1/tokens/{id}", Global(Admin)),
        op(
            "delete",
            "/api/v1/projects/{project}/environments/{env}/sdk-keys/{id}",
            Project(Admin),
        ),
        // Destructive: last.
        op(
            "delete",
            "/api/v1/projects/{project}/environments/{env}",
            Project(Admin),
        ),
        op("delete", "/api/v1/projects/{project}", Project(Admin)),
        op("post", "/api/v1/auth/logout", Public),
    ]
}

/// A valid experiment on `f1` in production.
pub(crate) fn experiment_body() -> Value {
    json!({"environment": "production", "flag": "f1", "name": "E",
        "arms": [{"variant": "off", "weight": 50}, {"variant": "on", "weight": 50}],
        "metrics": {"primary": {"key": "m", "kind": "binomial", "event": "buy"}}})
}
