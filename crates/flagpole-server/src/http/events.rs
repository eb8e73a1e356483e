//! `GET /api/v1/projects/{project}/events`: the dashboard's live updates, a Server-Sent
//! Events stream fed by the [`ChangeFeed`](crate::state::ChangeFeed).
//!
//! SSE rather than a second WebSocket protocol: the dashboard only listens, the browser's
//! `EventSource` reconnects by itself and sends the session cookie, and the stream goes
//! through any proxy that passes HTTP. Events say *which environment moved to which
//! version*, not what changed: the page refetches what it shows, so there is one source
//! of truth (the REST API) and no patch format to keep in step with it.
//!
//! Events: `ready` once connected; `change` with `{"environment": key, "version": n}` after
//! each committed write to one of the project's environments; `resync` when this stream
//! fell behind the feed and cannot tell what it missed (the client refetches everything).
//! A comment line every 15 s keeps idle proxies from closing the connection. The stream
//! ends when the server shuts down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::{ApiPath, project};
use crate::auth::{Actor, Role};
use crate::db::Db;
use crate::error::{ApiResult, ErrorBody};
use crate::state::{AppState, EnvChanged};
use crate::store::environment;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Live change notifications for one project, as Server-Sent Events (reader). Meant for
/// the dashboard (`EventSource` with the session cookie); API tokens work too.
#[utoipa::path(get, path = "/api/v1/projects/{project}/events", tag = "projects",
    params(("project" = String, Path, description = "Project key")),
    responses(
        (status = 200, content_type = "text/event-stream",
         description = "`event: ready`, then `event: change` with data `{\"environment\": \"production\", \"version\": 42}` after every committed write to one of the project's environments, and `event: resync` if events were dropped (refetch everything).",
         body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(project_key): ApiPath<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    // Subscribe before reading the environments, so a change committed in between is seen.
    let changes = state.changes.subscribe();
    let mut follow = Follow {
        db: state.db.clone(),
        project_id: project.id,
        environments: HashMap::new(),
        changes,
        shutdown: state.shutdown.clone(),
        started: false,
    };
    follow.load_environments().await?;
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One subscriber's position in the change feed.
struct Follow {
    db: Db,
    project_id: i64,
    /// The project's environments, id → key; reloaded when an unknown id shows up (an
    /// environment created after the stream opened).
    environments: HashMap<i64, String>,
    changes: Receiver<EnvChanged>,
    shutdown: CancellationToken,
    started: bool,
}

impl Follow {
    async fn load_environments(&mut self) -> ApiResult<()> {
        let mut conn = self.db.pool.acquire().await?;
        self.environments = environment::list(&mut conn, self.project_id)
            .await?
            .into_iter()
            .map(|e| (e.id, e.key))
            .collect();
        Ok(())
    }

    /// The next event, or `None` when the stream should end (shutdown).
    async fn next(&mut self) -> Option<Event> {
        if !self.started {
            self.started = true;
            return Some(Event::default().event("ready").data("{}"));
        }
        loop {
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                received = self.changes.recv() => received,
            };
            match received {
                Ok(change) => {
                    if !self.environments.contains_key(&change.environment_id)
                        && let Err(error) = self.load_environments().await
                    {
                        tracing::warn!(%error, "events: reloading environments failed");
                        return Some(resync());
                    }
                    if let Some(key) = self.environments.get(&change.environment_id) {
                        let data = serde_json::json!({
                            "environment": key,
                            "version": change.data_version,
                        });
                        return Some(Event::default().event("change").data(data.to_string()));
                    }
                    // Another project's environment: not for this subscriber.
                }
                // Dropped events cannot be named; tell the client to refetch everything.
                Err(RecvError::Lagged(_)) => return Some(resync()),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}
