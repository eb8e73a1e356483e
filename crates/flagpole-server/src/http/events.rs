//! `GET /api/v1/projects/{project}/events`: the dashboard's live updates, a Server-Sent
//! Events stream fed by this replica's [`ChangeFeed`](crate::changes::ChangeFeed) (its own
//! writes, at once) and by the push hubs of the project's environments (every replica's
//! writes: hubs follow Postgres LISTEN/NOTIFY and the periodic check). A version is
//! announced once, whichever source brings it first.
//!
//! SSE rather than a second WebSocket protocol: the dashboard only listens, the browser's
//! `EventSource` reconnects by itself and sends the session cookie, and the stream goes
//! through any proxy that passes HTTP. Events say *which environment moved to which
//! version*, not what changed: the page refetches what it shows, so there is one source
//! of truth (the REST API) and no patch format to keep in step with it.
//!
//! Events: `ready` once connected; `change` with `{"environment": key, "version": n}` after
//! each committed write to one of the project's environments; `resync` when this stream
//! fell behind the feed and cannot tell what it missed (the client refetches everything);
//! `expired` just before the stream ends because the session that opened it ended (below).
//! A comment line every 15 s keeps idle proxies from closing the connection. The stream
//! ends when the server shuts down.
//!
//! A stream opened with a session cookie lives no longer than the session: it ends at the
//! session's expiry, and within [`SESSION_RECHECK`] of the session ending otherwise (sign
//! out, password change, account disabled or deleted). Without that, a tab left open
//! would keep receiving a project's changes long after its credentials stopped being
//! valid for anything else.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain_common::project;
use super::extract::ApiPath;
use super::session_cookie;
use crate::auth::{Actor, ActorKind, Role, session};
use crate::db::{Db, now_ms};
use crate::error::{ApiResult, ErrorBody};
use crate::push::Lease;
use crate::push::hub::{EnvHub, PatchFrame};
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
         description = "`event: ready`, then `event: change` with data `{\"environment\": \"production\", \"version\": 42}` after every committed write to one of the project's environments, `event: resync` if events were dropped (refetch everything), and `event: expired` just before the stream ends because the session that opened it expired or ended (sign in again).",
         body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(project_key): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let project = project(&state, &actor, &project_key, Role::Reader).await?;
    let session = match (&actor.kind, session_cookie::cookie_value(&headers)) {
        // The actor came from this cookie (a bearer token would have won).
        (ActorKind::User { .. }, Some(cookie)) => session::find(&state.db, cookie)
            .await?
            .map(|found| SessionWatch::new(cookie.to_owned(), found.expires_at)),
        _ => None,
    };
    // Subscribe before reading the environments, so a change committed in between is seen.
    let changes = state.changes.subscribe();
    let (remote_tx, remote) = mpsc::channel(64);
    let mut follow = Follow {
        state: state.clone(),
        project_id: project.id,
        environments: HashMap::new(),
        announced: HashMap::new(),
        changes,
        remote,
        remote_tx,
        shutdown: state.shutdown.clone(),
        started: false,
        session,
        ended: false,
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
    state: AppState,
    project_id: i64,
    /// The project's environments, id → key; reloaded when an unknown id shows up (an
    /// environment created after the stream opened), which also subscribes to its hub.
    environments: HashMap<i64, String>,
    /// The last version announced per environment: both sources bring most versions.
    announced: HashMap<i64, i64>,
    /// This replica's writes.
    changes: Receiver<EnvChanged>,
    /// Versions from the environments' push hubs (forwarded by [`forward`] tasks, which
    /// end when this receiver is dropped).
    remote: mpsc::Receiver<EnvChanged>,
    remote_tx: mpsc::Sender<EnvChanged>,
    shutdown: CancellationToken,
    started: bool,
    /// The session the stream was opened with; `None` for an API token.
    session: Option<SessionWatch>,
    /// The `expired` event was sent: the stream ends.
    ended: bool,
}

/// How often a stream opened with a session checks that the session still exists (one
/// query per stream per interval). Its expiry needs no query: a timer ends the stream then.
const SESSION_RECHECK: Duration = Duration::from_secs(30);

/// When a stream's session ends.
struct SessionWatch {
    cookie: String,
    expires: tokio::time::Instant,
    recheck: tokio::time::Interval,
}

