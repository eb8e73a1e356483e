//! The `experiment`, `experiment_unit` and `experiment_unit_metric` tables (migration
//! 0014): experiments, and the per-unit aggregates the ingest writer keeps up to date in
//! the transaction that stores a group of batches ([`accumulate`]), which results read
//! with one grouped query per metric ([`metric_sums`]) instead of scanning raw events.
//! Events that arrive before their unit's exposure wait in `experiment_pending_event`
//! (migration 0015) until it lands.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::ingest::{EventRow, ExposureRow};
use super::{Conn, StoreError, StoreResult, from_text, placeholders, to_text};
use crate::experiment::results::Sums;
use crate::experiment::{Analysis, Arm, Decision, MetricKind, Metrics, State};

/// An experiment as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct Experiment {
    /// Id, used in URLs.
    pub(crate) id: i64,
    /// The environment's key.
    pub(crate) environment: String,
    /// The flag's key.
    pub(crate) flag: String,
    /// Short name.
    pub(crate) name: String,
    /// What is expected to happen, and why.
    pub(crate) hypothesis: String,
    /// Variants compared, control first, with the split.
    pub(crate) arms: Vec<Arm>,
    /// Primary, secondary and guardrail metrics.
    pub(crate) metrics: Metrics,
    /// How results are tested.
    pub(crate) analysis: Analysis,
    /// Draft, running or stopped.
    pub(crate) state: State,
    /// What was decided when it stopped.
    pub(crate) decision: Option<Decision>,
    /// When it last started (epoch ms); exposures count from then.
    pub(crate) started_at: Option<i64>,
    /// When it stopped (epoch ms).
    pub(crate) stopped_at: Option<i64>,
    /// Optimistic-concurrency version; an update must name it.
    pub(crate) version: i64,
    /// Who created it.
    pub(crate) created_by: String,
    /// Creation time (epoch ms).
    pub(crate) created_at: i64,
    /// Last change (epoch ms).
    pub(crate) updated_at: i64,
    /// `environment.id`.
    #[serde(skip)]
    pub(crate) environment_id: i64,
    /// `flag.id`.
    #[serde(skip)]
    pub(crate) flag_id: i64,
}

/// What a create or a draft update writes.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    /// Short name.
    pub(crate) name: &'a str,
    /// Hypothesis.
    pub(crate) hypothesis: &'a str,
    /// Arms, control first.
    pub(crate) arms: &'a [Arm],
    /// Metrics.
    pub(crate) metrics: &'a Metrics,
    /// Analysis settings.
    pub(crate) analysis: &'a Analysis,
}

const SELECT: &str = "select x.id, e.key as environment, x.flag_key, x.name, x.hypothesis, \
     x.arms, x.metrics, x.analysis, x.state, x.decision, x.started_at, x.stopped_at, \
     x.version, x.created_by, x.created_at, x.updated_at, x.environment_id, x.flag_id \
     from experiment x join environment e on e.id = x.environment_id";

fn parse(row: &AnyRow) -> StoreResult<Experiment> {
    let id: i64 = row.try_get("id")?;
    let what = |part: &str| format!("experiment {id} {part}");
    let text = |col: &str| -> StoreResult<String> { Ok(row.try_get::<String, _>(col)?) };
    let state: String = row.try_get("state")?;
    Ok(Experiment {
        id,
        environment: text("environment")?,
        flag: text("flag_key")?,
        name: text("name")?,
        hypothesis: text("hypothesis")?,
        arms: from_text(&what("arms"), &text("arms")?)?,
        metrics: from_text(&what("metrics"), &text("metrics")?)?,
        analysis: from_text(&what("analysis"), &text("analysis")?)?,
        state: State::parse(&state).ok_or_else(|| StoreError::corrupt(what("state"), &state))?,
        decision: row
            .try_get::<Option<String>, _>("decision")?
            .map(|d| from_text(&what("decision"), &d))
            .transpose()?,
        started_at: row.try_get("started_at")?,
        stopped_at: row.try_get("stopped_at")?,
        version: row.try_get("version")?,
        created_by: text("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        environment_id: row.try_get("environment_id")?,
        flag_id: row.try_get("flag_id")?,
    })
}

/// The project's experiments, newest first.
pub(crate) async fn list(conn: &mut Conn, project_id: i64) -> StoreResult<Vec<Experiment>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} where x.project_id = $1 order by x.id desc"
    )))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(parse).collect()
}

