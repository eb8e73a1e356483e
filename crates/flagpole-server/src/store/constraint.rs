//! Which schema constraint a database error broke, named the same way on both backends.
//!
//! Postgres reports a violated constraint by name. SQLite has no names for them: it says
//! `UNIQUE constraint failed: environment.project_id, environment.key`, so its columns are
//! mapped to the name the Postgres migration gives the same constraint (both migration
//! folders keep the same constraints, see `migrations/*/0001_initial.sql`). A violation
//! reaches callers as [`Unique`] inside `StoreError::UniqueViolation`; the HTTP edge words
//! it for the user, so the name itself never leaves the server.

use sqlx::error::DatabaseError;

/// `project.key` is unique.
const PROJECT_KEY: &str = "project_key_key";
/// An environment's key is unique within its project.
const ENVIRONMENT_KEY: &str = "environment_project_key";
/// A flag's key is unique within its project.
const FLAG_KEY: &str = "flag_project_key";
/// A segment's key is unique within its project.
const SEGMENT_KEY: &str = "segment_project_key";
/// A user's email is unique.
const USER_EMAIL: &str = "app_user_email_key";

/// A unique constraint a request can break, or another one by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unique {
    /// A project's key.
    ProjectKey,
    /// An environment's key within its project.
    EnvironmentKey,
    /// A flag's key within its project.
    FlagKey,
    /// A segment's key within its project.
    SegmentKey,
    /// A user's email.
    UserEmail,
    /// One no request can cause (random credentials colliding): its name, empty when the
    /// backend did not say.
    Other(String),
}

impl Unique {
    /// The constraint with this (Postgres) name.
    pub(crate) fn named(name: &str) -> Unique {
        match name {
            PROJECT_KEY => Unique::ProjectKey,
            ENVIRONMENT_KEY => Unique::EnvironmentKey,
            FLAG_KEY => Unique::FlagKey,
            SEGMENT_KEY => Unique::SegmentKey,
            USER_EMAIL => Unique::UserEmail,
            other => Unique::Other(other.to_owned()),
        }
    }
}

/// SQLite's column lists of unique constraints (as its messages print them) and the
/// Postgres names of the same constraints.
const SQLITE_UNIQUE_COLUMNS: &[(&str, &str)] = &[
    ("project.key", PROJECT_KEY),
    ("environment.project_id, environment.key", ENVIRONMENT_KEY),
    ("flag.project_id, flag.key", FLAG_KEY),
    ("segment.project_id, segment.key", SEGMENT_KEY),
    ("app_user.email", USER_EMAIL),
    ("api_token.token_hash", "api_token_token_hash_key"),
    ("sdk_key.key_hash", "sdk_key_key_hash_key"),
    ("session.token_hash", "session_pkey"),
];

/// The name of the unique constraint `error` violated, if it is a unique violation.
/// `Some("")` for a unique violation whose constraint is not known by name.
pub(crate) fn unique_violated(error: &dyn DatabaseError) -> Option<&str> {
    if !error.is_unique_violation() {
        return None;
    }
    if let Some(name) = error.constraint() {
        return Some(name);
    }
    let columns = error
        .message()
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or_default();
    let name = SQLITE_UNIQUE_COLUMNS
        .iter()
        .find(|(cols, _)| *cols == columns)
        .map_or("", |(_, name)| *name);
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::Unique;
    use crate::db::Backend;
    use crate::role::Role;
    use crate::store::environment::{self, NewEnvironment};
    use crate::store::{Conn, StoreError, StoreResult, project, user};
    use crate::testing::fresh_db;

    /// The constraint a unique violation names.
    fn violated<T: std::fmt::Debug>(result: StoreResult<T>) -> Unique {
        match result {
            Err(StoreError::UniqueViolation { constraint, .. }) => constraint,
            other => panic!("expected a unique violation, got {other:?}"),
        }
    }

    async fn raw_insert(conn: &mut Conn, sql: &str, project_id: i64) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(project_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Breaks each unique constraint a request can reach and checks that both backends
    /// name it the same way.
    async fn unique_violations_are_named(backend: Backend) {
        let db = fresh_db(backend).await.expect("database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let p = project::insert(&mut conn, "shop", "Shop", "", 1)
            .await
            .expect("project");
        assert_eq!(
            violated(project::insert(&mut conn, "shop", "Again", "", 1).await),
            Unique::ProjectKey
        );
        let env = NewEnvironment {
            key: "live",
            name: "Live",
            description: "",
            sort_order: 0,
            critical: false,
        };
        environment::insert(&mut conn, p.id, &env, 1)
            .await
            .expect("environment");
        assert_eq!(
            violated(environment::insert(&mut conn, p.id, &env, 1).await),
            Unique::EnvironmentKey
        );
        let flag = "insert into flag (project_id, key, definition, name, description, version, \
                    created_at, updated_at) values ($1, 'f', '{}', 'F', '', 1, 1, 1)";
        raw_insert(&mut conn, flag, p.id).await.expect("flag");
        assert_eq!(
            violated(raw_insert(&mut conn, flag, p.id).await),
            Unique::FlagKey
        );
        let segment = "insert into segment (project_id, key, definition, version, created_at, \
                       updated_at) values ($1, 's', '{}', 1, 1, 1)";
        raw_insert(&mut conn, segment, p.id).await.expect("segment");
        assert_eq!(
            violated(raw_insert(&mut conn, segment, p.id).await),
            Unique::SegmentKey
        );
        let new_user = user::NewUser {
            email: "a@example.com",
            name: "A",
            password_hash: "x",
            role: Role::Reader,
            project_id: None,
        };
        user::insert(&mut conn, &new_user, 1).await.expect("user");
        assert_eq!(
            violated(user::insert(&mut conn, &new_user, 1).await),
            Unique::UserEmail
        );
    }

    #[tokio::test]
    async fn unique_violations_on_postgres() {
        unique_violations_are_named(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn unique_violations_on_sqlite() {
        unique_violations_are_named(Backend::Sqlite).await;
    }
}
