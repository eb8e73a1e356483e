//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Longest a readiness check waits on the database: probes typically time out after 1 s.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Probe result.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok` or `unavailable`.
    pub(crate) status: &'static str,
    /// What was checked and how it went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) checks: Vec<Check>,
}

/// One readiness check.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Check {
    /// `database`, `migrations`...
    pub(crate) name: &'static str,
    /// Whether it passed.
    pub(crate) ok: bool,
}

/// Liveness: the process is up and serving HTTP. Never checks dependencies, so a database
/// outage does not get every replica restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: Vec::new(),
    })
}

// Also fails (503, check `draining`) from the moment SIGTERM arrives, and while the
// database is unreachable. Each database check is bounded by CHECK_TIMEOUT, so a probe
// never hangs on a dead database. (The doc comment below is the OpenAPI description.)
/// Readiness: the database is reachable and migrated and the evaluation caches are warm;
/// the load balancer should send traffic.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let draining = state.is_draining();
    let mut checks = vec![Check {
        name: "draining",
        ok: !draining,
    }];
    if !draining {
        let migrations = tokio::time::timeout(CHECK_TIMEOUT, state.db.migrations_applied()).await;
        let (database, migrated) = match migrations {
            Ok(Ok(migrated)) => (true, migrated),
            Ok(Err(_)) | Err(_) => (false, false),
        };
        let caches = database
            && tokio::time::timeout(CHECK_TIMEOUT, state.snapshots.ready())
                .await
                .unwrap_or(false);
        checks.extend([
            Check {
                name: "database",
                ok: database,
            },
            Check {
                name: "migrations",
                ok: migrated,
            },
            Check {
                // Every environment's snapshot loaded at least once, so OFREP answers from memory.
                name: "caches",
                ok: caches,
            },
        ]);
    }
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ready { "ok" } else { "unavailable" },
            checks,
        }),
    )
}