impl SessionWatch {
    fn new(cookie: String, expires_at_ms: i64) -> SessionWatch {
        let left = u64::try_from(expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
        let mut recheck = tokio::time::interval(SESSION_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.reset(); // The first check is one interval from now, not at once.
        SessionWatch {
            cookie,
            expires: tokio::time::Instant::now() + Duration::from_millis(left),
            recheck,
        }
    }

    /// Completes when the session has expired or ended; never for `None`.
    async fn over(watch: Option<&mut SessionWatch>, db: &Db) {
        let Some(watch) = watch else {
            return std::future::pending().await;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(watch.expires) => return,
                _ = watch.recheck.tick() => {
                    match session::find(db, &watch.cookie).await {
                        Ok(Some(s)) if s.expires_at > now_ms() && s.disabled_at.is_none() => {}
                        Ok(_) => return,
                        // A database hiccup is not the session ending; check again later.
                        Err(error) => tracing::warn!(%error, "events: session check failed"),
                    }
                }
            }
        }
    }
}

impl Follow {
    async fn load_environments(&mut self) -> ApiResult<()> {
        let db: &Db = &self.state.db;
        let mut conn = db.pool.acquire().await?;
        let environments: HashMap<i64, String> = environment::list(&mut conn, self.project_id)
            .await?
            .into_iter()
            .map(|e| (e.id, e.key))
            .collect();
        drop(conn);
        for &id in environments.keys() {
            if self.environments.contains_key(&id) {
                continue;
            }
            // Without a hub this stream still sees this replica's writes; it only misses
            // other replicas' until the environment list is reloaded.
            match self.state.push.lease(id).await {
                Ok(lease) => {
                    let task = forward(lease, self.remote_tx.clone(), self.shutdown.clone());
                    self.state.tasks.spawn(task);
                }
                Err(error) => {
                    tracing::warn!(environment_id = id, %error, "events: no push hub; local changes only");
                }
            }
        }
        self.environments = environments;
        Ok(())
    }

    /// The next event, or `None` when the stream should end (shutdown).
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        if !self.started {
            self.started = true;
            return Some(Event::default().event("ready").data("{}"));
        }
        loop {
            let change = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                () = SessionWatch::over(self.session.as_mut(), &self.state.db) => {
                    // Said before ending, so the dashboard asks to sign in again rather
                    // than reconnecting into a 401.
                    self.ended = true;
                    return Some(Event::default().event("expired").data("{}"));
                }
                received = self.changes.recv() => match received {
                    Ok(change) => change,
                    // Dropped events cannot be named; the client refetches everything.
                    Err(RecvError::Lagged(_)) => return Some(resync()),
                    Err(RecvError::Closed) => return None,
                },
                Some(change) = self.remote.recv() => change,
            };
            if !self.environments.contains_key(&change.environment_id)
                && let Err(error) = self.load_environments().await
            {
                tracing::warn!(%error, "events: reloading environments failed");
                return Some(resync());
            }
            let Some(key) = self.environments.get(&change.environment_id) else {
                // Another project's environment: not for this subscriber.
                continue;
            };
            let announced = self.announced.entry(change.environment_id).or_default();
            if change.data_version <= *announced {
                continue;
            }
            *announced = change.data_version;
            let data = serde_json::json!({
                "environment": key,
                "version": change.data_version,
            });
            return Some(Event::default().event("change").data(data.to_string()));
        }
    }
}

/// Forwards the versions `lease`'s hub publishes (this and other replicas' writes) until
/// the stream's receiver is dropped, the hub closes or the server shuts down. Holding the
/// lease keeps the hub alive meanwhile.
async fn forward(lease: Lease, tx: mpsc::Sender<EnvChanged>, shutdown: CancellationToken) {
    let hub: Arc<EnvHub> = lease.hub().clone();
    let mut patches = hub.subscribe();
    loop {
        let received: Result<Arc<PatchFrame>, RecvError> = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tx.closed() => return,
            () = hub.closed.cancelled() => return,
            received = patches.recv() => received,
        };
        let version = match received {
            Ok(frame) => frame.to,
            // Missed patches: the hub's current version says enough.
            Err(RecvError::Lagged(_)) => match hub.version() {
                Some(version) => version,
                None => continue,
            },
            Err(RecvError::Closed) => return,
        };
        let change = EnvChanged {
            environment_id: hub.environment_id,
            data_version: i64::try_from(version).unwrap_or(i64::MAX),
        };
        if tx.send(change).await.is_err() {
            return;
        }
    }
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}
