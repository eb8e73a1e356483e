//! What a credential may do: the roles and the scopes of API tokens, below both `auth`
//! (which checks them) and `store` (which stores them), so neither has to name the other.

use serde::{Deserialize, Serialize};

/// What an actor may do. Ordered: each role can do everything the previous one can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything in scope.
    Reader,
    /// Also change flags, segments and environments' flag configuration.
    Writer,
    /// Also manage projects, environments, users, tokens and SDK keys.
    Admin,
}

impl Role {
    /// The wire/database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// Parses the database name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What an API token is limited to, beyond its role and project: one action, and nothing
/// else of the API. A token without a scope uses the API as its role allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TokenScope)]
pub enum Scope {
    /// Only the project's Alertmanager webhook
    /// (`POST /api/v1/projects/{project}/alerts/alertmanager`), which acts on firing alerts
    /// as the project's alert mappings say. Issued with the `fp_alert_` prefix.
    #[serde(rename = "alerts:trigger")]
    AlertsTrigger,
}

impl Scope {
    /// The wire/database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AlertsTrigger => "alerts:trigger",
        }
    }

    /// Parses the database name.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "alerts:trigger" => Some(Scope::AlertsTrigger),
            _ => None,
        }
    }

    /// The prefix of tokens with this scope. Not `fp_api_`: servers from before scopes
    /// accept only that prefix, so they refuse a scoped token outright rather than
    /// ignoring its scope (a rolling deploy runs both).
    pub fn token_prefix(self) -> &'static str {
        match self {
            Scope::AlertsTrigger => "fp_alert_",
        }
    }
}
