-- Outcomes of flag-controlled code paths (issues 17 and 18): the same tables as on
-- Postgres (see migrations/postgres/0016_outcomes.sql for the reasoning).

create table outcome_hour (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  hour bigint not null,
  calls bigint not null,
  errors bigint not null,
  mismatches bigint not null,
  timeouts bigint not null,
  skipped bigint not null,
  duration_us bigint not null,
  last_at bigint not null,
  primary key (environment_id, flag_key, hour, flag_version, variant, kind)
);

create table outcome_latency_hour (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  hour bigint not null,
  bucket bigint not null,
  n bigint not null,
  primary key (environment_id, flag_key, hour, flag_version, variant, kind, bucket)
);

create table outcome_day (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  day bigint not null,
  calls bigint not null,
  errors bigint not null,
  mismatches bigint not null,
  timeouts bigint not null,
  skipped bigint not null,
  duration_us bigint not null,
  last_at bigint not null,
  primary key (environment_id, flag_key, day, flag_version, variant, kind)
);

create table outcome_latency_day (
  environment_id bigint not null references environment (id) on delete cascade,
  flag_key text not null,
  flag_version bigint not null,
  variant text not null,
  kind text not null,
  day bigint not null,
  bucket bigint not null,
  n bigint not null,
  primary key (environment_id, flag_key, day, flag_version, variant, kind, bucket)
);
