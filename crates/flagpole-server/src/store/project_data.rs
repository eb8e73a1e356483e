//! What a project's environments evaluate, loaded inside a write transaction so a change
//! can be applied in memory and validated with `Snapshot::compile_strict` before anything
//! is written: the whole project ([`ProjectData::load`]), or the part a write touches
//! ([`ProjectData::load_scope`], then [`ProjectData::load_references`] once the change is
//! applied), which costs what that part holds rather than what the project holds.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use flagpole_core::model::{EnvironmentSnapshot, Flag, FlagConfig, FlagState, Segment};

use super::environment::Environment;
use super::{Conn, StoreResult, from_text, placeholders};

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
    /// `flag.version` (0 for a flag being created): what its states in snapshots carry.
    pub version: u64,
}

/// A project's flags, segments and environments: all of them, or a part closed under
/// references (see [`ProjectData::load_references`]).
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
    /// Loads all of the project's data.
    pub async fn load(conn: &mut Conn, project_id: i64) -> StoreResult<ProjectData> {
        let environments = super::environment::list(&mut *conn, project_id).await?;
        let flag_rows: Vec<(i64, String, Option<i64>, i64)> = sqlx::query_as(
            "select id, definition, archived_at, version from flag where project_id = $1 order by key",
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
        let flags = with_configs(flag_rows, config_rows)?;
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

    /// Loads the environments and the flags and segments with these keys (archived flags
    /// included; keys that do not exist are skipped). Add what they name with
    /// [`ProjectData::load_references`] before compiling.
    pub async fn load_scope(
        conn: &mut Conn,
        project_id: i64,
        flags: &[String],
        segments: &[String],
    ) -> StoreResult<ProjectData> {
        let mut data = ProjectData {
            environments: super::environment::list(&mut *conn, project_id).await?,
            flags: Vec::new(),
            segments: Vec::new(),
        };
        data.add_flags(conn, project_id, flags).await?;
        data.add_segments(conn, project_id, segments).await?;
        Ok(data)
    }

    /// Loads what the held live flags and segments name and is not held yet (prerequisite
    /// flags, segments in clauses), until nothing is missing: the held part is then
    /// closed under references, and compiling it reports for each held flag and segment
    /// exactly what compiling the whole project would (flagpole-core's `scope` module).
    /// Call it after applying a change in memory, so what the change names is loaded too.
    pub async fn load_references(&mut self, conn: &mut Conn, project_id: i64) -> StoreResult<()> {
        // Keys asked for and not found (dangling references) are not asked for again.
        let mut asked = Asked::default();
        loop {
            let (flags, segments) = self.missing_references(&asked);
            if flags.is_empty() && segments.is_empty() {
                return Ok(());
            }
            asked.flags.extend(flags.iter().cloned());
            asked.segments.extend(segments.iter().cloned());
            self.add_flags(conn, project_id, &flags).await?;
            self.add_segments(conn, project_id, &segments).await?;
        }
    }

    /// Keys named by held live flags and held segments that are neither held nor asked
    /// for already: (flag keys, segment keys).
    fn missing_references(&self, asked: &Asked) -> (Vec<String>, Vec<String>) {
        let held_flags: HashSet<&str> = self.flag_keys().collect();
        let held_segments: HashSet<&str> = self.segments.iter().map(|s| s.key.as_str()).collect();
        let mut flags = BTreeSet::new();
        let mut segments = BTreeSet::new();
        for config in self
            .flags
            .iter()
            .filter(|f| !f.archived)
            .flat_map(|f| f.configs.values())
        {
            flags.extend(config.prerequisite_keys());
            segments.extend(config.segment_keys());
        }
        for segment in &self.segments {
            segments.extend(segment.segment_keys());
        }
        let flags = flags
            .into_iter()
            .filter(|k| !held_flags.contains(k) && !asked.flags.contains(*k))
            .map(str::to_owned)
            .collect();
        let segments = segments
            .into_iter()
            .filter(|k| !held_segments.contains(k) && !asked.segments.contains(*k))
            .map(str::to_owned)
            .collect();
        (flags, segments)
    }

    /// Loads the flags with these keys (not held yet) with all their configs. Stored
    /// flags stay in key order, a flag being created (id 0) after them, as in
    /// [`ProjectData::load`] followed by [`ProjectData::put_flag`].
    async fn add_flags(
        &mut self,
        conn: &mut Conn,
        project_id: i64,
        keys: &[String],
    ) -> StoreResult<()> {
        for chunk in keys.chunks(CHUNK) {
            let sql = format!(
                "select id, definition, archived_at, version from flag \
                 where project_id = $1 and key in ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project_id);
            for key in chunk {
                query = query.bind(key);
            }
            let flag_rows: Vec<(i64, String, Option<i64>, i64)> =
                query.fetch_all(&mut *conn).await?;
            if flag_rows.is_empty() {
                continue;
            }
            let ids: Vec<i64> = flag_rows.iter().map(|(id, ..)| *id).collect();
            let sql = format!(
                "select flag_id, environment_id, config from flag_config where flag_id in ({})",
                placeholders(1, ids.len())
            );
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                query = query.bind(*id);
            }
            let config_rows: Vec<(i64, i64, String)> = query.fetch_all(&mut *conn).await?;
            let held: HashSet<String> = self.flag_keys().map(str::to_owned).collect();
            let new = with_configs(flag_rows, config_rows)?;
            self.flags.extend(
                new.into_iter()
                    .filter(|f| !held.contains(&f.definition.key)),
            );
        }
        self.flags
            .sort_by(|a, b| (a.id == 0, &a.definition.key).cmp(&(b.id == 0, &b.definition.key)));
        Ok(())
    }

    /// Loads the segments with these keys (not held yet), each at its place in key order.
    async fn add_segments(
        &mut self,
        conn: &mut Conn,
        project_id: i64,
        keys: &[String],
    ) -> StoreResult<()> {
        for chunk in keys.chunks(CHUNK) {
            for row in super::segment::by_keys(&mut *conn, project_id, chunk).await? {
                let segment = row.definition;
                if self.segments.iter().any(|s| s.key == segment.key) {
                    continue;
                }
                let at = self.segments.partition_point(|s| s.key < segment.key);
                self.segments.insert(at, segment);
            }
        }
        Ok(())
    }

    /// The flag with this key.
    pub fn flag(&self, key: &str) -> Option<&ProjectFlag> {
        self.flags.iter().find(|f| f.definition.key == key)
    }

    /// The flag with this key, to change.
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

    /// Keys of the held flags.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|f| f.definition.key.as_str())
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
                            version: f.version,
                            ..FlagState::new(f.definition.clone(), config.clone())
                        })
                    })
                })
                .collect(),
            segments: self.segments.iter().cloned().map(Arc::new).collect(),
        }
    }
}

/// Keys [`ProjectData::load_references`] has asked the database for.
#[derive(Default)]
struct Asked {
    flags: HashSet<String>,
    segments: HashSet<String>,
}

/// Keys per `in (...)` list: well under both dialects' limits on bound parameters.
const CHUNK: usize = 500;

/// Flag rows with their configs, in the order of `flag_rows`.
fn with_configs(
    flag_rows: Vec<(i64, String, Option<i64>, i64)>,
    config_rows: Vec<(i64, i64, String)>,
) -> StoreResult<Vec<ProjectFlag>> {
    let mut configs: HashMap<i64, HashMap<i64, FlagConfig>> = HashMap::new();
    for (flag_id, env_id, text) in config_rows {
        configs
            .entry(flag_id)
            .or_default()
            .insert(env_id, from_text("flag config", &text)?);
    }
    flag_rows
        .into_iter()
        .map(|(id, definition, archived_at, version)| {
            Ok(ProjectFlag {
                id,
                version: u64::try_from(version).unwrap_or(0),
                definition: from_text("flag definition", &definition)?,
                archived: archived_at.is_some(),
                configs: configs.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}
