//! Everything a project's environments evaluate, loaded at once inside a write transaction
//! so a change can be applied in memory and validated with `Snapshot::compile_strict`
//! before anything is written.

use std::collections::HashMap;
use std::sync::Arc;

use flagpole_core::model::{EnvironmentSnapshot, Flag, FlagConfig, FlagState, Segment};

use super::environment::Environment;
use super::{Conn, StoreResult, from_text};

/// A flag with every environment's config.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFlag {
    /// `flag.id`; 0 for a flag being created and not inserted yet.
    pub id: i64,
    /// Identity, kind, variants.
    pub definition: Flag,
    /// Archived flags are kept here (revert and unarchive need them) but left out of
    /// snapshots.
    pub archived: bool,
    /// Config by environment id.
    pub configs: HashMap<i64, FlagConfig>,
}

/// A project's flags, segments and environments.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectData {
    /// Environments in display order.
    pub environments: Vec<Environment>,
    /// Flags by key order.
    pub flags: Vec<ProjectFlag>,
    /// Segments by key order.
    pub segments: Vec<Segment>,
}

impl ProjectData {
    /// Loads the project's data.
    pub async fn load(conn: &mut Conn, project_id: i64) -> StoreResult<ProjectData> {
        let environments = super::environment::list(&mut *conn, project_id).await?;
        let flag_rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
            "select id, definition, archived_at from flag where project_id = $1 order by key",
        )
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await?;
        let config_rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "select c.flag_id, c.environment_id, c.config from flag_config c \
             join flag f on f.id = c.flag_id where f.project_id = $1",
        )
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut configs: HashMap<i64, HashMap<i64, FlagConfig>> = HashMap::new();
        for (flag_id, env_id, text) in config_rows {
            configs
                .entry(flag_id)
                .or_default()
                .insert(env_id, from_text("flag config", &text)?);
        }
        let flags = flag_rows
            .into_iter()
            .map(|(id, definition, archived_at)| {
                Ok(ProjectFlag {
                    id,
                    definition: from_text("flag definition", &definition)?,
                    archived: archived_at.is_some(),
                    configs: configs.remove(&id).unwrap_or_default(),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let segments = super::segment::list(conn, project_id)
            .await?
            .into_iter()
            .map(|row| row.definition)
            .collect();
        Ok(ProjectData {
            environments,
            flags,
            segments,
        })
    }

    /// The flag with this key.
    pub fn flag_mut(&mut self, key: &str) -> Option<&mut ProjectFlag> {
        self.flags.iter_mut().find(|f| f.definition.key == key)
    }

    /// Inserts or replaces a flag (matched by key).
    pub fn put_flag(&mut self, flag: ProjectFlag) {
        match self.flag_mut(&flag.definition.key) {
            Some(existing) => *existing = flag,
            None => self.flags.push(flag),
        }
    }

    /// Inserts or replaces a segment (matched by key); `None` removes `key`.
    pub fn put_segment(&mut self, key: &str, segment: Option<Segment>) {
        self.segments.retain(|s| s.key != key);
        if let Some(segment) = segment {
            self.segments.push(segment);
        }
    }

    /// Keys of live flags other than `key` whose config in any environment lists `key` as
    /// a prerequisite.
    pub fn live_dependents(&self, key: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|f| !f.archived && f.definition.key != key)
            .filter(|f| {
                f.configs
                    .values()
                    .any(|c| c.prerequisites.iter().any(|p| p.flag == key))
            })
            .map(|f| f.definition.key.clone())
            .collect()
    }

    /// What SDKs of environment `env_id` would receive: live flags with a config there.
    pub fn snapshot(&self, env_id: i64, version: u64) -> EnvironmentSnapshot {
        EnvironmentSnapshot {
            version,
            flags: self
                .flags
                .iter()
                .filter(|f| !f.archived)
                .filter_map(|f| {
                    f.configs.get(&env_id).map(|config| {
                        Arc::new(FlagState {
                            flag: f.definition.clone(),
                            config: config.clone(),
                        })
                    })
                })
                .collect(),
            segments: self.segments.iter().cloned().map(Arc::new).collect(),
        }
    }
}