/// Experiment `id` of the project.
pub(crate) async fn by_id(
    conn: &mut Conn,
    project_id: i64,
    id: i64,
) -> StoreResult<Option<Experiment>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} where x.project_id = $1 and x.id = $2"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(parse).transpose()
}

/// Inserts a draft; its id.
pub(crate) async fn insert(
    conn: &mut Conn,
    project_id: i64,
    (environment_id, flag_id, flag_key): (i64, i64, &str),
    fields: &Fields<'_>,
    actor: &str,
    now: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "insert into experiment (project_id, environment_id, flag_id, flag_key, name, \
         hypothesis, arms, metrics, analysis, state, created_by, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'draft', $10, $11, $11) returning id",
    )
    .bind(project_id)
    .bind(environment_id)
    .bind(flag_id)
    .bind(flag_key)
    .bind(fields.name)
    .bind(fields.hypothesis)
    .bind(to_text(&fields.arms)?)
    .bind(to_text(fields.metrics)?)
    .bind(to_text(fields.analysis)?)
    .bind(actor)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Replaces the editable fields if the version still is `expected`; whether it was.
pub(crate) async fn update(
    conn: &mut Conn,
    id: i64,
    expected: i64,
    fields: &Fields<'_>,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update experiment set name = $1, hypothesis = $2, arms = $3, metrics = $4, \
         analysis = $5, version = version + 1, updated_at = $6 where id = $7 and version = $8",
    )
    .bind(fields.name)
    .bind(fields.hypothesis)
    .bind(to_text(&fields.arms)?)
    .bind(to_text(fields.metrics)?)
    .bind(to_text(fields.analysis)?)
    .bind(now)
    .bind(id)
    .bind(expected)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves experiment `id` to running from `now` (a start or a restart).
