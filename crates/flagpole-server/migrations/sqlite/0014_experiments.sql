-- SQLite dialect of postgres/0014_experiments.sql (the reasons are written there):
-- experiments, and the per-unit aggregates the ingest writer keeps as events arrive.

create table experiment (
  id integer primary key autoincrement,
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
