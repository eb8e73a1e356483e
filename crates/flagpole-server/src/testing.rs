//! Test support: fresh databases on real Postgres and SQLite, and seeding a project with
//! many flags for benchmarks.
//!
//! Every call makes a brand-new database, so tests never see each other's data or a
//! previous run's. Postgres is found through `FLAGPOLE_TEST_PG_URL` (an admin connection,
//! default `postgres://postgres@127.0.0.1:5432/postgres`); the test command starts a
//! server when none is reachable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use flagpole_core::model::{Flag, FlagKind};
use sqlx::{Connection, Executor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::{Backend, Db, now_ms};
use crate::domain::flag_write::{boolean_variants, default_config};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::environment::{self, ChangeKind};
use crate::store::flag;
use crate::store::flag_version::{self, FlagVersionState};
use crate::store::project;
use crate::{App, StartError};

/// Admin URL of the test Postgres server.
pub fn postgres_admin_url() -> String {
    std::env::var("FLAGPOLE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// URL of a new, empty Postgres database.
pub async fn fresh_postgres_url() -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let name = unique_name("fp_test");
    let mut conn = sqlx::AnyConnection::connect(&admin).await?;
    conn.execute(sqlx::AssertSqlSafe(format!("create database {name}")))
        .await?;
    conn.close().await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Ok(format!("{base}/{name}"))
}

/// A new, empty SQLite database file in a fresh temporary directory.
pub fn fresh_sqlite_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique_name("flagpole_test"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A migrated, empty database of the given backend.
pub async fn fresh_db(backend: Backend) -> anyhow::Result<Db> {
    let db = match backend {
        Backend::Postgres => Db::connect(&fresh_postgres_url().await?, 8).await?,
        Backend::Sqlite => Db::open_sqlite_dir(&fresh_sqlite_dir()?, 8).await?,
    };
    db.migrate().await?;
    Ok(db)
}

/// An app served on a real socket (127.0.0.1, port 0) until [`Served::stop`].
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartError>>>,
}

impl Served {
    /// Serves `app` on a fresh port.
    pub async fn start(app: App) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        Served {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful shutdown; panics unless `serve` returns cleanly within `wait`.
    pub async fn stop(&mut self, wait: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(wait, handle)
                .await
                .expect("serve returns after shutdown")
                .expect("serve task")
                .expect("serve");
        }
    }
}

/// Adds `n` boolean flags `{prefix}0` … `{prefix}{n-1}` to the existing project
/// `project_key`, in one transaction, each as `POST .../flags {"key": …}` would create it:
/// the default config in every environment and a history entry at version 1. Every
/// environment's `data_version` is bumped once, with a change row per flag at that
/// version, so servers and SDKs see the flags as one write.
///
/// For benchmarks of a big project (`bench-writes`): through the API each create validates
/// the whole project, so seeding 10,000 flags that way takes tens of minutes. Run it while
/// no server is serving the database (a running one would not hear of the change on
/// SQLite). Writes one audit entry for the whole seed, not one per flag.
pub async fn seed_flags(db: &Db, project_key: &str, prefix: &str, n: usize) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    let project = project::by_key(&mut tx, project_key)
        .await?
        .with_context(|| format!("no project `{project_key}`"))?;
    let bumped = environment::bump_data_versions(&mut tx, project.id, None).await?;
    let environments = environment::list(&mut tx, project.id).await?;
    let now = now_ms();
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let definition = Flag {
            name: key.clone(),
            key,
            description: String::new(),
            tags: Vec::new(),
            kind: FlagKind::Boolean,
            variants: boolean_variants(),
            salt: String::new(),
        };
        let config = default_config(&definition);
        let row = flag::insert(&mut tx, project.id, &definition, Default::default(), now).await?;
        for env in &environments {
            flag::put_config(&mut tx, row.id, env.id, &config).await?;
        }
        let state = FlagVersionState {
            flag: definition,
            archived: false,
            environments: environments
                .iter()
                .map(|e| (e.key.clone(), config.clone()))
                .collect(),
        };
        flag_version::insert(&mut tx, row.id, row.version, &state, "seed", "", now).await?;
        environment::record_changes(&mut tx, &bumped, ChangeKind::Flag, &row.key).await?;
    }
    audit::insert(
        &mut tx,
        &NewAuditEvent {
            actor: "seed",
            action: "flag.seed",
            project_id: Some(project.id),
            resource_type: "project",
            resource_key: project_key,
            after: Some(serde_json::json!({"flags": n, "prefix": prefix})),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use flagpole_core::Snapshot;

    use super::*;
    use crate::store::environment::NewEnvironment;

    /// Seeded flags are what SDKs would load after one write, and they compile strictly.
    #[tokio::test]
    async fn seeded_flags_are_one_valid_write() {
        let db = fresh_db(Backend::Sqlite).await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        let p = project::insert(&mut tx, "p", "P", "", now_ms())
            .await
            .unwrap();
        for (i, key) in ["dev", "prod"].into_iter().enumerate() {
            let new = NewEnvironment {
                key,
                name: key,
                description: "",
                sort_order: i as i64,
                critical: false,
            };
            environment::insert(&mut tx, p.id, &new, now_ms())
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();

        seed_flags(&db, "p", "f", 3).await.unwrap();
        for id in crate::store::snapshot::environment_ids(&db).await.unwrap() {
            let env = crate::store::snapshot::load_environment(&db, id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(env.version, 1);
            let keys: Vec<&str> = env.flags.iter().map(|f| f.flag.key.as_str()).collect();
            assert_eq!(keys, ["f0", "f1", "f2"]);
            Snapshot::compile_strict(&env).unwrap();
        }
        assert!(seed_flags(&db, "nope", "f", 1).await.is_err());
    }
}