pub(crate) async fn set_running(conn: &mut Conn, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update experiment set state = 'running', started_at = $1, stopped_at = null, \
         decision = null, version = version + 1, updated_at = $1 where id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves experiment `id` to stopped with `decision`.
pub(crate) async fn set_stopped(
    conn: &mut Conn,
    id: i64,
    decision: &Decision,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "update experiment set state = 'stopped', stopped_at = $1, decision = $2, \
         version = version + 1, updated_at = $1 where id = $3",
    )
    .bind(now)
    .bind(to_text(decision)?)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets every unit of experiment `id` (a restart: the old split's units would bias
/// the new one's results).
pub(crate) async fn clear_units(conn: &mut Conn, id: i64) -> StoreResult<()> {
    for table in [
        "experiment_pending_event",
        "experiment_unit_metric",
        "experiment_unit",
    ] {
        sqlx::query(AssertSqlSafe(format!(
            "delete from {table} where experiment_id = $1"
        )))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The running experiment on a flag in an environment, if any.
pub(crate) async fn running_on(
    conn: &mut Conn,
    environment_id: i64,
    flag_id: i64,
) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select id from experiment where environment_id = $1 and flag_id = $2 \
         and state = 'running'",
    )
    .bind(environment_id)
    .bind(flag_id)
    .fetch_optional(conn)
    .await?)
}

/// SQL for "SDKs must send exposures for flag `f` in environment `c.environment_id`":
/// a running experiment on it. Used by the snapshot reads (`store::snapshot`), so the
/// mark needs no column of its own and disappears when the experiment stops.
pub(crate) const EXPOSURES_MARK: &str = "cast(case when exists (select 1 from experiment x \
     where x.environment_id = c.environment_id and x.flag_id = f.id and x.state = 'running') \
     then 1 else 0 end as bigint)";

// ---------------------------------------------------------------------------------------
// Aggregates maintained by the ingest writer.

/// A running experiment as the ingest writer needs it.
struct Running {
    id: i64,
    environment_id: i64,
    flag_key: String,
    variants: HashSet<String>,
    metrics: Metrics,
}

/// Most bound parameters per statement (see `store::ingest`).
const MAX_PARAMS: usize = 30_000;

/// Adds what `exposures` and `events` (rows just stored by the ingest writer, in its
/// transaction) mean for the running experiments of their environments:
/// - an exposure to an arm's variant of an experiment's flag makes its context key a
///   unit of the experiment (first exposure time, variant; a second variant marks it as
///   exposed to several);
/// - an event a metric counts, sent by a unit at or after its first exposure (and within
///   the metric's window), adds to that unit's sums.
///
/// Exposures are applied first, so an event in the same group as its unit's first
/// exposure counts. An event whose unit has no exposure yet is held in
/// `experiment_pending_event` (migration 0015) and applied when the exposure is stored:
/// the client that evaluates (a frontend) and the one that tracks (a backend) flush on
/// their own clocks, so the event's batch is often stored first.
pub(crate) async fn accumulate(
    conn: &mut Conn,
    exposures: &[ExposureRow],
    events: &[EventRow],
) -> StoreResult<()> {
    if exposures.is_empty() && events.is_empty() {
        return Ok(());
    }
    let mut envs: Vec<i64> = exposures
        .iter()
        .map(|e| e.environment_id)
        .chain(events.iter().map(|e| e.environment_id))
        .collect();
    envs.sort_unstable();
    envs.dedup();
    let running = running_in(conn, &envs).await?;
    if running.is_empty() {
        return Ok(());
    }
    let exposed = add_exposures(conn, &running, exposures).await?;
    let held = take_pending(conn, &exposed).await?;
    add_events(conn, &running, events, &held).await
}

async fn running_in(conn: &mut Conn, envs: &[i64]) -> StoreResult<Vec<Running>> {
    let mut out = Vec::new();
    for chunk in envs.chunks(1000) {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "select id, environment_id, flag_key, arms, metrics from experiment \
             where state = 'running' and environment_id in ({})",
            placeholders(1, chunk.len())
        )))
        .persistent(false);
        let rows = chunk
            .iter()
            .fold(rows, |q, env| q.bind(*env))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let arms: Vec<Arm> = from_text(
                &format!("experiment {id} arms"),
                &row.try_get::<String, _>("arms")?,
            )?;
            out.push(Running {
                id,
                environment_id: row.try_get("environment_id")?,
                flag_key: row.try_get("flag_key")?,
                variants: arms.into_iter().map(|a| a.variant).collect(),
                metrics: from_text(
                    &format!("experiment {id} metrics"),
                    &row.try_get::<String, _>("metrics")?,
                )?,
            });
        }
    }
    Ok(out)
}

/// A unit's exposures within one group: earliest time, a variant, several variants seen.
struct UnitAdd {
    variant: String,
    first: i64,
    multiple: bool,
}

