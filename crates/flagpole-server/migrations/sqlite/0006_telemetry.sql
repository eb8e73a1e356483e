-- What SDKs report back (issue 15): the same logical tables as on Postgres (see
-- migrations/postgres/0006_telemetry.sql for the reasoning). SQLite has no declarative
-- partitioning, so raw exposures and events are plain tables and retention deletes rows
-- by `at_ms` (indexed for it).

create table eval_count_hour (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  reason text not null,
  rule text not null,
  error text not null,
  hour bigint not null,
  n bigint not null,
  -- End of the latest window counted here: "last evaluated" to the second, not the hour.
  last_at bigint not null,
  primary key (environment_id, flag_key, hour, flag_version, variant, reason, rule, error)
);

create table eval_count_day (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  reason text not null,
  rule text not null,
  error text not null,
  day bigint not null,
  n bigint not null,
  last_at bigint not null,
  primary key (environment_id, flag_key, day, flag_version, variant, reason, rule, error)
);

create table eval_rollup_pending (
  environment_id bigint not null references environment (id) on delete cascade,
  day bigint not null,
  marked_at bigint not null,
  primary key (environment_id, day)
);

create table exposure (
  environment_id bigint not null,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  context_key text not null,
  at_ms bigint not null
);
create index exposure_flag on exposure (environment_id, flag_key, at_ms);
create index exposure_at on exposure (at_ms);

create table tracked_event (
  environment_id bigint not null,
  name text not null,
  context_key text not null,
  value double precision,
  properties text not null,
  at_ms bigint not null
);
create index tracked_event_name on tracked_event (environment_id, name, at_ms);
create index tracked_event_at on tracked_event (at_ms);

create table sdk_app (
  environment_id bigint not null references environment (id) on delete cascade,
  app text not null,
  app_version text not null,
  sdk text not null,
  batches bigint not null,
  evaluations bigint not null,
  dropped bigint not null,
  first_seen bigint not null,
  last_seen bigint not null,
  primary key (environment_id, app, app_version, sdk)
);

create table telemetry_batch (
  environment_id bigint not null,
  id text not null,
  received_at bigint not null,
  primary key (environment_id, id)
);
create index telemetry_batch_received on telemetry_batch (received_at);
