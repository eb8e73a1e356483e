//! The `audit_event` table: who changed what, when, from what to what.

use serde::Serialize;
use serde_json::Value;

use super::{Conn, StoreResult, from_text, to_text};

/// An audit entry to write, in the same transaction as the change it describes.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent<'a> {
    /// `Actor::name`.
    pub actor: &'a str,
    /// `flag.create`, `flag_config.update`, `flag.toggle`, `segment.delete`...
    pub action: &'a str,
    /// The project, if the resource belongs to one (and still exists).
    pub project_id: Option<i64>,
    /// The environment, for per-environment changes.
    pub environment_id: Option<i64>,
    /// `project`, `environment`, `flag`, `segment`.
    pub resource_type: &'a str,
    /// Key of the resource.
    pub resource_key: &'a str,
    /// State before (absent for creations).
    pub before: Option<Value>,
    /// State after (absent for deletions).
    pub after: Option<Value>,
    /// Why, as given by the actor.
    pub comment: &'a str,
}

/// Appends an audit entry.
pub async fn insert(conn: &mut Conn, event: &NewAuditEvent<'_>, now: i64) -> StoreResult<()> {
    let before = event.before.as_ref().map(to_text).transpose()?;
    let after = event.after.as_ref().map(to_text).transpose()?;
    sqlx::query(
        "insert into audit_event (at, actor, action, project_id, environment_id, resource_type, \
         resource_key, before, after, comment) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(now)
    .bind(event.actor)
    .bind(event.action)
    .bind(event.project_id)
    .bind(event.environment_id)
    .bind(event.resource_type)
    .bind(event.resource_key)
    .bind(before)
    .bind(after)
    .bind(event.comment)
    .execute(conn)
    .await?;
    Ok(())
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// Id (increasing).
    pub id: i64,
    /// When (epoch ms).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Project key, if the project still exists.
    pub project: Option<String>,
    /// Environment key, if any and it still exists.
    pub environment: Option<String>,
    /// `project`, `environment`, `flag`, `segment`.
    pub resource_type: String,
    /// Key of the resource.
    pub resource_key: String,
    /// State before.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// State after.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// The actor's comment.
    pub comment: String,
}

/// Filters of an audit query; all optional and combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Project id.
    pub project_id: Option<i64>,
    /// Environment id.
    pub environment_id: Option<i64>,
    /// Resource type and key (e.g. `flag`, `new-checkout`).
    pub resource: Option<(String, String)>,
    /// Exact actor name.
    pub actor: Option<String>,
    /// Which actions.
    pub action: Option<ActionFilter>,
    /// At or after (epoch ms).
    pub from: Option<i64>,
    /// Before (epoch ms, exclusive).
    pub to: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// The actions an audit query keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    /// One action: `flag.toggle`.
    Exact(String),
    /// Every action on a kind of resource: `flag` keeps `flag.create`, `flag.toggle`...
    Resource(String),
}

type RawRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// Entries matching `filter`, newest first.
pub async fn query(conn: &mut Conn, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
    // Fixed fragments with numbered parameters; values only ever go through binds.
    enum Bind {
        I(i64),
        S(String),
    }
    let mut clauses: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    let mut add = |sql: &str, bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        clauses.push(sql.replace('?', &format!("${}", binds.len())));
    };
    if let Some(p) = filter.project_id {
        add("a.project_id = ?", Bind::I(p), &mut binds);
    }
    if let Some(e) = filter.environment_id {
        add("a.environment_id = ?", Bind::I(e), &mut binds);
    }
    if let Some((kind, key)) = &filter.resource {
        add("a.resource_type = ?", Bind::S(kind.clone()), &mut binds);
        add("a.resource_key = ?", Bind::S(key.clone()), &mut binds);
    }
    if let Some(actor) = &filter.actor {
        add("a.actor = ?", Bind::S(actor.clone()), &mut binds);
    }
    match &filter.action {
        Some(ActionFilter::Exact(action)) => {
            add("a.action = ?", Bind::S(action.clone()), &mut binds)
        }
        Some(ActionFilter::Resource(resource)) => {
            // `_` is a LIKE wildcard (and resource names have them: `flag_config`).
            let pattern = format!("{}.%", resource.replace('\\', "\\\\").replace('_', "\\_"));
            add("a.action like ? escape '\\'", Bind::S(pattern), &mut binds);
        }
        None => {}
    }
    if let Some(from) = filter.from {
        add("a.at >= ?", Bind::I(from), &mut binds);
    }
    if let Some(to) = filter.to {
        add("a.at < ?", Bind::I(to), &mut binds);
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("where {}", clauses.join(" and "))
    };
    let n = binds.len() + 1;
    let sql = format!(
        "select a.id, a.at, a.actor, a.action, p.key, e.key, a.resource_type, a.resource_key, \
         a.before, a.after, a.comment from audit_event a \
         left join project p on p.id = a.project_id \
         left join environment e on e.id = a.environment_id \
         {where_sql} order by a.id desc limit ${n} offset ${}",
        n + 1
    );
    let mut query = sqlx::query_as::<_, RawRow>(sqlx::AssertSqlSafe(sql));
    for bind in binds {
        query = match bind {
            Bind::I(i) => query.bind(i),
            Bind::S(s) => query.bind(s),
        };
    }
    let rows = query
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            let parse = |t: Option<String>| -> StoreResult<Option<Value>> {
                t.map(|t| from_text("audit state", &t)).transpose()
            };
            Ok(AuditEvent {
                id: r.0,
                at: r.1,
                actor: r.2,
                action: r.3,
                project: r.4,
                environment: r.5,
                resource_type: r.6,
                resource_key: r.7,
                before: parse(r.8)?,
                after: parse(r.9)?,
                comment: r.10,
            })
        })
        .collect()
}