/// Upserts the units of `exposures`; the (experiment, unit) pairs it touched, sorted.
async fn add_exposures<'a>(
    conn: &mut Conn,
    running: &[Running],
    exposures: &'a [ExposureRow],
) -> StoreResult<Vec<(i64, &'a str)>> {
    let by_flag: HashMap<(i64, &str), &Running> = running
        .iter()
        .map(|r| ((r.environment_id, r.flag_key.as_str()), r))
        .collect();
    // Sorted: concurrent writers (replicas) lock rows in one order and cannot deadlock.
    let mut units: BTreeMap<(i64, &str), UnitAdd> = BTreeMap::new();
    for e in exposures {
        let Some(x) = by_flag.get(&(e.environment_id, e.flag_key.as_str())) else {
            continue;
        };
        // A variant outside the arms (a target, the off variant) is not part of the test.
        if !x.variants.contains(&e.variant) {
            continue;
        }
        units
            .entry((x.id, e.context_key.as_str()))
            .and_modify(|u| {
                u.multiple |= u.variant != e.variant;
                u.first = u.first.min(e.at_ms);
            })
            .or_insert_with(|| UnitAdd {
                variant: e.variant.clone(),
                first: e.at_ms,
                multiple: false,
            });
    }
    let units: Vec<_> = units.into_iter().collect();
    const COLS: usize = 5;
    for chunk in units.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into experiment_unit (experiment_id, unit, variant, first_exposure_at, \
             multiple) values {} on conflict (experiment_id, unit) do update set \
             multiple = case when experiment_unit.multiple = 1 or excluded.multiple = 1 \
               or experiment_unit.variant <> excluded.variant then 1 else 0 end, \
             first_exposure_at = case when excluded.first_exposure_at < \
               experiment_unit.first_exposure_at then excluded.first_exposure_at \
               else experiment_unit.first_exposure_at end",
            super::ingest::values(chunk.len(), COLS)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for ((id, unit), add) in chunk {
            query = query
                .bind(*id)
                .bind(*unit)
                .bind(add.variant.as_str())
                .bind(add.first)
                .bind(i64::from(add.multiple));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(units.into_iter().map(|(unit, _)| unit).collect())
}

/// An event held in `experiment_pending_event` until its unit's exposure.
struct Held {
    experiment: i64,
    metric: String,
    unit: String,
    denominator: bool,
    at_ms: i64,
    value: f64,
}

/// Removes and returns the held events of `units` (experiment, unit), which now have an
/// exposure: each is applied if it falls in its metric's window, dropped otherwise.
async fn take_pending(conn: &mut Conn, units: &[(i64, &str)]) -> StoreResult<Vec<Held>> {
    let mut held = Vec::new();
    for group in units.chunk_by(|a, b| a.0 == b.0) {
        let experiment = group[0].0;
        for chunk in group.chunks(MAX_PARAMS - 1) {
            let query =
                sqlx::query_as::<_, (String, String, i64, i64, f64)>(AssertSqlSafe(format!(
                    "delete from experiment_pending_event where experiment_id = $1 \
                     and unit in ({}) returning metric, unit, denominator, at_ms, a",
                    placeholders(2, chunk.len())
                )))
                .persistent(false)
                .bind(experiment);
            let rows = chunk
                .iter()
                .fold(query, |q, (_, unit)| q.bind(*unit))
                .fetch_all(&mut *conn)
                .await?;
            held.extend(
                rows.into_iter()
                    .map(|(metric, unit, denominator, at_ms, value)| Held {
                        experiment,
                        metric,
                        unit,
                        denominator: denominator != 0,
                        at_ms,
                        value,
                    }),
            );
        }
    }
    Ok(held)
}

/// One event as a metric of one experiment reads it: which side of the metric, when, how
/// much.
struct Candidate<'a> {
    experiment: i64,
    metric: &'a str,
    kind: MetricKind,
    window_ms: Option<i64>,
    unit: &'a str,
    denominator: bool,
    at_ms: i64,
    value: f64,
    /// Taken from `experiment_pending_event`: dropped, not held again, when it does not
    /// count.
    held: bool,
}

/// How long an event waits for its unit's exposure when its metric has no window.
const HOLD_WITHOUT_WINDOW_MS: i64 = 72 * 3_600_000;

/// A metric of a running experiment that reads an event; true for a ratio's denominator.
type Reader<'a> = (&'a Running, &'a crate::experiment::Metric, bool);

/// (experiment, metric key, unit).
type UnitMetric<'a> = (i64, &'a str, &'a str);

