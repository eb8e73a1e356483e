-- A/B experiments (issue 16): the experiment itself, and per-unit aggregates the ingest
-- writer keeps up to date as exposures and tracked events arrive, so that results read
-- one row per unit instead of scanning raw events.
--
-- 1. `experiment`: one flag in one environment. Arms, metrics and analysis settings are
--    JSON documents (like flag configs: never queried by SQL; the server validates what
--    it writes). Metrics are defined inline rather than in a table of reusable metrics:
--    an experiment's metrics are frozen with it, and a draft is edited in one write.
--    `flag_key` is kept beside `flag_id` because exposures name the flag by key. At most
--    one running experiment per flag and environment (`experiment_running`, a partial
--    unique index; the domain checks first to name the field, the index holds under
--    concurrent starts). While one runs, snapshots carry `exposures: true` for its flag
--    (derived from this table, not stored on the config: nothing to undo on stop).
--
-- 2. `experiment_unit`: per experiment and unit (the context key), the first exposure
--    since the experiment (re)started, its variant, and whether the unit was exposed to
--    another variant too (`multiple`, 0/1: such units are excluded from results and
--    counted). Booleans are 0/1 integers as elsewhere, one type on both backends.
--
-- 3. `experiment_unit_metric`: per experiment, metric key and unit, the sums a metric
--    needs of that unit's events after its first exposure (and within the conversion
--    window): `a` (the value, the count, or 1 once converted) and `b` (a ratio's
--    denominator). A unit without a row has zeros.
--
-- Expand only: an older server ignores the tables.

create table experiment (
  id bigint generated always as identity primary key,
  project_id bigint not null references project (id) on delete cascade,
  environment_id bigint not null references environment (id) on delete cascade,
  flag_id bigint not null references flag (id) on delete cascade,
  flag_key text not null,
  name text not null,
  hypothesis text not null default '',
  -- [{"variant", "weight"}], control first; weights in percent, summing to 100.
  arms text not null,
  -- {"primary": M, "secondary": [M], "guardrail": [M]}.
  metrics text not null,
  -- {"mode": "frequentist" | "sequential" | "bayesian", "alpha": ...}.
  analysis text not null,
  state text not null default 'draft'
    constraint experiment_state check (state in ('draft', 'running', 'stopped')),
  -- {"ship": variant or null, "comment"}: set when stopped.
  decision text,
  started_at bigint,
  stopped_at bigint,
  version bigint not null default 1,
  created_by text not null,
  created_at bigint not null,
  updated_at bigint not null
);
create index experiment_project on experiment (project_id, id);
create unique index experiment_running on experiment (environment_id, flag_id)
  where state = 'running';

create table experiment_unit (
  experiment_id bigint not null references experiment (id) on delete cascade,
  unit text not null,
  variant text not null,
  first_exposure_at bigint not null,
  multiple bigint not null default 0,
  primary key (experiment_id, unit)
);

create table experiment_unit_metric (
  experiment_id bigint not null references experiment (id) on delete cascade,
  metric text not null,
  unit text not null,
  a double precision not null,
  b double precision not null,
  primary key (experiment_id, metric, unit)
);
