//! What a credential may do: the roles, below both `auth` (which checks them) and `store`
//! (which stores them), so neither has to name the other.

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