async fn add_events(
    conn: &mut Conn,
    running: &[Running],
    events: &[EventRow],
    held: &[Held],
) -> StoreResult<()> {
    // (environment, event name) → the metrics that read it.
    let mut readers: HashMap<(i64, &str), Vec<Reader<'_>>> = HashMap::new();
    for x in running {
        for (_, m) in x.metrics.all() {
            readers
                .entry((x.environment_id, m.event.as_str()))
                .or_default()
                .push((x, m, false));
            if let Some(d) = &m.denominator {
                readers
                    .entry((x.environment_id, d.as_str()))
                    .or_default()
                    .push((x, m, true));
            }
        }
    }
    let mut candidates = Vec::new();
    for e in events {
        let Some(list) = readers.get(&(e.environment_id, e.name.as_str())) else {
            continue;
        };
        for (x, m, denominator) in list {
            candidates.push(Candidate {
                experiment: x.id,
                metric: &m.key,
                kind: m.kind,
                window_ms: m.window_ms(),
                unit: &e.context_key,
                denominator: *denominator,
                at_ms: e.at_ms,
                // An event without a value counts as 1 wherever a value is read.
                value: e.value.unwrap_or(1.0),
                held: false,
            });
        }
    }
    for h in held {
        let metric = running
            .iter()
            .find(|x| x.id == h.experiment)
            .and_then(|x| x.metrics.all().map(|(_, m)| m).find(|m| m.key == h.metric));
        // A restart cleared the held events; a metric cannot change while running.
        let Some(m) = metric else { continue };
        candidates.push(Candidate {
            experiment: h.experiment,
            metric: &m.key,
            kind: m.kind,
            window_ms: m.window_ms(),
            unit: &h.unit,
            denominator: h.denominator,
            at_ms: h.at_ms,
            value: h.value,
            held: true,
        });
    }
    if candidates.is_empty() {
        return Ok(());
    }
    // The first exposures of the units these events come from.
    let mut wanted: BTreeMap<i64, HashSet<&str>> = BTreeMap::new();
    for c in &candidates {
        wanted.entry(c.experiment).or_default().insert(c.unit);
    }
    let mut first: HashMap<(i64, &str), i64> = HashMap::new();
    for (experiment, units) in &wanted {
        let units: Vec<&str> = units.iter().copied().collect();
        for chunk in units.chunks(MAX_PARAMS - 1) {
            let query = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(format!(
                "select unit, first_exposure_at from experiment_unit \
                 where experiment_id = $1 and unit in ({})",
                placeholders(2, chunk.len())
            )))
            .persistent(false)
            .bind(*experiment);
            let rows = chunk
                .iter()
                .fold(query, |q, u| q.bind(*u))
                .fetch_all(&mut *conn)
                .await?;
            for (unit, at) in rows {
                if let Some(u) = chunk.iter().find(|u| **u == unit) {
                    first.insert((*experiment, *u), at);
                }
            }
        }
    }
    // Sums per (experiment, metric, unit), binomial ones apart (they take a maximum).
    let mut additive: BTreeMap<(i64, &str, &str), (f64, f64)> = BTreeMap::new();
    let mut converted: BTreeMap<(i64, &str, &str), (f64, f64)> = BTreeMap::new();
    let mut hold = Vec::new();
    for c in &candidates {
        let Some(&exposed) = first.get(&(c.experiment, c.unit)) else {
            if !c.held {
                hold.push(c);
            }
            continue;
        };
        if c.at_ms < exposed || c.window_ms.is_some_and(|w| c.at_ms > exposed + w) {
            continue;
        }
        let key = (c.experiment, c.metric, c.unit);
        match c.kind {
            MetricKind::Binomial => {
                converted.insert(key, (1.0, 0.0));
            }
            MetricKind::Count => additive.entry(key).or_default().0 += 1.0,
            MetricKind::Sum => additive.entry(key).or_default().0 += c.value,
            // Mean: Σ values over Σ events. Ratio: Σ numerator over Σ denominator values.
            MetricKind::Mean => {
                let s = additive.entry(key).or_default();
                s.0 += c.value;
                s.1 += 1.0;
            }
            MetricKind::Ratio => {
                let s = additive.entry(key).or_default();
                if c.denominator {
                    s.1 += c.value;
                } else {
                    s.0 += c.value;
                }
            }
        }
    }
    upsert_metric_values(conn, &additive.into_iter().collect::<Vec<_>>(), false).await?;
    upsert_metric_values(conn, &converted.into_iter().collect::<Vec<_>>(), true).await?;
    insert_pending(conn, &hold).await
}

