//! The scheduler: one loop per replica that applies scheduled changes when they are due
//! (`domain::scheduled_changes::apply_due`, one claimed change per transaction).
//!
//! It sleeps until the earliest waiting change is due, and wakes earlier when a change is
//! scheduled or rebased: on this replica through `AppState::scheduler`, on the others
//! through Postgres `NOTIFY flagpole_scheduled`, which a second task listens for. A poll
//! every [`POLL`] is the safety net for a lost notification or a listener that is
//! reconnecting. After downtime the first pass applies every overdue change once, in due
//! order (nothing is replayed per missed tick: a change is a row, not a tick).
//!
//! With several replicas every loop wakes for the same change; `skip locked` hands it to
//! one, and the others find the next one or nothing. A change another replica holds is
//! looked at again after [`HELD_RETRY`]: if that replica died mid-transaction, Postgres
//! released the row and this one applies it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::{Backend, Db, now_ms};
use crate::domain::scheduled_changes::apply_due;
use crate::state::AppState;
use crate::store::scheduled_change;

/// The longest the loop sleeps without looking at the table.
pub const POLL: Duration = Duration::from_secs(10);
/// How soon a due change held by another replica's transaction is looked at again.
const HELD_RETRY: Duration = Duration::from_millis(200);
/// Pause after a database error.
const ERROR_RETRY: Duration = Duration::from_secs(1);

/// Spawns the loop, and on Postgres the listener, on the state's task tracker; both stop
/// when the state's shutdown token is cancelled.
pub(crate) fn start(state: &AppState) {
    let wake = state.scheduler.notify();
    state.tasks.spawn(run(state.clone(), wake.clone()));
    if state.db.backend == Backend::Postgres {
        state
            .tasks
            .spawn(listen(state.db.clone(), wake, state.shutdown.clone()));
    }
}

async fn run(state: AppState, wake: Arc<Notify>) {
    let shutdown = state.shutdown.clone();
    loop {
        let wait = match pass(&state, &shutdown).await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "scheduler: applying due changes failed; retrying");
                ERROR_RETRY
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

/// Applies every change due now, then says how long to sleep.
async fn pass(state: &AppState, shutdown: &CancellationToken) -> crate::error::ApiResult<Duration> {
    while !shutdown.is_cancelled() {
        if apply_due(state).await?.is_none() {
            break;
        }
    }
    let next = {
        let mut conn = state.db.pool.acquire().await?;
        scheduled_change::next_due(&mut conn).await?
    };
    Ok(match next {
        None => POLL,
        Some(at) => {
            let until = at - now_ms();
            if until <= 0 {
                // Due, yet not claimed: another replica's transaction holds it.
                HELD_RETRY
            } else {
                Duration::from_millis(u64::try_from(until).unwrap_or(0)).min(POLL)
            }
        }
    })
}

/// Wakes the loop on every `NOTIFY flagpole_scheduled`, reconnecting as needed, until
/// shutdown. After each (re)connection it wakes the loop once: a change scheduled while
/// nobody listened is then not left to the poll.
async fn listen(db: Db, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            connected = subscribe(&db) => connected,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "scheduler listener cannot connect");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        wake.notify_one();
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(_)) => wake.notify_one(),
                // The connection was lost; reconnect.
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "scheduler listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn subscribe(db: &Db) -> Result<PgListener, sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(db.url())?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    scheduled_change::listen(&mut listener).await?;
    Ok(listener)
}
