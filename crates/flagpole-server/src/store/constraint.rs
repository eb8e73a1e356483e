//! Which schema constraint a database error broke, named the same way on both backends.
//!
//! Postgres reports a violated constraint by name. SQLite has no names for them: it says
//! `UNIQUE constraint failed: environment.project_id, environment.key`, so its columns are
//! mapped to the name the Postgres migration gives the same constraint (both migration
//! folders keep the same constraints, see `migrations/*/0001_initial.sql`). The HTTP edge
//! turns a name into words for the user (`crate::error`); the name itself never leaves the
//! server.

use sqlx::error::DatabaseError;

/// `project.key` is unique.
pub(crate) const PROJECT_KEY: &str = "project_key_key";
/// An environment's key is unique within its project.
pub(crate) const ENVIRONMENT_KEY: &str = "environment_project_key";
/// A flag's key is unique within its project.
pub(crate) const FLAG_KEY: &str = "flag_project_key";
/// A segment's key is unique within its project.
pub(crate) const SEGMENT_KEY: &str = "segment_project_key";
/// A user's email is unique.
pub(crate) const USER_EMAIL: &str = "app_user_email_key";

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
    use crate::auth::Role;
    use crate::db::Backend;
    use crate::error::ApiError;
    use crate::store::environment::{self, NewEnvironment};
    use crate::store::{Conn, project, user};
    use crate::testing::fresh_db;

    /// The 409 message of a unique violation, checked not to name the constraint.
    fn conflict<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
        match result {
            Err(ApiError::Conflict { message, current }) => {
                assert!(current.is_none());
                assert!(!message.contains("_key"), "names the constraint: {message}");
                message
            }
            other => panic!("expected a 409, got {other:?}"),
        }
    }

    async fn raw_insert(conn: &mut Conn, sql: &str, project_id: i64) -> Result<(), ApiError> {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(project_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Breaks each unique constraint a request can reach and checks the words for it.
    async fn unique_violations_speak_the_users_terms(backend: Backend) {
        let db = fresh_db(backend).await.expect("database");
        let mut conn = db.pool.acquire().await.expect("connection");
        let p = project::insert(&mut conn, "shop", "Shop", "", 1)
            .await
            .expect("project");
        assert_eq!(
            conflict(project::insert(&mut conn, "shop", "Again", "", 1).await),
            "a project with this key already exists"
        );
        let env = NewEnvironment {
            key: "live",
            name: "Live",
            description: "",
            sort_order: 0,
        };
        environment::insert(&mut conn, p.id, &env, 1)
            .await
            .expect("environment");
        assert_eq!(
            conflict(environment::insert(&mut conn, p.id, &env, 1).await),
            "an environment with this key already exists in the project"
        );
        let flag = "insert into flag (project_id, key, definition, name, description, version, \
                    created_at, updated_at) values ($1, 'f', '{}', 'F', '', 1, 1, 1)";
        raw_insert(&mut conn, flag, p.id).await.expect("flag");
        assert_eq!(
            conflict(raw_insert(&mut conn, flag, p.id).await),
            "a flag with this key already exists in the project"
        );
        let segment = "insert into segment (project_id, key, definition, version, created_at, \
                       updated_at) values ($1, 's', '{}', 1, 1, 1)";
        raw_insert(&mut conn, segment, p.id).await.expect("segment");
        assert_eq!(
            conflict(raw_insert(&mut conn, segment, p.id).await),
            "a segment with this key already exists in the project"
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
            conflict(user::insert(&mut conn, &new_user, 1).await),
            "a user with this email already exists"
        );
    }

    #[tokio::test]
    async fn unique_violations_on_postgres() {
        unique_violations_speak_the_users_terms(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn unique_violations_on_sqlite() {
        unique_violations_speak_the_users_terms(Backend::Sqlite).await;
    }
}