/// Holds events whose unit has no exposure yet, until the metric's window (or
/// [`HOLD_WITHOUT_WINDOW_MS`]) has passed since the event.
async fn insert_pending(conn: &mut Conn, hold: &[&Candidate<'_>]) -> StoreResult<()> {
    const COLS: usize = 7;
    for chunk in hold.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into experiment_pending_event (experiment_id, metric, unit, denominator, \
             at_ms, a, expires_at) values {}",
            super::ingest::values(chunk.len(), COLS)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for c in chunk {
            let hold_ms = c.window_ms.unwrap_or(HOLD_WITHOUT_WINDOW_MS);
            query = query
                .bind(c.experiment)
                .bind(c.metric)
                .bind(c.unit)
                .bind(i64::from(c.denominator))
                .bind(c.at_ms)
                .bind(c.value)
                .bind(c.at_ms.saturating_add(hold_ms));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn upsert_metric_values(
    conn: &mut Conn,
    rows: &[(UnitMetric<'_>, (f64, f64))],
    maximum: bool,
) -> StoreResult<()> {
    const COLS: usize = 5;
    let set = if maximum {
        "a = case when excluded.a > experiment_unit_metric.a then excluded.a \
         else experiment_unit_metric.a end"
    } else {
        "a = experiment_unit_metric.a + excluded.a, b = experiment_unit_metric.b + excluded.b"
    };
    for chunk in rows.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "insert into experiment_unit_metric (experiment_id, metric, unit, a, b) values {} \
             on conflict (experiment_id, metric, unit) do update set {set}",
            super::ingest::values(chunk.len(), COLS)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for ((id, metric, unit), (a, b)) in chunk {
            query = query.bind(*id).bind(*metric).bind(*unit).bind(*a).bind(*b);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reads for results.

/// Units per variant (exposed to that variant only), and units exposed to several.
pub(crate) async fn unit_counts(
    conn: &mut Conn,
    id: i64,
) -> StoreResult<(HashMap<String, u64>, u64)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "select variant, multiple, count(*) from experiment_unit where experiment_id = $1 \
         group by variant, multiple",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut per_variant = HashMap::new();
    let mut multiple = 0;
    for (variant, several, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        if several != 0 {
            multiple += n;
        } else {
            *per_variant.entry(variant).or_default() += n;
        }
    }
    Ok((per_variant, multiple))
}

/// Every metric's sums per variant over the units exposed to one variant only, keyed by
/// (metric, variant), `n` left 0: units without events have no row and add nothing but
/// to `n`, which the caller takes from [`unit_counts`]. One pass over the rows that exist
/// rather than a left join per metric over every unit.
pub(crate) async fn metric_sums(
    conn: &mut Conn,
    id: i64,
) -> StoreResult<HashMap<(String, String), Sums>> {
    let rows: Vec<(String, String, f64, f64, f64, f64, f64)> = sqlx::query_as(
        "select m.metric, u.variant, sum(m.a), sum(m.a * m.a), sum(m.b), sum(m.b * m.b), \
         sum(m.a * m.b) \
         from experiment_unit_metric m join experiment_unit u \
           on u.experiment_id = m.experiment_id and u.unit = m.unit \
         where m.experiment_id = $1 and u.multiple = 0 group by m.metric, u.variant",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(metric, variant, a, a2, b, b2, ab)| {
            let sums = Sums {
                n: 0,
                a,
                a2,
                b,
                b2,
                ab,
            };
            ((metric, variant), sums)
        })
        .collect())
}
